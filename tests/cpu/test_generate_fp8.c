/* Generation with FP8 GEMMs from an FP8-calibrated directory, on the CPU backend (which emulates
 * E4M3 exactly, float32 accumulation). For fixtures gqa (FP8 lm_head) and mqa (BF16 lm_head), each
 * calibrated here by `gemmatron calibrate` (argv[1]) on random in-vocabulary tokens:
 * - every prefill's and decode step's logits equal the full FP8 training forward over the same
 *   prefix (gt_model_forward, no cache, its tokens padded after the prefix to 16: FP8 GEMMs take
 *   multiples of 16 rows) within 1e-5, for a batch of prompts of unequal lengths (5, 9, 3 tokens:
 *   every GEMM's rows padded, prefill and decode), and every layer GEMM ran in FP8 (fp8_used);
 * - a prompt decoded alone (batch 1) gives bitwise the logits it gets in the batch of 3;
 * - the scales used are the file's, bitwise: scale, scale_inv and the amax histories after
 *   generating equal fp8_state.safetensors (inference records no amax and updates no scale), and
 *   the weights were cast with the file's weight scale_inv; control: the same model with every
 *   scale times 0.7 (not a power of 2) gives other logits (the scales in use matter);
 * - every FP8 GEMM is within FP8 error of the BF16 GEMM on the same input, and the FP8 logits within
 *   FP8 error of the BF16 model's over the same sequences (FP8_GEMM_TOL, FP8_TOL). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../../data/shard.h"
#include "../../model/decoder.h"
#include "../../model/fp8.h"
#include "../../model/safetensors.h"
#include "../../train/ckpt/calibrated.h"
#include "check.h"
#include "decode_harness.h"

#define NP 3
#define NEW 8
#define MAXLEN 32

/* FP8 against BF16, as relative RMS errors (||fp8 - bf16|| / ||bf16||):
 * - each GEMM against the BF16 GEMM on the same input: E4M3 keeps 3 mantissa bits, so each operand
 *   element is rounded with a relative error of at most 2^-4 (RMS about 2^-4 / sqrt(3) = 3.6%), and
 *   a sum of products with independent errors has about that relative error again (measured on
 *   every GEMM of both fixtures: 3.5% to 4.1%). Bound: 6%.
 * - the logits: the errors of the 12 or 13 GEMMs compound through the layers, and these tiny
 *   random-init models amplify a perturbation of their residual stream (measured: 33% (mqa) and
 *   41% (gqa) in the worst of 24 rows). Bound: 60%, below the ~140% of unrelated logits of the same
 *   scale (FP8 is not noise), and the error must not be 0 (FP8 ran). */
#define FP8_GEMM_TOL 0.06
#define FP8_TOL 0.60

static int round16(int n) { return (n + 15) / 16 * 16; }

/* dir = `gemmatron calibrate` of the fixture on 400 random in-vocabulary tokens. */
static void calibrate(const char *bin, const char *fixture, const char *tmp, int lm_head, char *dir, size_t len) {
    char data[512], cmd[2048];
    snprintf(data, sizeof data, "%s/%s.bin", tmp, fixture);
    snprintf(dir, len, "%s/%s-fp8", tmp, fixture);
    uint32_t ids[400];
    uint64_t x = 12345;
    for (int i = 0; i < 400; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = 3 + (uint32_t)((x >> 33) % 157); /* the fixtures' vocabulary: 160 */
    }
    gt_err err;
    GT_ASSERT(gt_shard_write(data, ids, NULL, 400, 160, &err) == 0, "%s", err.msg);
    snprintf(cmd, sizeof cmd, "%s calibrate --model tests/fixtures/%s --data %s --out %s --steps 3 --seq-len 32 "
             "--device cpu --set fp8.history_len=4 --set fp8.lm_head=%s >/dev/null", bin, fixture, data, dir,
             lm_head ? "true" : "false");
    int st = system(cmd);
    GT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "'%s' failed", cmd);
}

static void open_model(gt_model *m, gt_backend *be, const char *dir, int fp8) {
    gt_err err;
    gt_config cfg;
    GT_ASSERT(gt_config_load(&cfg, dir, &err) == 0, "%s", err.msg);
    GT_ASSERT(gt_model_init_forward(m, &cfg, gt_cpu_ops(), be, 0, 1, &err) == 0, "%s", err.msg); /* as generate */
    GT_ASSERT(gt_model_load_hf(m, dir, &err) == 0, "%s", err.msg);
    if (fp8) GT_ASSERT(gt_fp8_state_enable(m, dir, NULL, &err) == 1, "%s: %s", dir, err.msg);
}

