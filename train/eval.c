/* gemmatron eval --model HF_DIR --data FILE [--seq-len T] [--tp N] [--device auto|cpu|cuda]
 *
 * The token file (a shard or whitespace-separated ids) is cut into consecutive sequences of T
 * tokens (default: the whole file when it is shorter than the model's context, else the context
 * length); the last one may be shorter. Each sequence predicts its tokens 1..T-1 from the ones
 * before. With attributes, only tokens marked as targets count and attention does not cross the
 * document starts. Under mpirun the model is split over tp ranks and the sequences over the
 * dp = world / tp replicas. Rank 0 prints, as its last line: eval_loss=<mean> tokens=<count>. */
#include "eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../comm/grid.h"
#include "../data/sequence.h"
#include "../model/model.h"
#include "backend.h"

typedef struct {
    const char *model, *data, *device;
    long seq_len;
    int tp;
} eval_args;

static int parse_args(eval_args *a, int argc, char **argv, gt_err *err) {
    memset(a, 0, sizeof *a);
    a->device = "auto";
    a->tp = 1;
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc) return gt_fail(err, "eval: option %s needs a value", k);
        const char *v = argv[++i];
        if (!strcmp(k, "--model")) a->model = v;
        else if (!strcmp(k, "--data")) a->data = v;
        else if (!strcmp(k, "--device")) a->device = v;
        else if (!strcmp(k, "--seq-len")) {
            char *end;
            a->seq_len = strtol(v, &end, 10);
            if (*end || a->seq_len < 2) return gt_fail(err, "eval: --seq-len must be an integer >= 2, got '%s'", v);
        } else if (!strcmp(k, "--tp")) {
            char *end;
            a->tp = (int)strtol(v, &end, 10);
            if (*end || a->tp < 1) return gt_fail(err, "eval: --tp must be a positive integer, got '%s'", v);
        } else return gt_fail(err, "eval: unknown option %s", k);
    }
    if (!a->model) return gt_fail(err, "eval: --model HF_DIR is required");
    if (!a->data) return gt_fail(err, "eval: --data FILE is required");
    return 0;
}

static int run_eval(const eval_args *a, gt_grid *g, gt_err *err) {
    gt_config cfg;
    if (gt_config_load(&cfg, a->model, err) || gt_config_validate(&cfg, a->model, err)) return -1;
    gt_tokens tk;
    if (gt_tokens_read(&tk, a->data, (uint32_t)cfg.vocab_size, err)) return -1;
    if (tk.count < 2) {
        gt_tokens_free(&tk);
        return gt_fail(err, "%s: needs at least 2 tokens to predict one", a->data);
    }
    int64_t T = a->seq_len ? a->seq_len : (tk.count <= cfg.max_position_embeddings ? tk.count : cfg.max_position_embeddings);
    gt_compute c;
    gt_model m;
    int rc = -1;
    if (gt_compute_open(&c, a->device, g->local_rank, err)) goto out_tokens;
    if (gt_model_init(&m, &cfg, c.ops, c.be, g->tp_rank, g->tp, err)) goto out_compute;
    if (gt_model_load_hf(&m, a->model, err)) goto out_model;
    if (c.is_cuda) gt_grid_use_nccl(g, gt_compute_stream(&c));
    gt_model_set_tp(&m, &g->tp_group);
    if (g->world_rank == 0)
        fprintf(stderr, "gemmatron eval: %s on %s (tp=%d dp=%d), %lld tokens, sequences of %lld\n", a->model,
                c.ops->name, g->tp, g->dp, (long long)tk.count, (long long)T);
    int32_t *buf = gt_malloc(4 * (size_t)T * sizeof(int32_t));
    double loss = 0;
    int64_t targets = 0;
    int64_t seq = 0;
    for (int64_t t0 = 0; t0 + 1 < tk.count; t0 += T, seq++) {
        int n = (int)(tk.count - t0 < T ? tk.count - t0 : T);
        if (n < 2) break;
        if (seq % g->dp != g->dp_rank) continue;
        int32_t *tok = buf, *tgt = buf + n, *pos = buf + 2 * n, *seg = buf + 3 * n;
        targets += gt_fill_sequence(&tk, t0, n, 1, tok, tgt, pos, seg);
        gt_model_alloc_batch(&m, 1, n);
        gt_model_set_batch(&m, tok, tgt, pos, tk.attr ? seg : NULL);
        loss += gt_model_forward(&m, 0, 0.0f, NULL);
    }
    free(buf);
    double sums[2] = {loss, (double)targets};
    gt_allreduce_host(&g->dp_group, sums, 2, GT_F64, GT_RED_SUM);
    loss = sums[0];
    targets = (int64_t)sums[1];
    if (targets == 0) {
        gt_fail(err, "%s: no token is marked as a target", a->data);
        goto out_model;
    }
    if (g->world_rank == 0) printf("eval_loss=%.6f tokens=%lld\n", loss / (double)targets, (long long)targets);
    rc = 0;
out_model:
    gt_model_free(&m);
out_compute:
    gt_compute_close(&c);
out_tokens:
    gt_tokens_free(&tk);
    return rc;
}

int gt_cmd_eval(int argc, char **argv) {
    eval_args a;
    gt_err err;
    gt_grid g;
    if (parse_args(&a, argc, argv, &err) || gt_grid_init(&g, &argc, &argv, a.tp, &err)) {
        fprintf(stderr, "gemmatron: %s\n", err.msg);
        return 1;
    }
    int rc = run_eval(&a, &g, &err);
    if (rc) fprintf(stderr, "gemmatron: %s\n", err.msg);
    gt_grid_free(&g);
    return rc ? 1 : 0;
}
