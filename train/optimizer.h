/* AdamW over a model's parameter buffer: FP32 master weights and moments (on the CPU backends the
 * parameters themselves are the master copy), or a leaner state (optim.state: bf16 moments, or
 * pure bf16 with stochastically rounded weights; kernels/ops.h gt_opt_state, DESIGN.md §5), global
 * gradient-norm clipping, weight decay on matrices only (not on norms), and a step with a
 * non-finite gradient skipped, not applied.
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
    int state;  /* gt_opt_state */
    uint64_t seed; /* of stochastic rounding (GT_OPT_BF16) */
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
    void *master;  /* [hi - lo] GRAD-kind elements (fp32 on CUDA, whatever the model's gradients
                    * are; element lo first), NULL when params are the master (CPU, GT_OPT_BF16) */
    void *mom, *var;  /* [hi - lo] elements of mom_kind each */
    gt_kind mom_kind; /* GT_GRAD (fp32 state) or GT_ACT (bf16 moments) */
    gt_opt_segment *seg;
    int nseg;
    int step;     /* steps applied */
    int skipped;  /* steps skipped for a non-finite gradient */
} gt_optimizer;

/* "fp32", "bf16_moments", "bf16" <-> gt_opt_state; parse returns -1 for an unknown name. */
int gt_opt_state_parse(const char *name, int *state);
const char *gt_opt_state_name(int state);
/* Bytes per parameter of the optimizer's own buffers (master copy, m, v) with this state on a
 * backend of element sizes size[3] (gt_ops.size; the weights and gradients are the model's), and
 * the bytes one step moves per parameter (kernels/cuda/optimizer.cu's table: the gradient read, of
 * grad_size bytes (gt_model_grad_size), the state read and written, the parameter written, and
 * read where it is its own master). */
size_t gt_opt_state_bytes(const size_t size[3], int state);
size_t gt_opt_step_bytes(const size_t size[3], int state, size_t grad_size);

void gt_optimizer_init(gt_optimizer *o, gt_model *m, const gt_adamw_config *cfg);
/* The same, sharded over dp (ZeRO-1) when dp has more than one rank: shards the model's buffers
 * (gt_model_shard_dp) and allocates the state of this rank's range only. */
void gt_optimizer_init_sharded(gt_optimizer *o, gt_model *m, const gt_adamw_config *cfg, gt_group *dp);

/* Device bytes of the optimizer state (optim.state `state`) of one rank whose parameter buffer has
 * count elements, with dp ranks (zero = 0: every rank holds all of it): gt_opt_state_bytes per
 * element of ceil(count / dp) elements with zero, of count without. The sharded model's padding
 * (< dp elements of parameters and gradients) is not included. */
size_t gt_optimizer_device_bytes(const gt_ops *ops, size_t count, int dp, int zero, int state);
void gt_optimizer_free(gt_optimizer *o);

/* Squared norm of the model's whole gradient (gt_model_grad_sumsq: tp-aware, each parameter once). */
double gt_optimizer_grad_sumsq(gt_optimizer *o);

/* One AdamW step at learning rate lr from the accumulated gradients, whose squared norm is
 * sumsq (after every reduction). Returns 0, or 1 when the step was skipped for a non-finite
 * gradient. Sharded: updates [lo, hi), then gathers the parameters over dp (collective). */
int gt_optimizer_step(gt_optimizer *o, float lr, double sumsq);

#endif