/* 1 when the device floats at dev equal tensor `name` of the state file bitwise (n floats). */
static int equals_file(gt_model *m, const gt_st *st, const char *name, const float *dev, size_t n) {
    const gt_st_tensor *t = gt_st_find(st, name);
    GT_ASSERT(t && t->dtype == GT_F32 && (size_t)t->numel == n, "fp8_state.safetensors: bad %s", name);
    float *want = gt_malloc(n * sizeof *want), *got = gt_malloc(n * sizeof *got);
    gt_err err;
    GT_ASSERT(gt_st_read_raw(st, t, want, &err) == 0, "%s", err.msg);
    m->ops->download_raw(m->be, got, dev, n * sizeof *got);
    int same = memcmp(want, got, n * sizeof *got) == 0;
    free(got);
    free(want);
    return same;
}

/* The scales and histories in use equal the file's; the weights were cast with its scale_inv. */
static void check_scales(gt_check *c, gt_model *m, const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/fp8_state.safetensors", dir);
    gt_st st;
    gt_err err;
    GT_ASSERT(gt_st_open(&st, path, &err) == 0, "%s", err.msg);
    const gt_fp8 *f = m->fp8;
    int scale = equals_file(m, &st, "scale", f->scale, (size_t)f->count);
    int sinv = equals_file(m, &st, "scale_inv", f->scale_inv, (size_t)f->count);
    int hist = equals_file(m, &st, "amax_history", f->history, (size_t)f->count * f->len);
    const gt_st_tensor *t = gt_st_find(&st, "scale_inv");
    float *file = gt_malloc((size_t)f->count * sizeof *file), *w = gt_malloc(2 * (size_t)f->slots * sizeof *w);
    GT_ASSERT(gt_st_read_raw(&st, t, file, &err) == 0, "%s", err.msg);
    m->ops->download_raw(m->be, w, f->w_sinv, 2 * (size_t)f->slots * sizeof *w);
    int weights = 1;
    for (int s = 0; s < f->slots; s++) weights &= memcmp(&w[gt_fp8_t_w(s)], &file[gt_fp8_t_w(s)], sizeof *w) == 0;
    gt_check_true(c, scale && sinv && hist && weights,
                  "%s: after generating, scale (%d), scale_inv (%d), amax_history (%d) and the weights' cast scale_inv "
                  "(%d) equal fp8_state.safetensors bitwise", name, scale, sinv, hist, weights);
    printf("%s: scales, histories and weight scales after generating: %s the file's\n", name,
           scale && sinv && hist && weights ? "bitwise" : "NOT");
    free(w);
    free(file);
    gt_st_close(&st);
}

/* Control: every scale times 0.7 (scale_inv / 0.7) before the decoder's weight cast changes prompt
 * 0's prefill logits (want: the file's scales' logits). */
static void check_scales_matter(gt_check *c, gt_backend *be, const char *dir, const char *name, const int32_t *seq,
                                int n, const float *want) {
    gt_model m;
    open_model(&m, be, dir, 1);
    int count = m.fp8->count, V = m.cfg.vocab_size;
    float *sc = gt_malloc((size_t)count * sizeof *sc), *si = gt_malloc((size_t)count * sizeof *si);
    m.ops->download_raw(be, sc, m.fp8->scale, (size_t)count * sizeof *sc);
    m.ops->download_raw(be, si, m.fp8->scale_inv, (size_t)count * sizeof *si);
    for (int t = 0; t < count; t++) sc[t] *= 0.7f, si[t] /= 0.7f;
    m.ops->upload_raw(be, m.fp8->scale, sc, (size_t)count * sizeof *sc);
    m.ops->upload_raw(be, m.fp8->scale_inv, si, (size_t)count * sizeof *si);
    gt_decoder d;
    gt_err err;
    GT_ASSERT(gt_decoder_init(&d, &m, 1, n + 1, &err) == 0, "%s", err.msg);
    float *lg = gt_malloc((size_t)V * sizeof *lg);
    gt_decoder_prefill(&d, 0, seq, n, lg, NULL);
    double diff = gt_max_abs_diff_f(lg, want, V);
    gt_check_true(c, diff > 0, "%s control: scales times 0.7 give other logits (max |diff| %.3g)", name, diff);
    printf("%s control: scales times 0.7 change the logits by up to %.3g\n", name, diff);
    free(lg);
    free(si);
    free(sc);
    gt_decoder_free(&d);
    gt_model_free(&m);
}

static int all_fp8(const gt_model *m) {
    int ok = 1;
    for (int s = 0; s < m->fp8->slots; s++) ok &= m->fp8->fp8_used[s];
    return ok;
}

