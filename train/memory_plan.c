#include "memory_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/fp8.h"
#include "../model/tp.h"
#include "optimizer.h"

/* "12.34 GiB" or, below a GiB, "5.67 MiB" (each call its own buffer of the caller's). */
typedef struct {
    char s[32];
} bytes_text;
static bytes_text human(size_t x) {
    bytes_text t;
    if (x >= (size_t)1 << 30) snprintf(t.s, sizeof t.s, "%.2f GiB", (double)x / (double)(1u << 30));
    else snprintf(t.s, sizeof t.s, "%.2f MiB", (double)x / (double)(1u << 20));
    return t;
}

int gt_memory_plan(const gt_config *cfg, const size_t size[3], size_t reserve, const gt_mem_plan_in *in,
                   gt_mem_plan *p, gt_err *err) {
    memset(p, 0, sizeof *p);
    /* A model of this rank's layout that holds no buffer: what the size functions read. */
    gt_model m;
    memset(&m, 0, sizeof m);
    m.cfg = *cfg;
    if (gt_layout_init(&m.lay, cfg, 0, in->tp, err)) return -1;
    size_t count = m.lay.count;
    gt_batch_bytes b;
    gt_model_batch_bytes(&m.lay, size, 0, in->B, in->T, &b);
    m.ce_chunk = b.ce_chunk;
    p->weights = count * size[GT_ACT];
    size_t gsz = size[in->bf16_grads ? GT_ACT : GT_GRAD];
    p->grads = count * gsz + gt_model_kv_sum_bytes(cfg, &m.lay, gsz) + 3 * size[GT_STAT];
    p->optim = count * gt_opt_state_bytes(size, in->state);
    if (in->zero && in->dp > 1) {
        /* ZeRO-1 (train/optimizer.h): the buffers padded to dp equal shards, the state of one */
        size_t shard = (count + (size_t)in->dp - 1) / (size_t)in->dp, pad = shard * (size_t)in->dp - count;
        p->optim = shard * gt_opt_state_bytes(size, in->state);
        p->weights += pad * size[GT_ACT];
        p->grads += pad * gsz;
    }
    p->ce = b.logits + b.ce_parts + b.ce_lse + b.ce_part_local;
    p->acts = b.total - p->ce;
    size_t fp8_acts = 0;
    if (in->fp8) gt_model_fp8_bytes(&m, in->fp8_lm_head, in->fp8_history_len, in->B * in->T, &p->fp8, &fp8_acts);
    /* The BF16 GEMM inputs (ln1, ln2, h) exist in BF16 runs; an FP8 run makes them only for its
     * BF16 calibration and frees them after it, and its FP8 operands replace them: the larger. */
    p->acts += in->fp8 ? 0 : b.bf16_inputs;
    p->fp8 += in->fp8 ? (fp8_acts > b.bf16_inputs ? fp8_acts : b.bf16_inputs) : 0;
    p->backend = reserve;
    p->total = p->weights + p->grads + p->optim + p->acts + p->ce + p->fp8 + p->backend;
    gt_layout_free(&m.lay);
    return 0;
}

int gt_memory_budget(const gt_ops *ops, gt_backend *be, size_t *budget, int *have, gt_err *err) {
    const char *env = getenv("GT_DEVICE_MEMORY");
    *have = 0;
    *budget = 0;
    if (env && *env) {
        char *end;
        errno = 0;
        double v = strtod(env, &end);
        double unit = 1;
        if (*end == 'K' || *end == 'k') unit = 1024.0, end++;
        else if (*end == 'M' || *end == 'm') unit = 1048576.0, end++;
        else if (*end == 'G' || *end == 'g') unit = 1073741824.0, end++;
        else if (*end == 'T' || *end == 't') unit = 1099511627776.0, end++;
        if (unit > 1 && !strcmp(end, "iB")) end += 2;
        if (errno || end == env || *end || !(v >= 0) || v * unit > 1.8e19)
            return gt_fail(err, "GT_DEVICE_MEMORY=%s: expected bytes, optionally with K, M, G or T (binary units)", env);
        *budget = (size_t)(v * unit);
        *have = 1;
        return 0;
    }
    if (ops->mem_free) {
        *budget = ops->mem_free(be);
        *have = 1;
    }
    return 0;
}

void gt_memory_bytes_text(size_t bytes, char *buf, size_t len) { snprintf(buf, len, "%s", human(bytes).s); }

void gt_memory_plan_describe(const gt_mem_plan *p, char *buf, size_t len) {
    snprintf(buf, len,
             "weights %s, gradients %s, optimizer %s, activations %s, lm_head/CE chunk %s, FP8 %s, backend %s",
             human(p->weights).s, human(p->grads).s, human(p->optim).s, human(p->acts).s, human(p->ce).s,
             human(p->fp8).s, human(p->backend).s);
}

