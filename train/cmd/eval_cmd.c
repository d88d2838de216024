/* gemmatron eval --model HF_DIR --data FILE [--seq-len T] [--tp N] [--device auto|cpu|cuda]
 *                [--logits OUT]
 *
 * The token file (a shard or whitespace-separated ids) is cut into consecutive sequences of T
 * tokens (default: the whole file when it is shorter than the model's context, else the context
 * length); the last one may be shorter. Each sequence predicts its tokens 1..T-1 from the ones
 * before. With attributes, only tokens marked as targets count and attention does not cross the
 * document starts. Under mpirun the model is split over tp ranks and the sequences over the
 * dp = world / tp replicas. Rank 0 prints, as its last line: eval_loss=<mean> tokens=<count>.
 *
 * --logits OUT writes the logits of the FIRST sequence (n = its length, V = vocab_size, every
 * position, targets or not) as float32, row-major [n, V], little-endian: a .npy file (NumPy format
 * 1.0, dtype '<f4', shape (n, V): np.load(OUT)) when OUT ends in ".npy", else the raw n*V floats
 * (np.fromfile(OUT, "<f4").reshape(n, V)). The logits are those of the backend's forward (on CUDA:
 * BF16 logits widened to float). It needs tp = 1: with tensor parallelism each rank computes only
 * its slice of the vocabulary (vocab-parallel lm_head) and the full rows are never gathered. With
 * dp > 1, the rank that evaluates the first sequence (world rank 0) writes the file. Note the host
 * memory: n * V * 4 bytes (2048 tokens of Gemma's 256k vocabulary: 2 GiB). */
#include "eval_cmd.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../comm/grid.h"
#include "../../data/sequence.h"
#include "../session.h"
#include "cli.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "eval --logits writes the host's float32 bytes as little-endian"
#endif

typedef struct {
    const char *model, *data, *device, *logits;
    int seq_len, tp;
} eval_args;

static const gt_opt eval_opts[] = {
    {.name = "--model", .kind = GT_OPT_STRING, .offset = offsetof(eval_args, model), .meta = "HF_DIR", .required = 1,
     .help = "the model: an HF Gemma directory (config.json, safetensors) or a gemmatron checkpoint"},
    {.name = "--data", .kind = GT_OPT_STRING, .offset = offsetof(eval_args, data), .meta = "FILE", .required = 1,
     .help = "the tokens: a gemmatron token shard (scripts/prepare_data.py) or whitespace-separated token ids"},
    {.name = "--seq-len", .kind = GT_OPT_INT, .offset = offsetof(eval_args, seq_len), .meta = "T", .min = 2,
     .def_help = "the whole file when it is shorter than the model's context, else the context length",
     .help = "length of the consecutive sequences the file is cut into; the last one may be shorter"},
    {.name = "--tp", .kind = GT_OPT_INT, .offset = offsetof(eval_args, tp), .meta = "N", .def = "1", .min = 1,
     .help = "tensor-parallel ranks (under mpirun; the other ranks split the sequences data-parallel)"},
    {.name = "--device", .kind = GT_OPT_STRING, .offset = offsetof(eval_args, device), .meta = "D", .def = "auto",
     .help = "auto (cuda when a GPU is visible), cpu, cpu64 or cuda"},
    {.name = "--logits", .kind = GT_OPT_STRING, .offset = offsetof(eval_args, logits), .meta = "OUT",
     .help = "also writes the logits of the first sequence as float32 [n, vocab]: a .npy file when OUT ends in "
             ".npy, else raw little-endian floats (needs --tp 1)"},
};

const gt_cli_cmd gt_eval_cli = {
    .name = "eval",
    .summary = "mean next-token loss of a model on a token file",
    .about = "Cuts the token file into consecutive sequences and prints, as its last line, eval_loss=<mean> "
             "tokens=<count>: the mean loss of predicting every target token from the ones before it (with a "
             "shard's attributes, only tokens marked as targets count and attention stops at document starts).",
    .examples = "gemmatron eval --model runs/tiny-cpu/final --data data/demo/val.bin\n"
                "gemmatron eval --model tests/fixtures/mha --data ids.txt --device cpu --logits logits.npy\n"
                "mpirun -np 2 gemmatron eval --model gemma-2b --data val.bin --tp 2",
    GT_CLI_OPTS(eval_opts),
};