typedef struct {
    int32_t *seq[NP];
    int n[NP], plen[NP];
    float *logits; /* [NEW][NP][V]: the FP8 decoder's, prefill then each step */
} run_log;

/* Greedy generation of NEW tokens for NP prompts with the FP8 decoder, each step checked against the
 * full FP8 forward; the logits go to log. */
static void generate_checked(gt_check *c, gt_model *m, const char *name, run_log *log) {
    int V = m->cfg.vocab_size, longest = 0;
    int lens[NP] = {5, 9, 3};
    for (int b = 0; b < NP; b++) {
        log->seq[b] = gt_malloc(MAXLEN * sizeof(int32_t));
        log->n[b] = log->plen[b] = lens[b];
        for (int t = 0; t < lens[b]; t++) log->seq[b][t] = (int32_t)(3 + (b * 37 + t * 11) % (V - 3));
        longest = lens[b] > longest ? lens[b] : longest;
    }
    gt_decoder d;
    gt_err err;
    GT_ASSERT(gt_decoder_init(&d, m, NP, longest + NEW, &err) == 0, "%s", err.msg);
    float *ref = gt_malloc((size_t)V * sizeof *ref);
    int32_t tok[NP], pos[NP], next[NP];
    int picks_ok = 1, fp8_prefill = 1, fp8_decode = 1;
    double worst = 0;
    for (int b = 0; b < NP; b++) {
        float *lg = log->logits + (size_t)b * V;
        gt_decoder_prefill(&d, b, log->seq[b], log->n[b], lg, next + b);
        fp8_prefill &= all_fp8(m);
        full_last_logits(m, log->seq[b], log->n[b], round16(log->n[b]), ref);
        worst = fmax(worst, gt_max_abs_diff_f(lg, ref, V));
    }
    for (int k = 0; k < NEW; k++) {
        float *lg = log->logits + (size_t)k * NP * V;
        for (int b = 0; b < NP; b++) {
            tok[b] = gt_argmax_f(lg + (size_t)b * V, V);
            picks_ok &= next[b] == tok[b];
            log->seq[b][log->n[b]] = tok[b];
            pos[b] = log->n[b]++;
        }
        if (k + 1 == NEW) break;
        float *out = lg + (size_t)NP * V;
        gt_decoder_step(&d, NP, tok, pos, out, next);
        fp8_decode &= all_fp8(m);
        for (int b = 0; b < NP; b++) {
            full_last_logits(m, log->seq[b], log->n[b], round16(log->n[b]), ref);
            worst = fmax(worst, gt_max_abs_diff_f(out + (size_t)b * V, ref, V));
        }
    }
    gt_check_true(c, worst <= 1e-5, "%s FP8: decode logits vs the full FP8 forward: max |diff| %.3g", name, worst);
    printf("%s FP8: decode logits vs the full FP8 forward, %d prompts (5, 9, 3 tokens), %d steps: max |diff| %.3g\n",
           name, NP, NEW, worst);
    gt_check_true(c, picks_ok, "%s FP8: the decoder's greedy picks differ from the logits' argmax", name);
    gt_check_true(c, fp8_prefill && fp8_decode, "%s FP8: every GEMM ran in FP8 (prefill %d, decode %d)", name,
                  fp8_prefill, fp8_decode);
    free(ref);
    gt_decoder_free(&d);
}

/* Prompt 0 alone in a decoder of one sequence: bitwise the logits it had in the batch. */
static void check_batch_one(gt_check *c, gt_model *m, const char *name, const run_log *log) {
    int V = m->cfg.vocab_size, n = log->plen[0];
    gt_decoder d;
    gt_err err;
    GT_ASSERT(gt_decoder_init(&d, m, 1, n + NEW, &err) == 0, "%s", err.msg);
    float *lg = gt_malloc((size_t)V * sizeof *lg);
    gt_decoder_prefill(&d, 0, log->seq[0], n, lg, NULL);
    int same = memcmp(lg, log->logits, (size_t)V * sizeof *lg) == 0;
    for (int k = 1; k < NEW; k++) {
        int32_t tok = log->seq[0][n + k - 1], pos = n + k - 1;
        gt_decoder_step(&d, 1, &tok, &pos, lg, NULL);
        same &= memcmp(lg, log->logits + (size_t)k * NP * V, (size_t)V * sizeof *lg) == 0;
    }
    gt_check_true(c, same, "%s FP8: prompt 0 alone (batch 1) gives bitwise its logits of the batch of %d", name, NP);
    printf("%s FP8: batch 1 vs batch %d logits: %s\n", name, NP, same ? "bitwise equal" : "DIFFER");
    free(lg);
    gt_decoder_free(&d);
}

