/* Generation on the GPU against the CPU reference:
 *  1. ops kv_write + attention_decode on random caches (MHA, GQA, MQA at Gemma-2B's head_dim 256,
 *     GQA at the gqa fixture's head_dim 24),
 *     lengths from 1 to a cache of 700 positions (eleven splits of the sequence): within BF16
 *     tolerance of the float32 CPU op;
 *  2. the decoder (model/decoder.h) on the fixtures, a batch of 3 prompts of unequal length and 8
 *     decode steps fed the CPU's greedy tokens: CUDA logits within BF16 tolerance of the CPU's at
 *     every step, and the steps replayed from CUDA graphs bitwise equal to the direct ones.
 * Prints a line per check; exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cuda/cuda_backend.h"
#include "../../model/decoder.h"
#include "../cpu/check.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void check_ops(gt_check *c, int Hq, int Hkv, int D) {
    const int B = 4, Tmax = 700, W = (Hq + 2 * Hkv) * D;
    const int lens[4] = {1, 37, 700, 300};
    const gt_ops *og = gt_cuda_ops(), *oc = gt_cpu_ops();
    gt_backend *bg = gt_cuda_backend_create(0), *bc = gt_cpu_backend_create();
    size_t cache = (size_t)B * Hkv * Tmax * D;
    float *kv = malloc(cache * sizeof(float)), *vv = malloc(cache * sizeof(float));
    float *q = malloc((size_t)B * W * sizeof(float));
    uint64_t s = 1;
    for (size_t i = 0; i < cache; i++) kv[i] = frand(&s) * 2, vv[i] = frand(&s);
    for (size_t i = 0; i < (size_t)B * W; i++) q[i] = frand(&s) * 2;
    /* round through bf16 on both sides: the CPU sees the values the GPU holds */
    void *gk = og->alloc(bg, cache * 2), *gv = og->alloc(bg, cache * 2), *gq = og->alloc(bg, (size_t)B * W * 2);
    og->upload(bg, GT_ACT, gk, kv, cache);
    og->upload(bg, GT_ACT, gv, vv, cache);
    og->upload(bg, GT_ACT, gq, q, (size_t)B * W);
    og->download(bg, GT_ACT, kv, gk, cache);
    og->download(bg, GT_ACT, vv, gv, cache);
    og->download(bg, GT_ACT, q, gq, (size_t)B * W);
    /* kv_write: the new row of each sequence at position len - 1, from q's k/v columns */
    int32_t dst[4], *gdst = og->alloc(bg, sizeof dst), *glen = og->alloc(bg, sizeof lens);
    for (int b = 0; b < B; b++) dst[b] = b * Tmax + lens[b] - 1;
    og->upload_raw(bg, gdst, dst, sizeof dst);
    og->upload_raw(bg, glen, lens, sizeof lens);
    oc->kv_write(bc, kv, vv, q, dst, B, Hq, Hkv, D, Tmax);
    og->kv_write(bg, gk, gv, gq, gdst, B, Hq, Hkv, D, Tmax);
    float *ref = malloc((size_t)B * Hq * D * sizeof(float)), *got = malloc((size_t)B * Hq * D * sizeof(float));
    float *kg = malloc(cache * sizeof(float));
    og->download(bg, GT_ACT, kg, gk, cache);
    double ek = gt_rel_err_f(kg, kv, cache);
    oc->attention_decode(bc, ref, q, kv, vv, lens, 1.0f / sqrtf((float)D), B, Hq, Hkv, D, Tmax);
    void *gout = og->alloc(bg, (size_t)B * Hq * D * 2);
    og->attention_decode(bg, gout, gq, gk, gv, glen, 1.0f / sqrtf((float)D), B, Hq, Hkv, D, Tmax);
    og->download(bg, GT_ACT, got, gout, (size_t)B * Hq * D);
    char what[128];
    snprintf(what, sizeof what, "kv_write Hq=%d Hkv=%d D=%d", Hq, Hkv, D);
    gt_check_rel(c, ek, 0, what);
    snprintf(what, sizeof what, "attention_decode Hq=%d Hkv=%d D=%d lens 1..700", Hq, Hkv, D);
    gt_check_rel(c, gt_rel_err_f(got, ref, (size_t)B * Hq * D), 1e-2, what);
    void *bufs[] = {gk, gv, gq, gdst, glen, gout};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) og->release(bg, bufs[i]);
    free(kv), free(vv), free(q), free(ref), free(got), free(kg);
    gt_cuda_backend_destroy(bg);
    gt_cpu_backend_destroy(bc);
}

typedef struct {
    gt_model m;
    gt_backend *be;
    gt_decoder d;
} side;