/* What the option table cannot say: --logits needs whole rows of the vocabulary. */
static int check_args(const eval_args *a, gt_err *err) {
    if (a->logits && a->tp > 1)
        return gt_fail(err, "eval: --logits needs --tp 1: at tp=%d each rank holds only its slice of the vocabulary's "
                            "logits (vocab-parallel lm_head), which are never gathered into full rows", a->tp);
    return 0;
}

/* Writes n x V floats to f, opened on path: a .npy header (format 1.0, '<f4', C order) first when
 * path ends in ".npy". Closes f; on failure removes path. */
static int write_logits(FILE *f, const char *path, const float *x, int64_t n, int64_t V, gt_err *err) {
    size_t len = strlen(path);
    int ok = 1;
    if (len >= 4 && !strcmp(path + len - 4, ".npy")) {
        char dict[128];
        int d = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                         (long long)n, (long long)V);
        int hlen = (d + 1 + 10 + 63) / 64 * 64 - 10; /* magic, version, u16 length, dict + '\n': 64-aligned */
        unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                                 (unsigned char)(hlen >> 8)};
        ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fprintf(f, "%-*s\n", hlen - 1, dict) == hlen;
    }
    ok = ok && fwrite(x, sizeof(float), (size_t)(n * V), f) == (size_t)(n * V);
    int saved = errno;
    if (fclose(f) != 0 && ok) ok = 0, saved = errno;
    if (!ok) {
        remove(path);
        return gt_fail(err, "eval: --logits %s: write failed: %s", path, strerror(saved));
    }
    return 0;
}

/* Sums the loss and the targets of this replica's sequences (sequence i is dp rank i mod dp's);
 * logits (may be NULL) gets the first sequence's, *logits_n its length. */
static void eval_sequences(gt_model *m, const gt_tokens *tk, int64_t T, const gt_grid *g, float **logits,
                           int64_t *logits_n, double *loss, int64_t *targets, int64_t *bad_seq) {
    int32_t *buf = gt_malloc(4 * (size_t)T * sizeof(int32_t));
    int64_t seq = 0;
    for (int64_t t0 = 0; t0 + 1 < tk->count; t0 += T, seq++) {
        int n = (int)(tk->count - t0 < T ? tk->count - t0 : T);
        if (n < 2) break;
        if (seq % g->dp != g->dp_rank) continue;
        int32_t *tok = buf, *tgt = buf + n, *pos = buf + 2 * n, *seg = buf + 3 * n;
        *targets += gt_fill_sequence(tk, t0, n, 1, tok, tgt, pos, seg);
        gt_model_alloc_batch(m, 1, n);
        gt_model_set_batch(m, tok, tgt, pos, tk->attr ? seg : NULL);
        if (logits && seq == 0) {
            *logits_n = n;
            *logits = gt_malloc((size_t)n * (size_t)m->cfg.vocab_size * sizeof(float));
        }
        double l = gt_model_forward(m, 0, 0.0f, logits && seq == 0 ? *logits : NULL);
        if (!isfinite(l) && *bad_seq < 0) *bad_seq = seq;
        *loss += l;
    }
    free(buf);
}

/* The error for a non-finite mean loss: the first tensor with a non-finite weight in this rank's
 * slices when there is one (bad weights, e.g. a diverged or corrupted checkpoint), else the first
 * sequence of this replica whose loss was not finite (the activations overflowed). */
static int nonfinite_loss(const gt_model *m, const eval_args *a, int64_t bad_seq, int64_t T, double loss,
                          gt_err *err) {
    char name[96];
    if (gt_model_first_nonfinite(m, name, sizeof name))
        return gt_fail(err, "eval: the loss is %g: %s holds a non-finite weight (NaN or infinity) in %s", loss, name,
                       a->model);
    if (bad_seq >= 0)
        return gt_fail(err, "eval: the loss is %g: every weight of %s is finite, but sequence %lld (from token %lld of "
                            "%s) gave a non-finite loss", loss, a->model, (long long)bad_seq, (long long)(bad_seq * T),
                       a->data);
    return gt_fail(err, "eval: the loss is %g: every weight of %s is finite here; another rank's sequence or slice gave a "
                        "non-finite loss", loss, a->model);
}

