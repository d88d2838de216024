/* Checkpointing a training run: what of the trainer goes into a checkpoint, what comes back on
 * resume, when checkpoints are written, and stop signals (trainer_ckpt.h). */
#include "trainer_ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "../core/fs.h"
#include "../model/fp8.h"
#include "ckpt/checkpoint.h"
#include "trainer_fp8.h"
#include "signals.h"

static void fill_state(const gt_trainer *t, gt_ckpt_state *st) {
    const gt_run_config *rc = t->rc;
    memset(st, 0, sizeof *st);
    st->step = t->step;
    st->skipped = t->skipped;
    st->opt_step = t->opt.step;
    st->opt_skipped = t->opt.skipped;
    st->data_pos = gt_loader_tell(&t->train);
    /* Every sequence of the stream consumed so far, by all dp ranks. */
    st->tokens_seen = ((double)st->data_pos.epoch * (double)t->train.nseq + (double)st->data_pos.index) * t->T;
    st->seq_len = t->T;
    st->seed = rc->seed;
    st->shuffle_seed = rc->shuffle_seed;
    st->shuffle = rc->shuffle;
    st->sched = t->sched;
    st->tp = t->grid->tp;
    st->dp = t->grid->dp;
    st->run_config = gt_run_config_yaml(rc);
}

/* gt_trainer_checkpoint, the directory written in path[GT_CKPT_PATH]. */
static int checkpoint_to(gt_trainer *t, char *path, gt_err *err) {
    const gt_run_config *rc = t->rc;
    double t0 = gt_now();
    gt_ckpt_state st;
    fill_state(t, &st);
    gt_ckpt_options opt = {rc->run_dir, strcmp(rc->ckpt_dtype, "fp32") ? GT_BF16 : GT_F32, (int)rc->ckpt_keep,
                           (uint64_t)rc->ckpt_max_shard_bytes};
    int r = gt_checkpoint_save(&t->session.model, &t->opt, t->grid, &st, &opt, path, err);
    gt_ckpt_state_free(&st);
    if (r == 0 && t->grid->world_rank == 0 && !rc->quiet) {
        printf("checkpoint: %s (%.1f s)\n", path, gt_now() - t0);
        fflush(stdout);
    }
    return r;
}

int gt_trainer_checkpoint(gt_trainer *t, gt_err *err) {
    char path[GT_CKPT_PATH];
    return checkpoint_to(t, path, err);
}

/* The data position counts sequences of seq_len tokens in one order: only the same data setup
 * gives it the same meaning. */
static int check_compatible(const gt_trainer *t, const gt_ckpt_state *st, const char *dir, gt_err *err) {
    const gt_run_config *rc = t->rc;
    if (st->seq_len != t->T)
        return gt_fail(err, "data.seq_len: %d, but checkpoint %s was trained with %lld (its data position "
                            "counts sequences of that length)", t->T, dir, st->seq_len);
    if (st->shuffle != rc->shuffle || (rc->shuffle && st->shuffle_seed != rc->shuffle_seed))
        return gt_fail(err, "data.shuffle/shuffle_seed: %s/%lld, but checkpoint %s was trained with %s/%lld",
                       rc->shuffle ? "true" : "false", rc->shuffle_seed, dir, st->shuffle ? "true" : "false",
                       st->shuffle_seed);
    if (st->step > rc->steps)
        return gt_fail(err, "train.steps: %lld, but checkpoint %s is at step %lld already", rc->steps, dir, st->step);
    return 0;
}

/* The three ways FP8 state and a checkpoint meet: both FP8 (restored by the load), a BF16
 * checkpoint resumed in FP8 (fresh state, calibrated before the first step), and an FP8 checkpoint
 * resumed in BF16 (its state is not used). */
static void resume_fp8(gt_trainer *t, const gt_ckpt_fp8 *had, const char *dir) {
    const gt_fp8 *f = t->session.model.fp8;
    if (f && had->present) t->fp8_fresh = 0;
    if (t->grid->world_rank != 0 || t->rc->quiet) return;
    if (f && had->present) {
        printf("fp8: state restored from %s (%d tensors, amax history %d)\n", dir, had->count, had->history_len);
        if (had->algo != f->recipe.algo || (float)had->margin != f->recipe.margin)
            printf("note: the FP8 recipe differs from the checkpoint's (algo %s, margin %g); the run config's applies "
                   "from now on\n", ck_fp8_algo_name(had->algo), had->margin);
    } else if (f) {
        printf("note: %s holds no FP8 state: FP8 starts from fresh scales (after %lld calibration step(s))\n", dir,
               t->rc->fp8_calibration_steps);
    } else if (had->present) {
        printf("note: %s holds FP8 state (%s); fp8.enabled is false, so it is ignored\n", dir, CK_FP8_FILE);
    }
}

int gt_trainer_resume(gt_trainer *t, const char *dir, gt_err *err) {
    gt_ckpt_state st;
    if (gt_checkpoint_load(&t->session.model, &t->opt, t->grid, dir, &st, err)) return -1;
    int r = check_compatible(t, &st, dir, err);
    if (r == 0) r = gt_loader_seek(&t->train, st.data_pos, err);
    if (r == 0) {
        t->step = st.step;
        t->skipped = st.skipped;
    }
    if (r == 0 && t->grid->world_rank == 0 && !t->rc->quiet) {
        printf("resumed from %s: step %lld, %.0f tokens seen, written by tp=%d dp=%d, now tp=%d dp=%d\n", dir, st.step,
               st.tokens_seen, st.tp, st.dp, t->grid->tp, t->grid->dp);
        const gt_lr_schedule *a = &st.sched, *b = &t->sched;
        if (a->kind != b->kind || a->lr != b->lr || a->min_lr_ratio != b->min_lr_ratio || a->warmup != b->warmup ||
            a->steps != b->steps)
            printf("note: the LR schedule differs from the checkpoint's (peak %g, warmup %lld, %lld steps); the run "
                   "config's applies from step %lld on\n", a->lr, a->warmup, a->steps, st.step + 1);
    }
    if (r == 0) resume_fp8(t, &st.fp8, dir);
    if (t->grid->world_rank == 0) fflush(stdout);
    gt_ckpt_state_free(&st);
    return r;
}

