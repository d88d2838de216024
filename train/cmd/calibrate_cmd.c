/* gemmatron calibrate --model HF_DIR --data FILE --out DIR [--steps N] [--micro-batch B]
 *                     [--seq-len T] [--tp N] [--device D] [--set fp8.KEY=VALUE ...]
 *
 * FP8 calibration as `gemmatron train` runs it before its first step (fp8.calibration_steps;
 * gt_trainer_fp8_calibrate): the first N steps of batches of FILE, in file order, run forward and
 * backward with BF16 GEMMs that only record the amaxes of every FP8 operand (inputs, weights,
 * output gradients), and the scales are updated after each forward and backward as a training
 * step would; no weight changes. The run is a trainer built on a run config of the defaults with
 * model.path = HF_DIR, data.train = [FILE], data.shuffle = false, data.grad_accum = 1 and the
 * fp8.* keys given by --set, so it is the very code and data order of train's calibration.
 *
 * DIR is then the model as an HF directory (gt_export_hf) plus fp8_state.safetensors
 * (train/ckpt/calibrated.h, docs/checkpoints.md). `train` with fp8.enabled and model.path = DIR
 * starts from that state with no calibration steps; `inspect DIR` shows it. Under mpirun the model
 * is split over tp ranks and the batches over dp = world / tp; the state is the same on every
 * rank (amaxes MAX-reduced over the world) and written once. */
#include "calibrate_cmd.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../../comm/grid.h"
#include "../../model/fp8.h"
#include "../ckpt/calibrated.h"
#include "../config/run_config.h"
#include "../trainer.h"

typedef struct {
    const char *model, *data, *out, *device;
    int steps, micro_batch, seq_len, tp;
    gt_cli_list sets;
} calibrate_args;

static const gt_opt calibrate_opts[] = {
    {.name = "--model", .kind = GT_OPT_STRING, .offset = offsetof(calibrate_args, model), .meta = "HF_DIR",
     .required = 1, .help = "the model: an HF Gemma directory (config.json, safetensors) or a gemmatron checkpoint"},
    {.name = "--data", .kind = GT_OPT_STRING, .offset = offsetof(calibrate_args, data), .meta = "FILE", .required = 1,
     .help = "the calibration tokens: a gemmatron token shard (scripts/prepare_data.py), read from its start"},
    {.name = "--out", .kind = GT_OPT_STRING, .offset = offsetof(calibrate_args, out), .meta = "DIR", .required = 1,
     .help = "the calibrated model: an HF directory plus fp8_state.safetensors (replaced whole if it exists)"},
    {.name = "--steps", .kind = GT_OPT_INT, .offset = offsetof(calibrate_args, steps), .meta = "N", .def = "8",
     .min = 1, .help = "batches to record amaxes on (each one micro-batch per dp rank: a step of train with "
                       "data.grad_accum=1)"},
    {.name = "--micro-batch", .kind = GT_OPT_INT, .offset = offsetof(calibrate_args, micro_batch), .meta = "B",
     .def = "1", .min = 1, .help = "sequences per batch and dp rank"},
    {.name = "--seq-len", .kind = GT_OPT_INT, .offset = offsetof(calibrate_args, seq_len), .meta = "T", .min = 2,
     .def_help = "512, or the model's context when shorter", .help = "tokens per sequence"},
    {.name = "--tp", .kind = GT_OPT_INT, .offset = offsetof(calibrate_args, tp), .meta = "N", .def = "1", .min = 1,
     .help = "tensor-parallel ranks (under mpirun; the other ranks split the batches data-parallel)"},
    {.name = "--device", .kind = GT_OPT_STRING, .offset = offsetof(calibrate_args, device), .meta = "D",
     .def = "auto", .help = "auto (cuda when a GPU is visible), cpu, cpu64 or cuda"},
    {.name = "--set", .kind = GT_OPT_LIST, .offset = offsetof(calibrate_args, sets), .meta = "fp8.KEY=VALUE",
     .help = "an FP8 recipe key of the run config (fp8.history_len, fp8.algo, fp8.margin, fp8.lm_head), as "
             "`train --set` takes it; train from DIR with the same history length and lm_head"},
};

const gt_cli_cmd gt_calibrate_cli = {
    .name = "calibrate",
    .summary = "FP8 scales of a model calibrated on a token file, saved with the model",
    .about = "Runs the first N batches of the token file forward and backward with BF16 GEMMs that record the amax "
             "of every FP8 operand, updating the delayed-scaling state as train's fp8.calibration_steps does (no "
             "weight update), then writes DIR: the model as an HF directory plus fp8_state.safetensors. `gemmatron "
             "train` with fp8.enabled=true and model.path=DIR starts from that state, with no calibration steps.",
    .examples = "gemmatron calibrate --model gemma-2b --data data/train.bin --out gemma-2b-fp8 --steps 16 --seq-len 2048\n"
                "gemmatron train --config configs/gemma-2b-1gpu-fp8.yaml --set model.path=gemma-2b-fp8\n"
                "mpirun -np 2 gemmatron calibrate --model gemma-2b --data train.bin --out gemma-2b-fp8 --tp 2",
    GT_CLI_OPTS(calibrate_opts),
};

