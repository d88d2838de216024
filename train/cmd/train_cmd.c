/* gemmatron train --config FILE [--set key=value ...] [--run-dir DIR] [--resume PATH]
 *
 * Reads the run config (train/config/run_config.h), applies the overrides in order (--run-dir DIR is
 * --set run_dir=DIR), validates it, builds the trainer, prints the resolved config (rank 0, unless
 * train.quiet), resumes from a checkpoint (train/trainer_ckpt.h), stores the resolved config as
 * RUN_DIR/config.yaml and runs. Under mpirun the job is a dp x tp grid with tp = parallel.tp.
 *
 * --resume PATH: a run directory (its newest usable checkpoint) or one checkpoint directory; the
 * run directory becomes PATH (or the checkpoint's parent) and, without --config, its config.yaml
 * is the config. After a stop signal (SIGTERM, SIGUSR1, SIGINT, SIGHUP) the step ends, a checkpoint is written and
 * the exit status is GT_EXIT_PREEMPTED (75). */
#include "train_cmd.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../run_lock.h"
#include "../signals.h"
#include "../trainer.h"
#include "../trainer_ckpt.h"
#include "cli.h"

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

typedef struct {
    const char *config, *resume;
    gt_cli_list overrides; /* --set KEY=VALUE and --run-dir DIR, in command-line order */
} train_args;

static const gt_opt train_opts[] = {
    {.name = "--config", .kind = GT_OPT_STRING, .offset = offsetof(train_args, config), .meta = "FILE",
     .help = "the YAML run config (configs/*.yaml, or a run's config.yaml); every key, its type, default and "
             "range is in train/config/run_config.c",
     .def_help = "with --resume, the run directory's config.yaml; else required"},
    {.name = "--set", .kind = GT_OPT_LIST, .offset = offsetof(train_args, overrides), .meta = "KEY=VALUE",
     .help = "overrides one key after the file, in command-line order (the last one of a key wins): "
             "--set optim.lr=2e-5, --set data.train=[a.bin,b.bin]"},
    {.name = "--run-dir", .kind = GT_OPT_LIST, .offset = offsetof(train_args, overrides), .meta = "DIR",
     .help = "--set run_dir=DIR: where config.yaml, metrics.h5, checkpoints and final/ go"},
    {.name = "--resume", .kind = GT_OPT_STRING, .offset = offsetof(train_args, resume), .meta = "PATH",
     .help = "resumes from a run directory (its newest usable checkpoint) or one checkpoint directory; the run "
             "directory becomes PATH (or the checkpoint's parent) and, without --config, its config.yaml is "
             "the config"},
};

const gt_cli_cmd gt_train_cli = {
    .name = "train",
    .summary = "fine-tunes a Gemma model as a YAML run config says (see configs/)",
    .about = "Fine-tunes an HF Gemma checkpoint (model.path), or trains one built from an HF config.json "
             "(model.config), as the run config says; prints the resolved config, one line per step and the "
             "final eval_loss. Under mpirun the job is a dp x tp grid with tp = parallel.tp. After SIGTERM, "
             "SIGUSR1, SIGINT (Ctrl-C; a second one exits at once) or SIGHUP the step ends, a checkpoint is written "
             "and the exit status is 75.",
    .examples = "gemmatron train --config configs/tiny-cpu.yaml\n"
                "gemmatron train --config configs/tiny-cpu.yaml --set train.steps=50 --set optim.lr=2e-3 "
                "--run-dir runs/try\n"
                "gemmatron train --resume runs/tiny-cpu\n"
                "mpirun -np 2 gemmatron train --config configs/gemma-2b-tp2.yaml --set model.path=/data/gemma-2b",
    GT_CLI_OPTS(train_opts),
};

/* The run config: the file (or the resumed run's), then the overrides in command-line order. */
static int configure(gt_run_config *rc, const train_args *a, gt_err *err) {
    const char *config = a->config;
    char run_dir[4200], yaml[4300];
    if (a->resume && resume_run_dir(a->resume, run_dir, sizeof run_dir, err)) return -1;
    if (!config) snprintf(yaml, sizeof yaml, "%s/config.yaml", run_dir), config = yaml;
    if (gt_run_config_load_file(rc, config, err)) return -1;
    if (a->resume && gt_run_config_set(rc, "run_dir", run_dir, "--resume", err)) return -1;
    /* The last override of a key wins. */
    for (int i = 0; i < a->overrides.n; i++) {
        const char *opt = a->overrides.opt[i], *v = a->overrides.value[i];
        if (!strcmp(opt, "--set") && gt_run_config_override(rc, v, err)) return -1;
        if (!strcmp(opt, "--run-dir") && gt_run_config_set(rc, "run_dir", v, "--run-dir", err)) return -1;
    }
    return gt_run_config_validate(rc, err);
}

/* GT_CLI_GO, or the exit status of a command line that cannot run (help, a bad option, no config). */
static int parse_args(train_args *a, int argc, char **argv) {
    int code = gt_cli_args(&gt_train_cli, argc, argv, a);
    if (code == GT_CLI_GO && !a->config && !a->resume) {
        fprintf(stderr, "gemmatron: train: --config FILE is required (see configs/tiny-cpu.yaml and gemmatron "
                        "train --help)\n");
        code = GT_EXIT_USAGE;
    }
    return code;
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
    if (make_dirs(rc->run_dir, err) || gt_trainer_clear_stopped(rc->run_dir, err)) return -1;
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
    train_args a = {0};
    int code = parse_args(&a, argc, argv);
    if (code != GT_CLI_GO) {
        gt_cli_list_free(&a.overrides);
        return code;
    }
    gt_run_config rc;
    gt_err err;
    gt_grid g;
    gt_run_config_defaults(&rc);
    gt_err inner;
    const char *resume = a.resume;
    int bad = configure(&rc, &a, &err);
    gt_cli_list_free(&a.overrides);
    if (!bad && gt_grid_init(&g, &argc, &argv, (int)rc.tp, &inner)) {
        bad = gt_fail(&err, "parallel.tp: %s", inner.msg);
    }
    if (bad) {
        fprintf(stderr, "gemmatron: %s\n", err.msg);
        gt_run_config_free(&rc);
        return 1;
    }
    /* Before anything reads or writes the run directory: one run at a time in it. */
    gt_run_lock lock;
    if (gt_run_lock_take(&lock, &g, rc.run_dir, &err)) {
        if (g.world_rank == 0) fprintf(stderr, "gemmatron: %s\n", err.msg);
        gt_grid_free(&g);
        gt_run_config_free(&rc);
        return 1;
    }
    gt_signals_install();
    int r = run(&rc, &g, resume, &err);
    if (r < 0) fprintf(stderr, "gemmatron: %s\n", err.msg);
    gt_run_lock_release(&lock, r < 0);
    gt_grid_free(&g);
    gt_run_config_free(&rc);
    return r < 0 ? 1 : r > 0 ? GT_EXIT_PREEMPTED : 0;
}
