/* Generation with the KV cache on the CPU reference (float32), on the HF fixtures:
 * - every decode step's logits (and each prefill's) equal the full forward over the same prefix
 *   (gt_model_forward, no cache) within 1e-5, for a batch of prompts of unequal lengths;
 * - the decoder's own greedy picks (ops argmax_rows) equal the argmax of its logits;
 * - greedy tokens equal transformers' generate (left-padded batch, attention_mask), as
 *   scripts/make_fixtures.py --generate recorded them (tests/fixtures/NAME/generate.safetensors,
 *   float32, transformers 5.17);
 * - the sampler: seeded draws repeat, and their frequencies follow the softmax (chi-square,
 *   including top-k and top-p truncation). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../model/decoder.h"
#include "../../model/safetensors.h"
#include "../../train/sampler.h"
#include "check.h"
#include "decode_harness.h"

static const char *const fixtures[] = {"mha", "mqa", "gqa", "f16", "bf16"};

#define NP 3
#define NEW 8

/* HF's recording: prompts [B, T] left-padded with pad ids (attention_mask 0), and the greedy
 * continuation [B, NEW] (pad after EOS). Returns 0 when the fixture has none. */
typedef struct {
    int B, T, K;
    int64_t *prompt, *mask, *gen;
} hf_gen;

static int64_t *read_i64(const gt_st *st, const char *name, int *d0, int *d1) {
    const gt_st_tensor *t = gt_st_find(st, name);
    GT_ASSERT(t && t->dtype == GT_I64 && t->ndim == 2, "generate.safetensors: bad %s", name);
    *d0 = (int)t->shape[0];
    *d1 = (int)t->shape[1];
    int64_t *raw = gt_malloc((size_t)t->numel * sizeof *raw);
    gt_err err;
    GT_ASSERT(gt_st_read_raw(st, t, raw, &err) == 0, "%s", err.msg);
    return raw;
}

static int read_hf(hf_gen *h, const char *dir) {
    char path[300];
    snprintf(path, sizeof path, "%s/generate.safetensors", dir);
    memset(h, 0, sizeof *h);
    if (access(path, R_OK)) return 0;
    gt_st st;
    gt_err err;
    GT_ASSERT(gt_st_open(&st, path, &err) == 0, "%s", err.msg);
    int b, t;
    h->prompt = read_i64(&st, "input_ids", &h->B, &h->T);
    h->mask = read_i64(&st, "attention_mask", &b, &t);
    h->gen = read_i64(&st, "generated", &b, &h->K);
    gt_st_close(&st);
    return 1;
}

static void check_fixture(gt_check *c, const char *name) {
    char dir[256], what[200];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", name);
    gt_err err;
    gt_config cfg;
    gt_model m;
    gt_backend *be = gt_cpu_backend_create();
    GT_ASSERT(gt_config_load(&cfg, dir, &err) == 0, "%s", err.msg);
    /* forward-only, as `generate` opens it: no gradient buffer, and every check below still holds */
    GT_ASSERT(gt_model_init_forward(&m, &cfg, gt_cpu_ops(), be, 0, 1, &err) == 0, "%s", err.msg);
    gt_check_true(c, m.grads == NULL, "%s: a forward-only model has no gradient buffer", name);
    GT_ASSERT(gt_model_load_hf(&m, dir, &err) == 0, "%s", err.msg);
    int V = cfg.vocab_size;

    /* The prompts: HF's recorded ones without their padding, else lengths 5, 9, 3. */
    hf_gen hf;
    int have_hf = read_hf(&hf, dir);
    int B = have_hf ? hf.B : NP, K = have_hf ? hf.K : NEW;
    int32_t *seq[16];
    int n[16], plen[16];
    GT_ASSERT(B <= 16, "too many prompts");
    int longest = 0;
    for (int b = 0; b < B; b++) {
        seq[b] = gt_malloc(64 * sizeof(int32_t));
        n[b] = 0;
        if (have_hf) {
            for (int t = 0; t < hf.T; t++)
                if (hf.mask[b * hf.T + t]) seq[b][n[b]++] = (int32_t)hf.prompt[b * hf.T + t];
        } else {
            int lens[NP] = {5, 9, 3};
            for (int t = 0; t < lens[b]; t++) seq[b][n[b]++] = (int32_t)(3 + (b * 37 + t * 11) % (V - 3));
        }
        plen[b] = n[b];
        if (n[b] > longest) longest = n[b];
    }
    gt_decoder d;
    GT_ASSERT(gt_decoder_init(&d, &m, B, longest + K, &err) == 0, "%s", err.msg);
    float *logits = gt_malloc((size_t)B * V * sizeof *logits), *ref = gt_malloc((size_t)V * sizeof *ref);
    int32_t tok[16], pos[16], next[16];
    int picks_ok = 1;
    double worst = 0;
    for (int b = 0; b < B; b++) {
        gt_decoder_prefill(&d, b, seq[b], n[b], logits + (size_t)b * V, next + b);
        full_last_logits(&m, seq[b], n[b], n[b], ref);
        worst = fmax(worst, gt_max_abs_diff_f(logits + (size_t)b * V, ref, V));
    }
    int hf_ok = 1;
    for (int k = 0; k < K; k++) {
        for (int b = 0; b < B; b++) {
            tok[b] = gt_argmax_f(logits + (size_t)b * V, V);
            picks_ok &= next[b] == tok[b];
            if (have_hf && hf.gen[b * hf.K + k] != tok[b]) {
                /* HF pads after EOS; a sequence's tokens after its EOS are not compared */
                int ended = 0;
                for (int j = 0; j < k; j++) ended |= hf.gen[b * hf.K + j] == cfg.eos_token_id;
                if (!ended) hf_ok = 0;
            }
            seq[b][n[b]] = tok[b];
            pos[b] = n[b]++;
        }
        if (k + 1 == K) break;
        gt_decoder_step(&d, B, tok, pos, logits, next);
        for (int b = 0; b < B; b++) {
            full_last_logits(&m, seq[b], n[b], n[b], ref);
            double e = gt_max_abs_diff_f(logits + (size_t)b * V, ref, V);
            worst = fmax(worst, e);
        }
    }
    snprintf(what, sizeof what, "%s: decode logits vs full forward, %d prompts (%d, %d, %d tokens), %d steps: "
             "max |diff| %.3g", name, B, plen[0], plen[1 % B], plen[2 % B], K, worst);
    gt_check_true(c, worst <= 1e-5, "%s", what);
    printf("%s\n", what);
    gt_check_true(c, picks_ok, "%s: the decoder's greedy picks (argmax_rows) differ from the logits' argmax", name);
    /* every generation fixture has its recorded HF ids: a missing file is a failure, not a skip */
    gt_check_true(c, have_hf, "%s: no generate.safetensors (scripts/make_fixtures.py --generate records it)", name);
    if (have_hf) {
        gt_check_true(c, hf_ok, "%s: greedy tokens differ from transformers' generate", name);
        printf("%s: greedy tokens %s transformers' generate\n", name, hf_ok ? "equal" : "DIFFER FROM");
    }
    for (int b = 0; b < B; b++) free(seq[b]);
    free(ref);
    free(logits);
    free(hf.prompt);
    free(hf.mask);
    free(hf.gen);
    gt_decoder_free(&d);
    gt_model_free(&m);
    gt_cpu_backend_destroy(be);
}