static int run_eval(const eval_args *a, gt_grid *g, gt_err *err) {
    /* --logits: [n, V] of the first sequence (tp = 1: whole rows, V = vocab_size), written by world rank
     * 0, which evaluates sequence 0; the file is created first, so a bad path fails before any work. */
    FILE *logits_file = NULL;
    if (a->logits && g->world_rank == 0 && !(logits_file = fopen(a->logits, "wb")))
        return gt_fail(err, "eval: --logits %s: cannot create: %s", a->logits, strerror(errno));
    gt_session_spec spec = {.device = a->device, .config = a->model, .weights = a->model, .tp_overlap = 1,
                            .forward_only = 1};
    gt_session s;
    gt_tokens tk = {0};
    float *logits = NULL;
    int64_t logits_n = 0;
    int rc = -1;
    if (gt_session_open(&s, &spec, g, err)) goto out_file;
    const gt_config *cfg = &s.model.cfg;
    if (gt_tokens_read(&tk, a->data, (uint32_t)cfg->vocab_size, err)) goto out_session;
    if (tk.count < 2) {
        gt_fail(err, "%s: needs at least 2 tokens to predict one", a->data);
        goto out_session;
    }
    int64_t T = a->seq_len ? a->seq_len : (tk.count <= cfg->max_position_embeddings ? tk.count : cfg->max_position_embeddings);
    if (g->world_rank == 0)
        fprintf(stderr, "gemmatron eval: %s on %s (tp=%d dp=%d), %lld tokens, sequences of %lld\n", a->model,
                s.compute.ops->name, g->tp, g->dp, (long long)tk.count, (long long)T);
    double loss = 0;
    int64_t targets = 0;
    int64_t bad_seq = -1;
    eval_sequences(&s.model, &tk, T, g, logits_file ? &logits : NULL, &logits_n, &loss, &targets, &bad_seq);
    double sums[2] = {loss, (double)targets};
    gt_allreduce_host(&g->dp_group, sums, 2, GT_F64, GT_RED_SUM);
    loss = sums[0];
    targets = (int64_t)sums[1];
    if (!isfinite(loss)) { /* every rank sees it (the sum carries the NaN): no rank waits on another */
        nonfinite_loss(&s.model, a, bad_seq, T, loss, err);
        goto out_session;
    }
    if (targets == 0) {
        gt_fail(err, "%s: no token is marked as a target", a->data);
        goto out_session;
    }
    if (logits_file) { /* after the collective, so that a failed write cannot leave other ranks waiting */
        FILE *f = logits_file;
        logits_file = NULL;
        if (write_logits(f, a->logits, logits, logits_n, cfg->vocab_size, err)) goto out_session;
        fprintf(stderr, "gemmatron eval: logits of the first sequence [%lld, %lld] float32 -> %s\n",
                (long long)logits_n, (long long)cfg->vocab_size, a->logits);
    }
    if (g->world_rank == 0) printf("eval_loss=%.6f tokens=%lld\n", loss / (double)targets, (long long)targets);
    rc = 0;
out_session:
    free(logits);
    gt_tokens_free(&tk);
    gt_session_close(&s);
out_file:
    if (logits_file) { /* failed before the logits were written: leave no empty file behind */
        fclose(logits_file);
        remove(a->logits);
    }
    return rc;
}

int gt_cmd_eval(int argc, char **argv) {
    eval_args a = {0};
    gt_err err;
    gt_grid g;
    int code = gt_cli_args(&gt_eval_cli, argc, argv, &a);
    if (code != GT_CLI_GO) return code;
    if (check_args(&a, &err) || gt_grid_init(&g, &argc, &argv, a.tp, &err)) {
        fprintf(stderr, "gemmatron: %s\n", err.msg);
        return 1;
    }
    int rc = run_eval(&a, &g, &err);
    if (rc) fprintf(stderr, "gemmatron: %s\n", err.msg);
    gt_grid_free(&g);
    return rc ? 1 : 0;
}
