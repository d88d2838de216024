#include "optimizer.h"

#include "../model/fp8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Segments of the buffer with and without weight decay: norms have none (HF Trainer, Megatron). */
static void build_segments(gt_optimizer *o) {
    const gt_layout *L = &o->m->lay;
    o->seg = gt_calloc((size_t)(4 * L->L + 2), sizeof *o->seg);
    int n = 0;
    size_t C = (size_t)L->C;
#define SEG(start, len, dec) (o->seg[n++] = (gt_opt_segment){(start), (len), (dec)})
    SEG(L->wte, (size_t)L->V * C, 1);
    for (int l = 0; l < L->L; l++) {
        const gt_layer_offsets *w = &L->layer[l];
        SEG(w->ln1, C, 0);
        SEG(w->qkv, w->ln2 - w->qkv, 1); /* qkv and o */
        SEG(w->ln2, C, 0);
        SEG(w->fc1, (l + 1 < L->L ? L->layer[l + 1].ln1 : L->lnf) - w->fc1, 1); /* fc1 and fc2 */
    }
    SEG(L->lnf, C, 0);
#undef SEG
    o->nseg = n;
}

/* Master copy = the BF16 parameters [lo, hi) widened to FP32, staged through the host in chunks. */
static void init_master(gt_optimizer *o) {
    gt_model *m = o->m;
    const gt_ops *ops = m->ops;
    size_t chunk = (size_t)1 << 22, count = o->hi - o->lo;
    float *buf = gt_malloc(chunk * sizeof(float));
    for (size_t i = 0; i < count; i += chunk) {
        size_t n = count - i < chunk ? count - i : chunk;
        ops->download(m->be, GT_ACT, buf, (char *)m->params + (o->lo + i) * ops->size[GT_ACT], n);
        ops->upload(m->be, GT_GRAD, (char *)o->master + i * ops->size[GT_GRAD], buf, n);
    }
    free(buf);
}

static const char *const state_names[] = {"fp32", "bf16_moments", "bf16"};

int gt_opt_state_parse(const char *name, int *state) {
    for (int i = 0; i < 3; i++) {
        if (!strcmp(name, state_names[i])) {
            *state = i;
            return 0;
        }
    }
    return -1;
}

const char *gt_opt_state_name(int state) { return state >= 0 && state < 3 ? state_names[state] : "?"; }

/* A separate master copy exists where the parameters are narrower than fp32 (CUDA's bf16), except
 * in the pure-bf16 state, whose bf16 parameters are their own master. */
static int has_master(const size_t size[3], int state) {
    return size[GT_ACT] != size[GT_GRAD] && state != GT_OPT_BF16;
}

static gt_kind moment_kind(int state) { return state == GT_OPT_FP32 ? GT_GRAD : GT_ACT; }

size_t gt_opt_state_bytes(const size_t size[3], int state) {
    return (has_master(size, state) ? size[GT_GRAD] : 0) + 2 * size[moment_kind(state)];
}

size_t gt_opt_step_bytes(const size_t size[3], int state, size_t grad_size) {
    size_t own_master = has_master(size, state) ? 0 : size[GT_ACT]; /* parameter read */
    return grad_size + 2 * gt_opt_state_bytes(size, state) + size[GT_ACT] + own_master;
}

size_t gt_optimizer_device_bytes(const gt_ops *ops, size_t count, int dp, int zero, int state) {
    size_t n = zero && dp > 1 ? (count + (size_t)dp - 1) / (size_t)dp : count;
    return n * gt_opt_state_bytes(ops->size, state);
}

void gt_optimizer_init(gt_optimizer *o, gt_model *m, const gt_adamw_config *cfg) {
    gt_optimizer_init_sharded(o, m, cfg, NULL);
}

void gt_optimizer_init_sharded(gt_optimizer *o, gt_model *m, const gt_adamw_config *cfg, gt_group *dp) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->m = m;
    if (dp && dp->size > 1) {
        gt_model_shard_dp(m, dp);
        o->dp = dp;
    }
    gt_model_shard_range(m, &o->lo, &o->hi);
    const gt_ops *ops = m->ops;
    o->mom_kind = moment_kind(cfg->state);
    /* a rank past the end of a tiny buffer owns nothing, but gets a valid allocation */
    size_t n = o->hi > o->lo ? o->hi - o->lo : 1;
    if (has_master(ops->size, cfg->state)) {
        o->master = ops->alloc(m->be, n * ops->size[GT_GRAD]);
        init_master(o);
    }
    size_t bytes = n * ops->size[o->mom_kind];
    o->mom = ops->alloc(m->be, bytes);
    o->var = ops->alloc(m->be, bytes);
    build_segments(o);
}

void gt_optimizer_free(gt_optimizer *o) {
    if (!o->m) return;
    const gt_ops *ops = o->m->ops;
    if (o->master) ops->release(o->m->be, o->master);
    ops->release(o->m->be, o->mom);
    ops->release(o->m->be, o->var);
    free(o->seg);
    o->m = NULL;
}

double gt_optimizer_grad_sumsq(gt_optimizer *o) { return gt_model_grad_sumsq(o->m); }

int gt_optimizer_step(gt_optimizer *o, float lr, double sumsq) {
    if (!isfinite(sumsq)) {
        o->skipped++;
        return 1;
    }
    gt_model *m = o->m;
    const gt_ops *ops = m->ops;
    double norm = sqrt(sumsq);
    /* As torch.nn.utils.clip_grad_norm_: coefficient clip / (norm + 1e-6), clamped to 1. */
    float scale = 1.0f;
    if (o->cfg.clip > 0) {
        double coef = o->cfg.clip / (norm + 1e-6);
        if (coef < 1.0) scale = (float)coef;
    }
    o->step++;
    size_t sa = ops->size[GT_GRAD], ga = gt_model_grad_size(m), pa = ops->size[GT_ACT], ma = ops->size[o->mom_kind];
    for (int i = 0; i < o->nseg; i++) {
        const gt_opt_segment *s = &o->seg[i];
        /* the part of the segment in this rank's range: state element k is buffer element lo + k */
        size_t a0 = s->off > o->lo ? s->off : o->lo, a1 = s->off + s->count < o->hi ? s->off + s->count : o->hi;
        if (a0 >= a1) continue;
        size_t k = a0 - o->lo;
        gt_adamw_args a = {lr, o->cfg.beta1, o->cfg.beta2, o->cfg.eps,
                           s->decay ? o->cfg.weight_decay : 0.0f, scale, o->step,
                           o->cfg.state, o->cfg.seed, (uint64_t)a0};
        ops->adamw(m->be, (char *)m->params + a0 * pa, o->master ? (char *)o->master + k * sa : NULL,
                   (char *)o->mom + k * ma, (char *)o->var + k * ma, (char *)m->grads + a0 * ga, a1 - a0, &a);
    }
    if (o->dp) gt_model_dp_gather_params(m);
    gt_model_fp8_weights_changed(m);
    return 0;
}
