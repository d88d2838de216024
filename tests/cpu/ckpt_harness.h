/* A small deterministic training setup for the checkpoint tests (tests/cpu/test_checkpoint.c,
 * tests/mpi/test_mpi_checkpoint.c): a fixture model on one tp rank, AdamW, and a batch that
 * depends on the step number, so that a resumed run must restore everything to agree.
 * Header-only (static functions): each test is one source file. */
#ifndef GT_TEST_CKPT_HARNESS_H
#define GT_TEST_CKPT_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../train/ckpt/checkpoint.h"

enum { H_B = 4, H_T = 9, H_N = H_B * H_T };

typedef struct {
    gt_backend *be;
    gt_model m;
    gt_optimizer o;
    int dp_rank, dp;
    gt_group *dpg; /* NULL: no data parallelism */
} harness;

/* Builds the model of fixture dir for tp rank r of tp (weights loaded when load is set, else
 * zero) with AdamW on the given backend. */
static void h_open(harness *h, const char *dir, const gt_ops *ops, int r, int tp, int load) {
    gt_err err;
    gt_config cfg;
    memset(h, 0, sizeof *h);
    h->be = gt_cpu_backend_create();
    h->dp = 1;
    GT_ASSERT(!gt_config_load(&cfg, dir, &err) && !gt_model_init(&h->m, &cfg, ops, h->be, r, tp, &err) &&
                  (!load || !gt_model_load_hf(&h->m, dir, &err)),
              "%s", err.msg);
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, GT_OPT_FP32, 0};
    gt_optimizer_init(&h->o, &h->m, &ac);
    gt_model_alloc_batch(&h->m, H_B, H_T);
}

static void h_close(harness *h) {
    gt_optimizer_free(&h->o);
    gt_model_free(&h->m);
    gt_cpu_backend_destroy(h->be);
}

/* Sequences of step s: token ids from an LCG seeded by s, every 5th target masked. */
static int h_batch(int s, int vocab, int32_t *tok, int32_t *tgt, int32_t *pos) {
    unsigned x = 2024u + 7919u * (unsigned)s;
    int count = 0;
    for (int i = 0; i < H_N; i++) {
        x = x * 1664525u + 1013904223u;
        tok[i] = (int32_t)((x >> 8) % (unsigned)vocab);
        pos[i] = i % H_T;
    }
    for (int i = 0; i < H_N; i++) {
        int t = i % H_T;
        tgt[i] = (t + 1 < H_T && i % 5 != 3) ? tok[i + 1] : -1;
        count += tgt[i] >= 0;
    }
    return count;
}

/* One AdamW step s on this dp rank's sequences (b = dp_rank, dp_rank + dp, ...); returns the
 * global mean loss. */
static double h_step(harness *h, int s) {
    int32_t tok[H_N], tgt[H_N], pos[H_N], mt[H_N], mg[H_N], mp[H_N];
    int count = h_batch(s, h->m.cfg.vocab_size, tok, tgt, pos);
    int nb = H_B / h->dp;
    for (int j = 0; j < nb; j++) {
        int b = h->dp_rank + j * h->dp;
        memcpy(mt + j * H_T, tok + b * H_T, H_T * sizeof(int32_t));
        memcpy(mg + j * H_T, tgt + b * H_T, H_T * sizeof(int32_t));
        memcpy(mp + j * H_T, pos + b * H_T, H_T * sizeof(int32_t));
    }
    if (h->m.B != nb) gt_model_alloc_batch(&h->m, nb, H_T);
    gt_model_set_batch(&h->m, mt, mg, mp, NULL);
    gt_model_zero_grads(&h->m);
    double loss = gt_model_forward(&h->m, 1, 1.0f / (float)count, NULL);
    gt_model_backward(&h->m);
    gt_model_reduce_grads(&h->m, h->dpg);
    if (h->dpg) gt_allreduce_host(h->dpg, &loss, 1, GT_F64, GT_RED_SUM);
    gt_optimizer_step(&h->o, 1e-2f, gt_optimizer_grad_sumsq(&h->o));
    return loss / count;
}

/* The trainer-level state of a harness after `step` steps. */
static gt_ckpt_state h_state(const harness *h, long long step, int tp, int dp) {
    gt_ckpt_state st;
    memset(&st, 0, sizeof st);
    st.step = step;
    st.opt_step = h->o.step;
    st.opt_skipped = h->o.skipped;
    st.data_pos = (gt_loader_pos){step / 3, 4 * step % 7};
    st.tokens_seen = (double)step * H_N;
    st.seq_len = H_T;
    st.seed = 42;
    st.shuffle_seed = 1234;
    st.shuffle = 1;
    st.sched = (gt_lr_schedule){GT_LR_COSINE, 1e-2, 0.1, 2, 20};
    st.tp = tp;
    st.dp = dp;
    st.run_config = (char *)"model:\n  path: tests/fixtures\n";
    return st;
}

/* Bytes of a buffer of count elements of kind k, downloaded. */
static unsigned char *h_bytes(const harness *h, const void *buf, gt_kind k) {
    size_t n = h->m.lay.count * h->m.ops->size[k];
    unsigned char *b = gt_malloc(n);
    h->m.ops->download_raw(h->be, b, buf, n);
    return b;
}

/* 1 when parameters, moments and the optimizer's counters of a and b are bitwise equal. */
static int h_same(const harness *a, const harness *b) {
    const void *pa[3] = {a->m.params, a->o.mom, a->o.var}, *pb[3] = {b->m.params, b->o.mom, b->o.var};
    gt_kind k[3] = {GT_ACT, GT_GRAD, GT_GRAD};
    int same = a->o.step == b->o.step && a->o.skipped == b->o.skipped && a->m.lay.count == b->m.lay.count;
    for (int i = 0; same && i < 3; i++) {
        unsigned char *x = h_bytes(a, pa[i], k[i]), *y = h_bytes(b, pb[i], k[i]);
        same = !memcmp(x, y, a->m.lay.count * a->m.ops->size[k[i]]);
        free(x);
        free(y);
    }
    return same;
}

/* Largest difference between dir's weights and the parameters (rounded to bf16 when bf16). */
static double h_weights_error(const harness *h, const char *dir, int bf16) {
    gt_st st;
    gt_err err;
    GT_ASSERT(!gt_st_open(&st, dir, &err), "%s", err.msg);
    int np;
    gt_piece *pc = gt_layout_pieces(&h->m.lay, &h->m.cfg, &np);
    double worst = 0;
    for (int i = 0; i < np; i++) {
        int64_t r, c;
        int nd;
        gt_hf_tensor_dims(&h->m.cfg, pc[i].name, &r, &c, &nd);
        float *want = gt_calloc((size_t)(r * c), 4), *got = gt_calloc((size_t)(r * c), 4);
        gt_model_export_tensor(&h->m, 0, pc[i].name, want);
        const gt_st_tensor *t = gt_st_find(&st, pc[i].name);
        GT_ASSERT(t && t->dtype == (bf16 ? GT_BF16 : GT_F32), "%s: missing or wrong dtype", pc[i].name);
        GT_ASSERT(!gt_st_read_f32(&st, t, 0, r, 0, c, got, &err), "%s", err.msg);
        for (int64_t k = 0; k < r * c; k++) {
            double d = fabs(got[k] - (bf16 ? gt_round_bf16(want[k]) : want[k]));
            if (d > worst) worst = d;
        }
        free(want);
        free(got);
    }
    free(pc);
    gt_st_close(&st);
    return worst;
}

#endif
