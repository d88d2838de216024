#include "session.h"

#include <string.h>

/* err = "key: inner" (or inner alone without a key); returns -1. */
static int fail_at(gt_err *err, const char *key, const gt_err *inner) {
    if (key) return gt_fail(err, "%s: %s", key, inner->msg);
    *err = *inner;
    return -1;
}

static int build_model(gt_session *s, const gt_session_spec *spec, gt_err *err) {
    gt_grid *g = s->grid;
    gt_config cfg;
    gt_err inner;
    if (gt_config_load(&cfg, spec->config, &inner) || gt_config_validate(&cfg, spec->config, &inner))
        return fail_at(err, spec->config_key, &inner);
    if (gt_compute_open(&s->compute, spec->device, g->local_rank, err)) return -1;
    if (spec->before_alloc && spec->before_alloc(spec->user, &cfg, &s->compute, err)) return -1;
    int bad = spec->forward_only
                  ? gt_model_init_forward(&s->model, &cfg, s->compute.ops, s->compute.be, g->tp_rank, g->tp, &inner)
                  : gt_model_init_grads(&s->model, &cfg, s->compute.ops, s->compute.be, g->tp_rank, g->tp,
                                        spec->bf16_grads, &inner);
    if (bad) return fail_at(err, spec->tp_key, &inner);
    if (spec->weights) {
        if (gt_model_load_hf(&s->model, spec->weights, &inner)) return fail_at(err, spec->weights_key, &inner);
    } else {
        gt_model_init_random(&s->model, spec->seed);
    }
    return 0;
}

int gt_session_open(gt_session *s, const gt_session_spec *spec, gt_grid *grid, gt_err *err) {
    memset(s, 0, sizeof *s);
    s->grid = grid;
    if (build_model(s, spec, err)) {
        gt_session_close(s);
        return -1;
    }
    gt_grid_use_nccl(grid, s->compute.ops->stream(s->compute.be));
    gt_model_set_tp(&s->model, &grid->tp_group);
    gt_model_overlap_tp(&s->model, spec->tp_overlap);
    /* From here on every rank runs collectives: a rank that stops issuing them (dead, hung,
     * stopped) ends the job within GT_COMM_TIMEOUT. Checkpoint reads and writes and exports
     * disarm it while they run (train/ckpt). */
    gt_watchdog_arm(grid->wd, 1);
    return 0;
}

void gt_session_close(gt_session *s) {
    if (s->grid) gt_watchdog_arm(s->grid->wd, 0);
    gt_model_free(&s->model);
    gt_compute_close(&s->compute);
}