#define PARAM(m, off) ((char *)(m)->params + (off) * (m)->ops->size[GT_ACT])

typedef struct {
    gt_model *m;
    double worst;
    char which[64];
} gemm_check;

/* got (device, n elements of the FP8 forward) against want (device: the BF16 GEMM's output). */
static void compare(gemm_check *g, const void *got, const void *want, size_t n, const char *what, int l) {
    const gt_ops *o = g->m->ops;
    float *a = gt_malloc(n * sizeof *a), *b = gt_malloc(n * sizeof *b);
    o->download(g->m->be, GT_ACT, a, got, n);
    o->download(g->m->be, GT_ACT, b, want, n);
    double e = gt_rel_err_f(a, b, n);
    if (e > g->worst || g->which[0] == 0) snprintf(g->which, sizeof g->which, "%s of layer %d", what, l);
    g->worst = fmax(g->worst, e);
    free(b);
    free(a);
}

/* y = x - r (n elements, device): a GEMM's output recovered from the residuals around it. */
static void *minus(gt_model *m, const void *x, const void *r, size_t n) {
    float *a = gt_malloc(n * sizeof *a), *b = gt_malloc(n * sizeof *b);
    m->ops->download(m->be, GT_ACT, a, x, n);
    m->ops->download(m->be, GT_ACT, b, r, n);
    for (size_t i = 0; i < n; i++) a[i] -= b[i];
    void *y = m->ops->alloc(m->be, n * m->ops->size[GT_ACT]);
    m->ops->upload(m->be, GT_ACT, y, a, n);
    free(b);
    free(a);
    return y;
}

/* Every FP8 GEMM of a full FP8 forward over prompt 0 (padded to 16 tokens) against the BF16 GEMM
 * of the same weights on the same input (its input rebuilt from the forward's stored activations:
 * the norms, RoPE and GeGLU rerun in BF16; o_proj's and fc2's outputs are the residuals'
 * differences): the relative RMS error of the worst. */
