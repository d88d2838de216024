/* The run config of `gemmatron train`: a human-edited YAML file, overridden key by key from the
 * command line (--set optim.lr=2e-5), checked against one schema table (train/config/run_config.c: name,
 * type, default, range, meaning) so that every key is validated the same way. The resolved config
 * (defaults filled in, overrides applied) is printed at start and stored as RUN_DIR/config.yaml,
 * which loads back to the same values.
 *
 * Errors name the source and the key: "run.yaml: line 7: optim.lr: expected a number, got 'fast'",
 * "--set optim.lrr=1: unknown key 'optim.lrr' (optim has: lr, beta1, ...)". */
#ifndef GT_RUN_CONFIG_H
#define GT_RUN_CONFIG_H

#include "../../core/base.h"

typedef struct {
    char **v;
    int n;
} gt_strlist;

typedef struct {
    /* model: the checkpoint when model_path is set, else a random init from model_config */
    char *model_path;      /* HF checkpoint directory to fine-tune, or NULL */
    char *model_config;    /* HF config.json (or its directory) for a random init, or NULL */
    /* data */
    gt_strlist data_train; /* shard files or globs */
    gt_strlist data_val;   /* validation shards (may be empty) */
    long long seq_len, micro_batch, grad_accum;
    int shuffle;
    long long shuffle_seed;
    int doc_masking;
    /* optim */
    double lr, beta1, beta2, eps, weight_decay, clip;
    long long warmup_steps;
    char *schedule;        /* "cosine", "linear" or "constant" */
    double min_lr_ratio;
    char *opt_state;       /* "fp32", "bf16_moments" or "bf16" (gt_opt_state) */
    char *opt_grads;       /* "fp32" or "bf16" (gt_model_init_grads) */
    /* train */
    long long steps, eval_every, eval_steps, log_every;
    int quiet;
    long long seed;
    int save_final;
    /* checkpoint (train/trainer_ckpt.h) */
    long long ckpt_every, ckpt_keep, ckpt_max_shard_bytes;
    char *ckpt_dtype;      /* "bf16" or "fp32" */
    int ckpt_resume;
    /* fp8 (DESIGN.md §4; train/trainer_fp8.c) */
    int fp8_enabled, fp8_lm_head;
    long long fp8_history_len;
    char *fp8_algo;        /* "max" or "most_recent" */
    double fp8_margin;
    long long fp8_calibration_steps, fp8_log_every;
    /* metrics (train/plotter.h) */
    long long plot_every;  /* metrics.plot_every: refresh RUN_DIR/plots every N steps; 0: never */
    /* top level */
    char *run_dir;
    char *device;          /* "auto", "cpu", "cpu64" or "cuda" */
    long long tp;          /* parallel.tp */
    int tp_overlap;        /* parallel.tp_overlap */
    int zero;              /* parallel.zero: optimizer state sharded over dp (train/optimizer.h) */
} gt_run_config;

/* Every key at its default. */
void gt_run_config_defaults(gt_run_config *rc);
void gt_run_config_free(gt_run_config *rc);

/* Applies a YAML file over rc: unknown keys, duplicate keys, wrong types and out-of-range values are
 * errors naming the file, line and key. */
int gt_run_config_load_file(gt_run_config *rc, const char *path, gt_err *err);
/* Applies one "key=value" (the text after --set). The value is a YAML scalar, or a flow list
 * "[a, b]" for list keys (a single path is a one-element list). */
int gt_run_config_override(gt_run_config *rc, const char *assignment, gt_err *err);
/* Sets one key from its text; what names the source in messages. */
int gt_run_config_set(gt_run_config *rc, const char *key, const char *value, const char *what,
                      gt_err *err);
/* Checks what no single key can: a model source, training data present, a run directory, eval
 * settings that have validation data, warmup not longer than the run. */
int gt_run_config_validate(const gt_run_config *rc, gt_err *err);

/* The resolved config as commented YAML (malloc'ed; the caller frees). */
char *gt_run_config_yaml(const gt_run_config *rc);
/* Writes it to path (via path.tmp and a rename). */
int gt_run_config_save(const gt_run_config *rc, const char *path, gt_err *err);

#endif
