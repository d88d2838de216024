/* The training loop of `gemmatron train` on one rank of the process grid: the model (HF checkpoint
 * or HF random init), AdamW, the LR schedule, the training and validation loaders, and on rank 0
 * the metrics file and progress lines.
 *
 * One optimizer step:
 *   1. every micro-batch of the step is read from the loader first (host memory, cheap), so the
 *      number of target tokens of the whole global batch is known before any forward pass;
 *   2. each micro-batch runs forward and backward with dloss = 1 / (targets of all micro-batches of
 *      all dp ranks): the gradients accumulate to those of the mean loss over the global batch;
 *   3. gradients are reduced over the grid (replicated K/V heads over tp, everything over dp),
 *      their global norm is taken, and AdamW applies the step at the schedule's lr with clipping —
 *      or skips it, counted, when the norm is not finite (the weights stay as they were). */
#ifndef GT_TRAINER_H
#define GT_TRAINER_H

#include "../comm/grid.h"
#include "../data/loader.h"
#include "lr_schedule.h"
#include "memory_plan.h"
#include "metrics/metrics.h"
#include "optimizer.h"
#include "config/run_config.h"
#include "session.h"

typedef struct {
    long long step;      /* the step just taken, 1-based */
    double loss;         /* mean over the step's targets (all micro-batches, all dp ranks) */
    double lr;
    double grad_norm;    /* before clipping; not finite for a skipped step */
    int skipped;         /* 1: non-finite gradient (or no target), weights unchanged */
    int64_t targets;     /* target tokens of the global batch */
    double tokens;       /* tokens of the global batch (targets or not) */
    double seconds;      /* wall time of the step */
} gt_step_stats;

typedef struct gt_trainer gt_trainer;

/* Where a step's micro-batches come from: fill() writes B sequences of T tokens into buf
 * ([4][B*T]: tokens, targets, positions, segments) and returns their target count. The trainer's
 * own feed reads the training loader (data.train); `gemmatron bench` feeds synthetic batches. */
typedef struct {
    int64_t (*fill)(void *user, int32_t *buf, int B, int T);
    void *user;
} gt_batch_feed;

/* Called after the backward of every micro-batch of a step and before the gradient reduction;
 * tests use it to poison a gradient. */
typedef void (*gt_trainer_hook)(gt_trainer *t, void *user);

struct gt_trainer {
    const gt_run_config *rc; /* borrowed */
    gt_grid *grid;           /* borrowed */
    gt_session session;      /* the backend and the model (train/session.h) */
    gt_optimizer opt;
    gt_lr_schedule sched;
    gt_batch_feed feed;      /* the training batches: the loader train, or the caller's */
    gt_loader train, val;
    int has_train, has_val;  /* the loaders are open */
    int B, T, accum;
    int32_t *batch;          /* [accum][4][B*T]: tokens, targets, positions, segments */
    long long step;          /* steps taken */
    long long skipped;       /* steps skipped (non-finite gradient, or no target) */
    double flops_per_token;
    gt_mem_plan plan;        /* this rank's memory plan, made before the model's first allocation */
    int fp8_fresh;           /* FP8 state at its initial values: calibrate before the first step */
    gt_trainer_hook after_backward;
    void *hook_user;
};

/* Builds everything on this rank: backend, model (loaded or randomly initialized), optimizer,
 * loaders. Checks what needs the model: seq_len against its context, tp against the grid. */
int gt_trainer_init(gt_trainer *t, const gt_run_config *rc, gt_grid *grid, gt_err *err);
/* The same with the training batches from feed instead of data.train's loader, and no
 * validation data (data.train and data.val are not read). */
int gt_trainer_init_fed(gt_trainer *t, const gt_run_config *rc, gt_grid *grid, const gt_batch_feed *feed,
                        gt_err *err);
void gt_trainer_free(gt_trainer *t);

/* One optimizer step (see above). */
void gt_trainer_step(gt_trainer *t, gt_step_stats *st);
/* Mean loss over up to train.eval_steps micro-batches of the validation data, always the same
 * ones (the loader restarts); *targets gets their count over all dp ranks. */
double gt_trainer_eval(gt_trainer *t, int64_t *targets);

/* FP8 calibration (fp8.calibration_steps): the batches of that many steps from the current data
 * position run forward and backward with BF16 GEMMs that only record amaxes, updating the scales
 * as a training step would; then the loader (when the batches come from it) is rewound, so that
 * training sees the same data as without calibration. Not a step: no weight update, t->step unchanged. Clears t->fp8_fresh. */
int gt_trainer_fp8_calibrate(gt_trainer *t, gt_err *err);

/* The whole run from step t->step + 1 to train.steps: FP8 calibration when t->fp8_fresh, steps,
 * evaluations, progress lines and metrics.h5 (rank 0; rows after t->step are dropped), the final
 * model. To resume, the checkpoint code restores the weights, optimizer and FP8 state, t->step,
 * t->skipped and the training loader's position (gt_loader_seek on t->train with the saved
 * gt_loader_pos) before calling this. */
int gt_trainer_run(gt_trainer *t, gt_err *err);

#endif
