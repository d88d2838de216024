/* AdamW over a model's parameter buffer: FP32 master weights and moments (on the CPU backends the
 * parameters themselves are the master copy), global gradient-norm clipping, weight decay on
 * matrices only (not on norms), and a step with a non-finite gradient skipped, not applied.
 *
 * Distributed (ZeRO-1, parallel.zero, DESIGN.md §3): over a dp group of n > 1 ranks, dp rank r owns
 * the elements [lo, hi) = [r S, (r + 1) S) of the tp rank's flat buffer (S = ceil(count / n), the
 * model padded to n S), holds master weights and moments for those alone, updates them from the
 * reduce-scattered gradients, and all-gathers the updated parameters over dp. */
#ifndef GT_OPTIMIZER_H
#define GT_OPTIMIZER_H

#include "../model/model.h"

typedef struct {
    float beta1, beta2, eps, weight_decay;
    float clip; /* global gradient-norm clip; <= 0: none */
} gt_adamw_config;

typedef struct {
    size_t off, count;
    int decay;
} gt_opt_segment;

typedef struct {
    gt_adamw_config cfg;
    gt_model *m;
    gt_group *dp;  /* ZeRO-1: the dp group the state is sharded over; NULL: every rank holds all */
    size_t lo, hi; /* the elements of the model's buffers this rank updates (0, count unsharded) */
    void *master;  /* [hi - lo] GRAD-kind elements (element lo first), NULL when params are the master (CPU) */
    void *mom, *var; /* [hi - lo] GRAD-kind elements */
    gt_opt_segment *seg;
    int nseg;
    int step;     /* steps applied */
    int skipped;  /* steps skipped for a non-finite gradient */
} gt_optimizer;

void gt_optimizer_init(gt_optimizer *o, gt_model *m, const gt_adamw_config *cfg);
/* The same, sharded over dp (ZeRO-1) when dp has more than one rank: shards the model's buffers
 * (gt_model_shard_dp) and allocates the state of this rank's range only. */
void gt_optimizer_init_sharded(gt_optimizer *o, gt_model *m, const gt_adamw_config *cfg, gt_group *dp);

/* Device bytes of the optimizer state of one rank whose parameter buffer has count elements, with dp
 * ranks (zero = 0: every rank holds all of it): master copy (when the backend's parameters are not
 * FP32 already) and both moments of ceil(count / dp) elements with zero, of count without. The
 * sharded model's padding (< dp elements of parameters and gradients) is not included. */
size_t gt_optimizer_device_bytes(const gt_ops *ops, size_t count, int dp, int zero);
void gt_optimizer_free(gt_optimizer *o);

/* Squared norm of the model's whole gradient (gt_model_grad_sumsq: tp-aware, each parameter once). */
double gt_optimizer_grad_sumsq(gt_optimizer *o);

/* One AdamW step at learning rate lr from the accumulated gradients, whose squared norm is
 * sumsq (after every reduction). Returns 0, or 1 when the step was skipped for a non-finite
 * gradient. Sharded: updates [lo, hi), then gathers the parameters over dp (collective). */
int gt_optimizer_step(gt_optimizer *o, float lr, double sumsq);

#endif