static void check_each_gemm(gt_check *c, gt_model *m, const char *name, const run_log *log) {
    const gt_ops *o = m->ops;
    gt_backend *be = m->be;
    const gt_layout *L = &m->lay;
    int T = round16(log->plen[0]), C = L->C, F = L->F, HD = L->Hq * L->D, V = m->cfg.vocab_size;
    float eps = (float)m->cfg.rms_norm_eps;
    float *logits = gt_malloc((size_t)T * V * sizeof *logits);
    int32_t *tok = gt_malloc((size_t)T * sizeof *tok), *tgt = gt_malloc((size_t)T * sizeof *tgt);
    int32_t *pos = gt_malloc((size_t)T * sizeof *pos);
    for (int t = 0; t < T; t++) tok[t] = t < log->plen[0] ? log->seq[0][t] : 0, tgt[t] = -1, pos[t] = t;
    gt_model_alloc_batch(m, 1, T);
    gt_model_set_batch(m, tok, tgt, pos, NULL);
    gt_model_forward(m, 0, 0.0f, logits);
    size_t wide = (size_t)T * (2 * F > L->Q ? 2 * F : L->Q), act = o->size[GT_ACT];
    void *ln = o->alloc(be, (size_t)T * C * act), *y = o->alloc(be, wide * act), *h = o->alloc(be, (size_t)T * F * act);
    void *rstd = o->alloc(be, (size_t)T * o->size[GT_STAT]);
    gemm_check g = {m, 0, ""};
    for (int l = 0; l < L->L; l++) {
        const gt_layer_acts *a = &m->acts[l];
        const gt_layer_offsets *w = &L->layer[l];
        o->rmsnorm_fwd(be, ln, rstd, a->res, PARAM(m, w->ln1), eps, T, C);
        o->matmul_fwd(be, y, ln, PARAM(m, w->qkv), T, C, L->Q);
        o->rope_fwd(be, y, m->pos, (float)m->cfg.rope_theta, T, L->Hq, L->Hkv, L->D); /* as a->qkv holds it */
        compare(&g, a->qkv, y, (size_t)T * L->Q, "QKV", l);
        o->matmul_fwd(be, y, a->att, PARAM(m, w->o), T, HD, C);
        void *d = minus(m, a->res_mid, a->res, (size_t)T * C);
        compare(&g, d, y, (size_t)T * C, "o_proj", l);
        o->release(be, d);
        o->rmsnorm_fwd(be, ln, rstd, a->res_mid, PARAM(m, w->ln2), eps, T, C);
        o->matmul_fwd(be, y, ln, PARAM(m, w->fc1), T, C, 2 * F);
        compare(&g, a->fc1, y, (size_t)T * 2 * F, "fc1", l);
        o->geglu_fwd(be, h, a->fc1, m->cfg.act, T, F);
        o->matmul_fwd(be, y, h, PARAM(m, w->fc2), T, F, C);
        d = minus(m, l + 1 < L->L ? m->acts[l + 1].res : m->res_final, a->res_mid, (size_t)T * C);
        compare(&g, d, y, (size_t)T * C, "fc2", l);
        o->release(be, d);
    }
    if (m->fp8->recipe.lm_head) { /* the logits of the forward against BF16 lm_head rows of lnf */
        o->matmul_fwd(be, y, m->lnf, PARAM(m, L->wte), T, C, V);
        void *got = o->alloc(be, (size_t)T * V * act);
        o->upload(be, GT_ACT, got, logits, (size_t)T * V);
        compare(&g, got, y, (size_t)T * V, "lm_head", L->L);
        o->release(be, got);
    }
    gt_check_true(c, g.worst <= FP8_GEMM_TOL && g.worst > 0, "%s: every FP8 GEMM vs BF16 on its input: worst relative "
                  "RMS error %.4f (%s; tolerance %.2f, not 0)", name, g.worst, g.which, FP8_GEMM_TOL);
    printf("%s: every FP8 GEMM vs the BF16 GEMM on the same input: worst relative RMS error %.4f (%s; tolerance "
           "%.2f)\n", name, g.worst, g.which, FP8_GEMM_TOL);
    void *bufs[] = {ln, y, h, rstd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->release(be, bufs[i]);
    free(pos), free(tgt), free(tok), free(logits);
}

/* The BF16 model's logits over the FP8 run's sequences (teacher-forced), against the FP8 ones. */
static void check_against_bf16(gt_check *c, gt_model *f, const char *dir, const char *name, const run_log *log) {
    gt_model m;
    open_model(&m, f->be, dir, 0);
    int V = m.cfg.vocab_size;
    float *ref = gt_malloc((size_t)V * sizeof *ref);
    double worst = 0;
    for (int k = 0; k < NEW; k++)
        for (int b = 0; b < NP; b++) {
            const float *got = log->logits + ((size_t)k * NP + b) * V;
            full_last_logits(&m, log->seq[b], log->plen[b] + k, log->plen[b] + k, ref);
            double e = gt_rel_err_f(got, ref, (size_t)V);
            worst = fmax(worst, e);
        }
    gt_check_true(c, worst <= FP8_TOL && worst > 0, "%s FP8 vs BF16 logits: relative RMS error %.4f (tolerance %.2f, "
                  "and not 0: FP8 ran)", name, worst, FP8_TOL);
    printf("%s FP8 vs BF16 logits: worst relative RMS error %.4f over %d x %d rows (tolerance %.2f)\n", name, worst,
           NEW, NP, FP8_TOL);
    free(ref);
    gt_model_free(&m);
}

static void check_fixture(gt_check *c, const char *bin, const char *tmp, const char *name, int lm_head) {
    char dir[600];
    calibrate(bin, name, tmp, lm_head, dir, sizeof dir);
    gt_backend *be = gt_cpu_backend_create();
    gt_model m;
    open_model(&m, be, dir, 1);
    GT_ASSERT(m.fp8->recipe.lm_head == lm_head, "%s: the state's lm_head", dir);
    int V = m.cfg.vocab_size;
    run_log log = {.logits = gt_malloc((size_t)NEW * NP * V * sizeof(float))};
    generate_checked(c, &m, name, &log);
    check_batch_one(c, &m, name, &log);
    check_scales(c, &m, dir, name);
    check_each_gemm(c, &m, name, &log);
    check_against_bf16(c, &m, dir, name, &log);
    gt_model_free(&m);
    check_scales_matter(c, be, dir, name, log.seq[0], log.plen[0], log.logits);
    for (int b = 0; b < NP; b++) free(log.seq[b]);
    free(log.logits);
    gt_cpu_backend_destroy(be);
}

int main(int argc, char **argv) {
    GT_ASSERT(argc > 1, "usage: test_generate_fp8 GEMMATRON");
    char tmp[] = "/tmp/gt_generate_fp8_XXXXXX";
    GT_ASSERT(mkdtemp(tmp), "mkdtemp failed");
    gt_check c = {0};
    check_fixture(&c, argv[1], tmp, "gqa", 1);
    check_fixture(&c, argv[1], tmp, "mqa", 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) fprintf(stderr, "test_generate_fp8: could not remove %s\n", tmp);
    return gt_check_done(&c, "test_generate_fp8");
}