/* The run config of train's calibration on this command line (see the top of the file). */
static int configure(gt_run_config *rc, const calibrate_args *a, gt_err *err) {
    gt_config cfg;
    if (gt_config_load(&cfg, a->model, err)) return -1;
    int T = a->seq_len ? a->seq_len : cfg.max_position_embeddings < 512 ? cfg.max_position_embeddings : 512;
    if (T > cfg.max_position_embeddings)
        return gt_fail(err, "--seq-len %d is longer than the context of %s (max_position_embeddings %d)", T, a->model,
                       cfg.max_position_embeddings);
    char v[4][32];
    snprintf(v[0], sizeof v[0], "%d", T);
    snprintf(v[1], sizeof v[1], "%d", a->micro_batch);
    snprintf(v[2], sizeof v[2], "%d", a->steps);
    snprintf(v[3], sizeof v[3], "%d", a->tp);
    for (int i = 0; i < a->sets.n; i++) {
        const char *s = a->sets.value[i];
        if (strncmp(s, "fp8.", 4) || !strncmp(s, "fp8.enabled=", 12) || !strncmp(s, "fp8.calibration_steps=", 22))
            return gt_fail(err, "--set %s: calibrate takes the FP8 recipe keys only (fp8.history_len, fp8.algo, "
                                "fp8.margin, fp8.lm_head)", s);
        if (gt_run_config_override(rc, s, err)) return -1;
    }
    const char *keys[][2] = {{"model.path", a->model}, {"data.train", a->data}, {"data.seq_len", v[0]},
                             {"data.micro_batch", v[1]}, {"data.grad_accum", "1"}, {"data.shuffle", "false"},
                             {"fp8.enabled", "true"}, {"fp8.calibration_steps", v[2]}, {"parallel.tp", v[3]},
                             {"device", a->device}, {"train.quiet", "false"}};
    const char *what = "calibrate's options";
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (gt_run_config_set(rc, keys[i][0], keys[i][1], what, err)) return -1;
    return 0;
}

static int run(const gt_run_config *rc, const calibrate_args *a, gt_grid *g, gt_err *err) {
    gt_trainer t;
    if (gt_trainer_init(&t, rc, g, err)) return -1;
    /* Calibration takes no step: AdamW's state (master weights and moments) is given back at once. */
    gt_optimizer_free(&t.opt);
    int rank0 = g->world_rank == 0;
    const gt_fp8 *f = t.session.model.fp8;
    if (rank0) {
        printf("gemmatron calibrate: %s on %s (tp=%d dp=%d), %lld batch(es) of %lld x %lld tokens per dp rank from "
               "%s; %d FP8 tensors, amax history %d, algo %s, margin %g\n", a->model, t.session.compute.ops->name,
               g->tp, g->dp, rc->fp8_calibration_steps, rc->micro_batch, rc->seq_len, a->data, f->count, f->len,
               rc->fp8_algo, f->recipe.margin);
        fflush(stdout);
    }
    int r = gt_trainer_fp8_calibrate(&t, err);
    if (r == 0) r = gt_calibrated_save(&t.session.model, g, a->out, rc->fp8_calibration_steps, err);
    if (r == 0 && rank0) {
        printf("calibrated model: %s (HF model + fp8_state.safetensors)\n", a->out);
        fflush(stdout);
    }
    gt_trainer_free(&t);
    return r;
}

int gt_cmd_calibrate(int argc, char **argv) {
    calibrate_args a = {0};
    int code = gt_cli_args(&gt_calibrate_cli, argc, argv, &a);
    if (code != GT_CLI_GO) {
        gt_cli_list_free(&a.sets);
        return code;
    }
    gt_run_config rc;
    gt_err err;
    gt_grid g;
    gt_run_config_defaults(&rc);
    int bad = configure(&rc, &a, &err);
    gt_cli_list_free(&a.sets);
    if (!bad && gt_grid_init(&g, &argc, &argv, a.tp, &err)) bad = 1;
    if (bad) {
        fprintf(stderr, "gemmatron: calibrate: %s\n", err.msg);
        gt_run_config_free(&rc);
        return 1;
    }
    int r = run(&rc, &a, &g, &err);
    if (r) fprintf(stderr, "gemmatron: calibrate: %s\n", err.msg);
    gt_grid_free(&g);
    gt_run_config_free(&rc);
    return r ? 1 : 0;
}