static int is_checkpoint_dir(const char *dir) {
    return gt_file_exists(dir, "trainer_state.json");
}

/* pick() without the watchdog: rank 0 looks for the checkpoint, every rank verifies a slice. */
static int pick_verified(gt_trainer *t, const char *from, char *path, gt_err *err) {
    int rank0 = t->grid->world_rank == 0, unverified = 0, found = 0;
    const char *run_dir = from ? from : t->rc->run_dir;
    if (from && is_checkpoint_dir(from)) {
        found = snprintf(path, GT_CKPT_PATH, "%s", from) < GT_CKPT_PATH ? 1 : gt_fail(err, "%s: path too long", from);
        if (found > 0 && ck_sums_verify(t->grid, path, 0, &unverified, err)) found = -1;
        unverified = !unverified;
        if (ck_agree(t->grid, found < 0, err)) return -1;
    } else {
        found = gt_checkpoint_find_verified(t->grid, run_dir, path, GT_CKPT_PATH, rank0 ? stderr : NULL, &unverified, err);
        if (found < 0) return -1;
        if (found == 0 && from) return gt_fail(err, "--resume %s: no checkpoint there to resume from", from);
    }
    if (found > 0 && unverified && rank0 && !t->rc->quiet) {
        printf("note: %s has no %s (saved by an older gemmatron): its content is not verified\n", path, CK_SUMS_FILE);
        fflush(stdout);
    }
    return found;
}

/* Rank 0 picks the checkpoint (warnings printed once), every rank verifies its checksums, a slice
 * each; a corrupt one in a run directory falls back to the previous one. Returns 1 found, 0 none. */
static int pick(gt_trainer *t, const char *from, char *path, gt_err *err) {
    /* checkpoints are read and verified here, unevenly across ranks: I/O, not a hang */
    int armed = gt_watchdog_arm(t->grid->wd, 0);
    int found = pick_verified(t, from, path, err);
    gt_watchdog_arm(t->grid->wd, armed);
    return found;
}

int gt_trainer_start(gt_trainer *t, const char *from, gt_err *err) {
    char path[GT_CKPT_PATH] = "";
    int found = from || t->rc->ckpt_resume ? pick(t, from, path, err) : 0;
    if (found < 0) return -1;
    if (found) return gt_trainer_resume(t, path, err);
    /* a new run: the FP8 state model.path may hold (a calibrated model) replaces the calibration */
    return gt_trainer_fp8_from_model(t, err);
}

int gt_trainer_clear_stopped(const char *run_dir, gt_err *err) {
    char p[GT_CKPT_PATH];
    if (gt_path_join(p, sizeof p, run_dir, GT_STOPPED_FILE, err)) return -1;
    if (remove(p) != 0 && errno != ENOENT) return gt_fail(err, "%s: cannot remove: %s", p, strerror(errno));
    return 0;
}

/* Rank 0, after every rank wrote the stop checkpoint: RUN_DIR/stopped, whole or not at all (a
 * temporary file renamed into place). A failure is a warning: the checkpoint itself is complete. */
static void write_stopped(const gt_trainer *t, int sig, const char *ckpt) {
    char p[GT_CKPT_PATH], tmp[GT_CKPT_PATH + 8], text[GT_CKPT_PATH + 128];
    gt_err e;
    snprintf(text, sizeof text, "step %lld\nsignal %d\ncheckpoint %s\nranks %d", t->step, sig, ckpt,
             t->grid->world_size);
    int r = gt_path_join(p, sizeof p, t->rc->run_dir, GT_STOPPED_FILE, &e);
    if (r == 0) {
        snprintf(tmp, sizeof tmp, "%s.tmp", p);
        r = gt_write_text(tmp, text, &e);
    }
    if (r == 0 && rename(tmp, p) != 0) {
        r = gt_fail(&e, "%s: cannot rename %s into place: %s", p, tmp, strerror(errno));
        remove(tmp);
    }
    if (r == 0) r = gt_fsync_dir(t->rc->run_dir, &e);
    if (r) fprintf(stderr, "gemmatron: warning: %s (the checkpoint is complete)\n", e.msg);
}

int gt_trainer_after_step(gt_trainer *t, int *stop, gt_err *err) {
    const gt_run_config *rc = t->rc;
    /* A signal may reach some ranks only (or at different steps): they agree on it here. */
    int32_t sig = gt_signals_pending();
    gt_allreduce_host(&t->grid->world, &sig, 1, GT_I32, GT_RED_MAX);
    *stop = sig != 0 && t->step < rc->steps; /* after the last step the run ends normally anyway */
    int due = *stop || t->step == rc->steps || (rc->ckpt_every > 0 && t->step % rc->ckpt_every == 0);
    char path[GT_CKPT_PATH] = "";
    if (due && checkpoint_to(t, path, err)) return -1;
    if (*stop && t->grid->world_rank == 0) {
        write_stopped(t, (int)sig, path);
        printf("stopped by signal %d after step %lld: checkpoint written; exit %d (run the same command again to "
               "resume)\n", (int)sig, t->step, GT_EXIT_PREEMPTED);
        fflush(stdout);
    }
    return 0;
}
