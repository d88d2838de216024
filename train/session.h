/* What every command that runs the model starts from, built in one order on every rank: the
 * backend (kernels/backend.h), the NCCL communicators of the grid's groups on GPUs, and the model
 * of this rank's tp slice with its weights (an HF checkpoint, or HF's random initialization). The
 * grid itself is made first, by the command, from its command line (MPI start-up). */
#ifndef GT_SESSION_H
#define GT_SESSION_H

#include "../comm/grid.h"
#include "../kernels/backend.h"
#include "../model/model.h"

typedef struct {
    const char *device;  /* "auto", "cpu", "cpu64" or "cuda" */
    const char *config;  /* HF config.json, or the directory that holds it */
    const char *weights; /* HF checkpoint directory to load, or NULL: HF's random initialization */
    uint64_t seed;       /* of the random initialization */
    int tp_overlap;      /* the backward's tp sums beside its weight-gradient GEMMs (gt_model_overlap_tp) */
    int forward_only;    /* no gradient buffer (eval, generate: gt_model_init_forward) */
    int bf16_grads;      /* bf16 parameter gradients (gt_model_init_grads) */
    /* Prefixes of error messages, naming where the value came from (the run config's keys); NULL:
     * the message alone. */
    const char *config_key, *weights_key, *tp_key;
    /* Optional: called once the backend exists and before the model allocates anything (the
     * trainer's memory plan, train/memory_plan.h); non-zero stops the session with err. */
    int (*before_alloc)(void *user, const gt_config *cfg, const gt_compute *c, gt_err *err);
    void *user;
} gt_session_spec;

typedef struct {
    gt_grid *grid; /* borrowed */
    gt_compute compute;
    gt_model model;
} gt_session;

/* On failure everything made so far is freed and err says why. On success the grid's
 * communication watchdog is armed (comm/watchdog.h) until gt_session_close. */
int gt_session_open(gt_session *s, const gt_session_spec *spec, gt_grid *grid, gt_err *err);
void gt_session_close(gt_session *s);

#endif
