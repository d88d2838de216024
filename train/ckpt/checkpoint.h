/* Checkpoints you can trust (DESIGN.md §5): save, validate, find and resume a training run.
 *
 * RUN_DIR/checkpoint-000500/
 *   config.json, generation_config.json  HF GemmaConfig (dtype = the weights' dtype)
 *   model.safetensors                     weights under full HF names, BF16 (default) or F32; split
 *                                         into model-0000i-of-0000n.safetensors + index.json when
 *                                         larger than the shard threshold
 *   optimizer.safetensors                 NAME.master, NAME.exp_avg, NAME.exp_avg_sq for every HF
 *                                         tensor NAME: AdamW's FP32 master weights and moments (F64
 *                                         on the cpu64 backend, whose state is double)
 *   fp8_state.safetensors                 only when the model trains in FP8: its delayed-scaling
 *                                         state (train/ckpt/ckpt_fp8.c), written by rank 0
 *   trainer_state.json                    step, tokens, data position, seeds, schedule, grid,
 *                                         optimizer counters, file sizes, the resolved run config
 *   checksums.json                        CRC32C and size of every other file, and the step and
 *                                         optimizer counters of the save (train/ckpt/ckpt_sums.c)
 * RUN_DIR/latest                          "checkpoint-000500": the newest complete checkpoint
 *
 * Every tensor is stored whole under its HF name, so a run resumes on any tp x dp layout, and the
 * directory loads in transformers as it is. Writing is parallel and needs no gather: every rank
 * computes the same headers (all ranks know all shapes), rank 0 creates the files, then each rank
 * of dp replica 0 pwrite()s the slices it holds (model/layout.h pieces) at their offsets; a slice
 * held by several tp ranks (norms, replicated K/V heads) is written by the lowest of them. With the
 * optimizer sharded over dp (ZeRO-1) every dp rank writes the part of the optimizer tensors in its
 * shard, and a load reads only that part and all-gathers the parameters. Device data is staged
 * through a bounded host buffer.
 *
 * Atomicity: everything goes to RUN_DIR/checkpoint-N.tmp/, every file is fsync'ed, all ranks
 * agree it succeeded, every rank reads back a slice of every file for the checksums, then rank 0
 * writes the small files and checksums.json and renames the directory into place, fsyncs RUN_DIR and replaces
 * RUN_DIR/latest (latest.tmp + rename). A crash or a full disk at any point leaves the previous
 * checkpoints as they were (a failed write removes its .tmp directory; a stale one is removed by
 * the next save). Older checkpoints beyond `keep` are deleted only after the new one is complete.
 *
 * Save and load are collective over the grid's world: call them on every rank. A failure on any
 * rank fails the call on every rank with the same message (the lowest failing rank's). */
#ifndef GT_CHECKPOINT_H
#define GT_CHECKPOINT_H

#include <stdio.h>

#include "../../comm/grid.h"
#include "../../data/loader.h"
#include "../../kernels/fp8_scaling.h"
#include "../../model/config.h"
#include "../lr_schedule.h"
#include "../optimizer.h"

#define GT_CKPT_FORMAT "gemmatron-checkpoint"
#define GT_CKPT_VERSION 1
/* Default size above which model weights are split into several safetensors files (HF: "5GB"). */
#define GT_CKPT_SHARD_BYTES ((uint64_t)5000000000)
/* Size of the path buffers of this API. */
#define GT_CKPT_PATH 4200

/* The FP8 state a checkpoint holds, as trainer_state.json's "fp8" object describes it. */
typedef struct {
    int present;           /* 0: the run that wrote it did not train in FP8 (no fp8_state.safetensors) */
    int count;             /* FP8 tensors (12 per layer) */
    int history_len;
    gt_amax_algo algo;
    double margin;
} gt_ckpt_fp8;

/* Everything outside the tensors that a resumed run needs, as stored in trainer_state.json. */
typedef struct {
    long long step;            /* optimizer steps taken by the trainer (applied + skipped) */
    long long skipped;         /* of those, skipped (non-finite gradient or no target) */
    int opt_step, opt_skipped; /* the optimizer's own counters (bias correction uses opt_step) */
    gt_loader_pos data_pos;    /* the training loader's position (same on every rank) */
    double tokens_seen;        /* training tokens consumed so far (all dp ranks) */
    long long seq_len;         /* the data position counts sequences of this length */
    long long seed;            /* train.seed: the random initialization */
    long long shuffle_seed;    /* data.shuffle_seed: the order of the sequences */
    int shuffle;               /* data.shuffle */
    gt_lr_schedule sched;      /* the schedule the steps so far ran under */
    int tp, dp;                /* the grid that wrote the checkpoint */
    char *run_config;          /* the resolved run config as YAML (NULL: none); owned */
    gt_ckpt_fp8 fp8;           /* filled by a load; a save describes the model's own FP8 state */
} gt_ckpt_state;