/* Chi-square of `draws` samples against the expected distribution p (entries with p = 0 must never
 * be drawn). The 0.1% critical values for df = 1..7. */
static void check_frequencies(gt_check *c, const char *what, gt_sampler *s, const float *logits, const double *p,
                              int V, int draws) {
    static const double crit[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32};
    long count[16] = {0};
    uint64_t rng = gt_sampler_stream(7, 0);
    for (int i = 0; i < draws; i++) count[gt_sampler_next(s, logits, &rng)]++;
    double chi = 0;
    int df = -1, impossible = 0;
    for (int v = 0; v < V; v++) {
        if (p[v] == 0) {
            impossible += count[v] != 0;
            continue;
        }
        double e = p[v] * draws;
        chi += (count[v] - e) * (count[v] - e) / e;
        df++;
    }
    gt_check_true(c, !impossible && chi < crit[df], "%s: chi-square %.2f (df %d, 0.1%% critical %.2f), %d draws of "
                  "excluded tokens", what, chi, df, crit[df], impossible);
    printf("%s: chi-square %.2f, df %d (critical %.2f)\n", what, chi, df, crit[df]);
}

static void check_sampler(gt_check *c) {
    enum { V = 6, DRAWS = 40000 };
    const float logits[V] = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f, 0.0f};
    const double T = 0.8;
    double p[V], sum = 0;
    for (int v = 0; v < V; v++) sum += p[v] = exp(logits[v] / T);
    for (int v = 0; v < V; v++) p[v] /= sum;
    gt_sampler s;
    gt_sampler_init(&s, V, T, 0, 1.0);
    check_frequencies(c, "sampler T=0.8", &s, logits, p, V, DRAWS);
    /* reproducible: the same stream gives the same tokens */
    uint64_t r1 = gt_sampler_stream(42, 3), r2 = gt_sampler_stream(42, 3), r3 = gt_sampler_stream(43, 3);
    int same = 1, differ = 0;
    for (int i = 0; i < 200; i++) {
        int32_t a = gt_sampler_next(&s, logits, &r1), b = gt_sampler_next(&s, logits, &r2);
        same &= a == b;
        differ |= a != gt_sampler_next(&s, logits, &r3);
    }
    gt_check_true(c, same && differ, "sampler: seeded streams repeat (%d) and another seed differs (%d)", same, differ);
    gt_sampler_free(&s);
    /* top-k 3: ids 1, 4, 0 renormalized */
    double pk[V] = {0};
    double sk = p[1] + p[4] + p[0];
    pk[1] = p[1] / sk, pk[4] = p[4] / sk, pk[0] = p[0] / sk;
    gt_sampler_init(&s, V, T, 3, 1.0);
    check_frequencies(c, "sampler T=0.8 top-k 3", &s, logits, pk, V, DRAWS);
    gt_sampler_free(&s);
    /* top-p: the smallest set of most likely tokens whose mass reaches P: ids 1 and 4 */
    double P = (p[1] + p[4] + p[1]) / 2; /* strictly between p1 and p1 + p4 */
    double pp[V] = {0};
    pp[1] = p[1] / (p[1] + p[4]), pp[4] = p[4] / (p[1] + p[4]);
    gt_sampler_init(&s, V, T, 0, P);
    check_frequencies(c, "sampler T=0.8 top-p", &s, logits, pp, V, DRAWS);
    gt_sampler_free(&s);
    /* greedy */
    gt_sampler_init(&s, V, 0, 0, 1.0);
    uint64_t r = 0;
    gt_check_true(c, gt_sampler_next(&s, logits, &r) == 1, "greedy: the largest logit");
    gt_sampler_free(&s);
}

int main(void) {
    gt_check c = {0};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) check_fixture(&c, fixtures[i]);
    check_sampler(&c);
    return gt_check_done(&c, "test_generate");
}
