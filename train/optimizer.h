/* AdamW over a model's parameter buffer: FP32 master weights and moments (on the CPU backends the
 * parameters themselves are the master copy), or a leaner state (optim.state: bf16 moments, or
 * pure bf16 with stochastically rounded weights; kernels/ops.h gt_opt_state, DESIGN.md §5), global
 * gradient-norm clipping, weight decay on matrices only (not on norms), and a step with a
 * non-finite gradient skipped, not applied. */
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
    void *master; /* [count] GRAD-kind elements, NULL when params are the master (CPU, GT_OPT_BF16) */
    void *mom, *var; /* [count] elements of mom_kind each */
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
 * the bytes one step moves per parameter (kernels/cuda/optimizer.cu's table: the gradient read,
 * the state read and written, the parameter written, and read where it is its own master). */
size_t gt_opt_state_bytes(const size_t size[3], int state);
size_t gt_opt_step_bytes(const size_t size[3], int state);

void gt_optimizer_init(gt_optimizer *o, gt_model *m, const gt_adamw_config *cfg);
void gt_optimizer_free(gt_optimizer *o);

/* Squared norm of the model's whole gradient (gt_model_grad_sumsq: tp-aware, each parameter once). */
double gt_optimizer_grad_sumsq(gt_optimizer *o);

/* One AdamW step at learning rate lr from the accumulated gradients, whose squared norm is
 * sumsq (after every reduction). Returns 0, or 1 when the step was skipped for a non-finite
 * gradient. */
int gt_optimizer_step(gt_optimizer *o, float lr, double sumsq);

#endif