typedef struct {
    const char *run_dir;
    gt_dtype dtype;        /* of model.safetensors: GT_BF16 or GT_F32 */
    int keep;              /* complete checkpoints to keep, the new one included; 0: all */
    uint64_t shard_bytes;  /* split model weights above this size; 0: GT_CKPT_SHARD_BYTES */
} gt_ckpt_options;

/* Writes RUN_DIR/checkpoint-%06d (step = st->step) as described above. Every rank passes the same
 * st->step; the rest of st is read on rank 0 only. On success, path (if not NULL, GT_CKPT_PATH bytes) receives
 * the checkpoint's directory on every rank. */
int gt_checkpoint_save(gt_model *m, gt_optimizer *o, gt_grid *g, const gt_ckpt_state *st,
                       const gt_ckpt_options *opt, char *path, gt_err *err);

/* Restores a checkpoint directory into a model and optimizer built for this rank (any tp/dp):
 * parameters (from the FP32 master copy), master weights, moments, and the optimizer's counters;
 * st receives trainer_state.json (free with gt_ckpt_state_free). Checks first that the checkpoint
 * is complete and of the same model (config.json against m->cfg), and every tensor's shape.
 * FP8: when both the model (m->fp8) and the checkpoint (st->fp8.present) have FP8 state, it is
 * restored (histories of another length are an error naming both lengths); otherwise the model's
 * FP8 state is left as it is and the caller tells the two other cases apart from st->fp8. */
int gt_checkpoint_load(gt_model *m, gt_optimizer *o, gt_grid *g, const char *dir,
                       gt_ckpt_state *st, gt_err *err);

/* Cheap local check that dir is a complete checkpoint: trainer_state.json parses, every file it
 * lists is there with the recorded size, and every safetensors header is valid. */
int gt_checkpoint_validate(const char *dir, gt_err *err);

/* The newest usable checkpoint of run_dir: the highest-numbered checkpoint-N that validates (the
 * one RUN_DIR/latest names, unless a later complete one exists). A checkpoint that does not
 * validate is skipped with a warning on warn (may be NULL), falling back to the previous one.
 * Returns 1 and the directory in path[len], 0 when run_dir holds no checkpoint, -1 (err) when it
 * holds checkpoints and none is usable. Local: no communication. */
int gt_checkpoint_find_latest(const char *run_dir, char *path, size_t len, FILE *warn, gt_err *err);

/* As gt_checkpoint_find_latest, and the one found is verified (ck_sums_verify); a corrupt one is
 * skipped with a warning on warn, falling back to the previous checkpoint. Collective over g's
 * world when g is not NULL (rank 0 picks and prints; every rank gets path); g NULL: local. *unverified
 * = 1 when the one found has no checksums (an older checkpoint). */
int gt_checkpoint_find_verified(gt_grid *g, const char *run_dir, char *path, size_t len, FILE *warn,
                                int *unverified, gt_err *err);

void gt_ckpt_state_free(gt_ckpt_state *st);

/* ---- what the subcommands and the trainer read of a checkpoint directly ---- */

/* All ranks learn whether any failed (rc != 0); a failure anywhere becomes the lowest failing
 * rank's message on every rank, and -1. Plain MPI rather than the grid's collectives: a large
 * checkpoint may take longer than the communication watchdog allows while the others wait. */
int ck_agree(gt_grid *g, int rc, gt_err *err);
/* buf[len] of world rank 0 to every rank. */
void ck_bcast_text(gt_grid *g, char *buf, size_t len);

#define CK_FP8_FILE "fp8_state.safetensors"

/* Steps N of the RUN_DIR/checkpoint-N directories (exact name, no suffix), ascending. */
int ck_list_steps(const char *run_dir, long long **steps, int *n, gt_err *err);

/* "checkpoint-%06d" */
void ck_dir_name(char *buf, size_t len, long long step);

/* Every HF tensor of cfg is in dir's model safetensors with its shape (train/ckpt/ckpt_find.c). */
int ck_check_weights(const char *dir, const gt_config *cfg, gt_err *err);

/* "max" or "most_recent" */
const char *ck_fp8_algo_name(gt_amax_algo a);

typedef struct {
    char name[64];
    uint64_t bytes;
} ck_file_size;

/* checksums.json: the CRC32C of every file of the checkpoint and the step it was saved at
 * (train/ckpt/ckpt_sums.c). */
#define CK_SUMS_FILE "checksums.json"

/* Checks dir's content against its checksums.json: trainer_state.json's step and optimizer counters
 * against the recorded ones, then every listed file's size and CRC32C (weights_only: only
 * config.json and the model weights). Collective over g's world (each rank reads a slice of every
 * file); g NULL: this process alone. *had = 0 (and 0 returned) when dir has no checksums.json (a
 * checkpoint of an older gemmatron). A mismatch is -1 with "PATH: CORRUPT: ..." naming the file. */
int ck_sums_verify(gt_grid *g, const char *dir, int weights_only, int *had, gt_err *err);

/* Parses path into st (and, when files is not NULL, the recorded files into a malloc'ed array). */
int ck_state_load(const char *path, gt_ckpt_state *st, ck_file_size **files, int *nfiles,
                  gt_dtype *wdtype, gt_err *err);

#endif