static void open_side(side *s, int cuda, const char *dir, int B, int Tmax) {
    gt_err err;
    gt_config cfg;
    s->be = cuda ? gt_cuda_backend_create(0) : gt_cpu_backend_create();
    GT_ASSERT(!gt_config_load(&cfg, dir, &err) &&
                  !gt_model_init(&s->m, &cfg, cuda ? gt_cuda_ops() : gt_cpu_ops(), s->be, 0, 1, &err) &&
                  !gt_model_load_hf(&s->m, dir, &err) && !gt_decoder_init(&s->d, &s->m, B, Tmax, &err),
              "%s", err.msg);
}

static void close_side(side *s, int cuda) {
    gt_decoder_free(&s->d);
    gt_model_free(&s->m);
    if (cuda) gt_cuda_backend_destroy(s->be);
    else gt_cpu_backend_destroy(s->be);
}

static void check_decoder(gt_check *c, const char *name) {
    enum { B = 3, NEW = 8 };
    char dir[128], what[160];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", name);
    const int lens[B] = {5, 9, 3};
    side cpu, gpu, graph;
    open_side(&cpu, 0, dir, B, 9 + NEW);
    open_side(&gpu, 1, dir, B, 9 + NEW);
    open_side(&graph, 1, dir, B, 9 + NEW);
    gt_decoder_graphs(&gpu.d, 0);
    gt_decoder_graphs(&graph.d, 1);
    int V = cpu.m.cfg.vocab_size;
    float *lc = malloc((size_t)B * V * sizeof(float)), *lg = malloc((size_t)B * V * sizeof(float));
    float *lh = malloc((size_t)B * V * sizeof(float));
    int32_t seq[B][32], tok[B], pos[B], gnext[B];
    int picks = 1;
    double prefill_err = 0, worst = 0;
    int same = 1;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < lens[b]; t++) seq[b][t] = 3 + (b * 37 + t * 11) % (V - 3);
        gt_decoder_prefill(&cpu.d, b, seq[b], lens[b], lc + (size_t)b * V, NULL);
        gt_decoder_prefill(&gpu.d, b, seq[b], lens[b], lg + (size_t)b * V, NULL);
        gt_decoder_prefill(&graph.d, b, seq[b], lens[b], lh + (size_t)b * V, NULL);
        pos[b] = lens[b];
    }
    for (int k = 0; k < NEW; k++) {
        double e = gt_rel_err_f(lg, lc, (size_t)B * V);
        if (k == 0) prefill_err = e;
        else worst = fmax(worst, e);
        same &= !memcmp(lg, lh, (size_t)B * V * sizeof(float));
        for (int b = 0; b < B; b++) {
            int32_t best = 0;
            for (int v = 1; v < V; v++)
                if (lc[(size_t)b * V + v] > lc[(size_t)b * V + best]) best = v;
            tok[b] = best;
        }
        gt_decoder_step(&cpu.d, B, tok, pos, lc, NULL);
        gt_decoder_step(&gpu.d, B, tok, pos, lg, NULL);
        gt_decoder_step(&graph.d, B, tok, pos, lh, gnext);
        for (int b = 0; b < B; b++) {
            pos[b]++;
            int32_t best = 0;
            for (int v = 1; v < V; v++)
                if (lh[(size_t)b * V + v] > lh[(size_t)b * V + best]) best = v;
            picks &= gnext[b] == best;
        }
    }
    gt_check_true(c, picks, "%s: CUDA argmax_rows picks differ from the argmax of the CUDA logits", name);
    /* The prefill runs the training forward, whose BF16 error against the float32 CPU grows with
     * the fixture's depth and shapes; decode steps must add no error of their own beyond it: within
     * 3e-2 or 1.5x the prefill's error, whichever is larger. */
    snprintf(what, sizeof what, "%s: prefill logits, cuda vs cpu", name);
    gt_check_rel(c, prefill_err, 4e-2, what);
    snprintf(what, sizeof what, "%s: decode logits, cuda vs cpu, %d steps (prefill %.2e)", name, NEW - 1,
             prefill_err);
    gt_check_rel(c, worst, fmax(3e-2, 1.5 * prefill_err), what);
    gt_check_true(c, same, "%s: CUDA-graph steps differ from direct steps", name);
    printf("%s: CUDA-graph steps %s direct steps\n", name, same ? "equal" : "DIFFER FROM");
    free(lc), free(lg), free(lh);
    close_side(&graph, 1);
    close_side(&gpu, 1);
    close_side(&cpu, 0);
}

int main(void) {
    gt_check c = {0};
    check_ops(&c, 4, 4, 64);
    check_ops(&c, 8, 2, 128);
    check_ops(&c, 8, 1, 256);
    check_ops(&c, 4, 2, 24); /* the gqa fixture's odd head_dim */
    const char *fx[] = {"mha", "mqa", "gqa", "bf16"};
    for (int i = 0; i < 4; i++) check_decoder(&c, fx[i]);
    return gt_check_done(&c, "test_gpu_generate");
}