/* The total with `in`, or (size_t)-1 where the layout does not exist (tp). */
static size_t total_of(const gt_config *cfg, const size_t size[3], size_t reserve, const gt_mem_plan_in *in) {
    gt_mem_plan p;
    gt_err e;
    return gt_memory_plan(cfg, size, reserve, in, &p, &e) ? (size_t)-1 : p.total;
}

/* Appends ", what (X GiB)" to buf. */
static void add(char *buf, size_t len, int *n, const char *what, size_t total) {
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s (%s)", *n ? ", " : "", what, human(total).s);
    (*n)++;
}

/* The single changes that fit the budget, each planned: a smaller micro-batch (the largest that
 * fits), a leaner optim.state, bf16 gradients, ZeRO-1 over the fewest dp ranks, tensor parallelism
 * over the fewest ranks. */
static void suggestions(const gt_config *cfg, const size_t size[3], size_t reserve, const gt_mem_plan_in *in,
                        size_t budget, char *buf, size_t len) {
    char what[128];
    int n = 0;
    buf[0] = 0;
    for (int B = in->B - 1; B >= 1; B--) {
        gt_mem_plan_in t = *in;
        t.B = B;
        size_t tot = total_of(cfg, size, reserve, &t);
        if (tot <= budget) {
            if (in->B % B == 0)
                snprintf(what, sizeof what, "data.micro_batch=%d (data.grad_accum x%d keeps the batch)", B, in->B / B);
            else
                snprintf(what, sizeof what, "data.micro_batch=%d", B);
            add(buf, len, &n, what, tot);
            break;
        }
    }
    for (int s = in->state + 1; s <= GT_OPT_BF16; s++) {
        gt_mem_plan_in t = *in;
        t.state = s;
        size_t tot = total_of(cfg, size, reserve, &t);
        if (tot <= budget) {
            snprintf(what, sizeof what, "optim.state=%s", gt_opt_state_name(s));
            add(buf, len, &n, what, tot);
            break;
        }
    }
    if (!in->bf16_grads) {
        gt_mem_plan_in t = *in;
        t.bf16_grads = 1;
        size_t tot = total_of(cfg, size, reserve, &t);
        if (tot <= budget) add(buf, len, &n, "optim.grads=bf16", tot);
    }
    for (int dp = in->zero ? in->dp + 1 : (in->dp > 2 ? in->dp : 2); dp <= 4096; dp++) {
        gt_mem_plan_in t = *in;
        t.zero = 1, t.dp = dp;
        size_t tot = total_of(cfg, size, reserve, &t);
        if (tot <= budget) {
            snprintf(what, sizeof what, "ZeRO-1 over %d dp ranks", dp);
            add(buf, len, &n, what, tot);
            break;
        }
    }
    for (int tp = in->tp + 1; tp <= 64; tp++) {
        gt_mem_plan_in t = *in;
        t.tp = tp;
        size_t tot = total_of(cfg, size, reserve, &t);
        if (tot <= budget) {
            snprintf(what, sizeof what, "parallel.tp=%d", tp);
            add(buf, len, &n, what, tot);
            break;
        }
    }
    if (!n)
        snprintf(buf, len,
                 "no single change fits (tried smaller data.micro_batch, optim.state, optim.grads, ZeRO-1, parallel.tp)");
}

int gt_memory_plan_check(const gt_config *cfg, const gt_ops *ops, gt_backend *be, const gt_mem_plan_in *in,
                         gt_mem_plan *p, gt_err *err) {
    size_t reserve = ops->mem_reserve ? ops->mem_reserve(be) : 0;
    if (gt_memory_plan(cfg, ops->size, reserve, in, p, err)) return -1;
    size_t budget;
    int have;
    if (gt_memory_budget(ops, be, &budget, &have, err)) return -1;
    if (!have || p->total <= budget) return 0;
    char parts[256], fits[768];
    gt_memory_plan_describe(p, parts, sizeof parts);
    suggestions(cfg, ops->size, reserve, in, budget, fits, sizeof fits);
    return gt_fail(err,
                   "memory plan: %s per rank (%s; micro_batch %d x %d tokens, optim.state %s, optim.grads %s, tp %d, "
                   "dp %d%s) does not fit the %s free on the device; would fit: %s",
                   human(p->total).s, parts, in->B, in->T, gt_opt_state_name(in->state),
                   in->bf16_grads ? "bf16" : "fp32", in->tp, in->dp,
                   in->zero ? " with ZeRO-1" : "", human(budget).s, fits);
}
