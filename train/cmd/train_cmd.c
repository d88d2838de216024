/* gemmatron train --config FILE [--set key=value ...] [--run-dir DIR] [--resume PATH]
 *
 * Reads the run config (train/config/run_config.h), applies the overrides in order (--run-dir DIR is
 * --set run_dir=DIR), validates it, builds the trainer, prints the resolved config (rank 0, unless
 * train.quiet), resumes from a checkpoint (train/trainer_ckpt.h), stores the resolved config as
 * RUN_DIR/config.yaml and runs. Under mpirun the job is a dp x tp grid with tp = parallel.tp.
 *
 * --resume PATH: a run directory (its newest usable checkpoint) or one checkpoint directory; the
 * run directory becomes PATH (or the checkpoint's parent) and, without --config, its config.yaml
 * is the config. After a stop signal (SIGTERM, SIGUSR1) the step ends, a checkpoint is written and
 * the exit status is GT_EXIT_PREEMPTED (75). */
#include "train_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../signals.h"
#include "../trainer.h"
#include "../trainer_ckpt.h"

/* The run directory of --resume PATH: PATH, or its parent when PATH is one checkpoint. */
static int resume_run_dir(const char *from, char *run_dir, size_t len, gt_err *err) {
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/trainer_state.json", from);
    if (snprintf(run_dir, len, "%s", from) >= (int)len) return gt_fail(err, "--resume %s: path too long", from);
    if (stat(p, &sb) != 0) return 0;
    size_t n = strlen(run_dir);
    while (n > 1 && run_dir[n - 1] == '/') run_dir[--n] = 0;
    char *slash = strrchr(run_dir, '/');
    if (slash) *slash = 0;
    else snprintf(run_dir, len, ".");
    return 0;
}

static int parse_args(gt_run_config *rc, int argc, char **argv, const char **resume, gt_err *err) {
    const char *config = NULL;
    char run_dir[4200], yaml[4300];
    *resume = NULL;
    for (int i = 0; i < argc; i += 2) {
        if (i + 1 >= argc) return gt_fail(err, "train: option %s needs a value", argv[i]);
        if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--resume")) *resume = argv[i + 1];
        else if (strcmp(argv[i], "--set") && strcmp(argv[i], "--run-dir")) {
            return gt_fail(err, "train: unknown option %s (expected --config, --set, --run-dir, --resume)", argv[i]);
        }
    }
    if (*resume && resume_run_dir(*resume, run_dir, sizeof run_dir, err)) return -1;
    if (!config && *resume) snprintf(yaml, sizeof yaml, "%s/config.yaml", run_dir), config = yaml;
    if (!config) return gt_fail(err, "train: --config FILE is required (see configs/tiny-cpu.yaml)");
    if (gt_run_config_load_file(rc, config, err)) return -1;
    if (*resume && gt_run_config_set(rc, "run_dir", run_dir, "--resume", err)) return -1;
    /* Overrides after the file, in command-line order: the last one of a key wins. */
    for (int i = 0; i < argc; i += 2) {
        if (!strcmp(argv[i], "--set") && gt_run_config_override(rc, argv[i + 1], err)) return -1;
        if (!strcmp(argv[i], "--run-dir") && gt_run_config_set(rc, "run_dir", argv[i + 1], "--run-dir", err)) {
            return -1;
        }
    }
    return gt_run_config_validate(rc, err);
}

/* mkdir -p */
static int make_dirs(const char *path, gt_err *err) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return gt_fail(err, "run_dir: path too long");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            return gt_fail(err, "run_dir: cannot create %s: %s", p, strerror(errno));
        }
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return gt_fail(err, "run_dir: %s is not a directory", path);
    return 0;
}

static int prepare_run_dir(const gt_run_config *rc, gt_err *err) {
    if (make_dirs(rc->run_dir, err)) return -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", rc->run_dir);
    return gt_run_config_save(rc, path, err);
}

/* 0 done, 1 stopped by a signal after a checkpoint, -1 failed. */
static int run(const gt_run_config *rc, gt_grid *g, const char *resume, gt_err *err) {
    int rank0 = g->world_rank == 0;
    gt_trainer t;
    if (gt_trainer_init(&t, rc, g, err)) return -1;
    if (rank0 && !rc->quiet) {
        char *yaml = gt_run_config_yaml(rc);
        printf("%s", yaml);
        free(yaml);
        fflush(stdout);
    }
    int r = gt_trainer_start(&t, resume, err);
    if (r == 0 && rank0) r = prepare_run_dir(rc, err);
    if (r == 0) r = gt_trainer_run(&t, err);
    gt_trainer_free(&t);
    return r;
}

int gt_cmd_train(int argc, char **argv) {
    gt_run_config rc;
    gt_err err;
    gt_grid g;
    gt_run_config_defaults(&rc);
    gt_err inner;
    const char *resume;
    int bad = parse_args(&rc, argc, argv, &resume, &err);
    if (!bad && gt_grid_init(&g, &argc, &argv, (int)rc.tp, &inner)) {
        bad = gt_fail(&err, "parallel.tp: %s", inner.msg);
    }
    if (bad) {
        fprintf(stderr, "gemmatron: %s\n", err.msg);
        gt_run_config_free(&rc);
        return 1;
    }
    gt_signals_install();
    int r = run(&rc, &g, resume, &err);
    if (r < 0) fprintf(stderr, "gemmatron: %s\n", err.msg);
    gt_grid_free(&g);
    gt_run_config_free(&rc);
    return r < 0 ? 1 : r > 0 ? GT_EXIT_PREEMPTED : 0;
}
