/* Saving and resuming checkpoints across the grid: the order of the steps, who does what, and the
 * agreement of all ranks after each step (see checkpoint.h for the format and the guarantees). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "ckpt_internal.h"

int ck_agree(gt_grid *g, int rc, gt_err *err) {
    if (g->world.size <= 1 || g->world.mpi == MPI_COMM_NULL) return rc ? -1 : 0;
    int bad = rc ? g->world.size - g->world.rank : 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, g->world.mpi));
    if (!bad) return 0;
    MPI_CHECK(MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, g->world.size - bad, g->world.mpi));
    return -1;
}

void ck_bcast_text(gt_grid *g, char *buf, size_t len) {
    if (g->world.size <= 1 || g->world.mpi == MPI_COMM_NULL) return;
    GT_ASSERT(len <= 0x7fffffff, "broadcast of %zu bytes", len);
    MPI_CHECK(MPI_Bcast(buf, (int)len, MPI_CHAR, 0, g->world.mpi));
}

typedef struct {
    char name[64];       /* checkpoint-000500 */
    char final[GT_CKPT_PATH];    /* RUN_DIR/checkpoint-000500 */
    char tmp[GT_CKPT_PATH];      /* RUN_DIR/checkpoint-000500.tmp */
    char old[GT_CKPT_PATH];      /* RUN_DIR/checkpoint-000500.old: a previous save of the same step */
} ck_paths;

static int make_paths(ck_paths *p, const char *run_dir, long long step, gt_err *err) {
    ck_dir_name(p->name, sizeof p->name, step);
    char t[96], o[96];
    snprintf(t, sizeof t, "%s.tmp", p->name);
    snprintf(o, sizeof o, "%s.old", p->name);
    return gt_path_join(p->final, sizeof p->final, run_dir, p->name, err) || gt_path_join(p->tmp, sizeof p->tmp, run_dir, t, err) ||
                   gt_path_join(p->old, sizeof p->old, run_dir, o, err)
               ? -1 : 0;
}

/* Rank 0: a fresh temporary directory holding every file at its final size. */
static int prepare(const gt_ckpt_options *opt, const ck_paths *p, const ck_catalog *c, gt_err *err) {
    if (gt_mkdirs(opt->run_dir, err)) return -1;
    ck_remove_stale(opt->run_dir);
    if (mkdir(p->tmp, 0755) != 0) return gt_fail(err, "%s: cannot create: %s", p->tmp, strerror(errno));
    return ck_create_files(c, p->tmp, err);
}

/* Ranks of dp replica 0: their slices, flushed to disk; with the optimizer state sharded over dp,
 * every rank writes its part of the state. */
static int write_slices(gt_model *m, gt_optimizer *o, gt_grid *g, const ck_paths *p, const ck_catalog *c,
                        gt_err *err) {
    int *fds = gt_calloc((size_t)c->nfiles, sizeof *fds);
    int rc = ck_open_files(c, p->tmp, fds, err);
    if (rc == 0) {
        rc = ck_write_slices(m, o, g->tp, g->dp_rank == 0, c, p->tmp, fds, err);
        /* The FP8 state is the same on every rank: one writes it. */
        if (rc == 0 && c->fp8_file >= 0 && g->world_rank == 0) rc = ck_write_fp8(m, c, fds, p->tmp, err);
        gt_err cerr;
        if (ck_close_files(c, p->tmp, fds, &cerr) && rc == 0) {
            *err = cerr;
            rc = -1;
        }
    }
    free(fds);
    return rc;
}

/* The catalog's files (the large ones, written by several ranks) as a checksum list, with room for
 * the small files after them. */
static ck_file_size *sum_list(const ck_catalog *c) {
    ck_file_size *f = gt_calloc((size_t)c->nfiles + 8, sizeof *f);
    for (int i = 0; i < c->nfiles; i++) {
        snprintf(f[i].name, sizeof f[i].name, "%s", c->files[i].name);
        f[i].bytes = c->files[i].size;
    }
    return f;
}

/* Rank 0: the small files' sizes and CRCs after the large ones', then checksums.json. */
static int write_sums(const char *dir, const gt_ckpt_state *st, const ck_catalog *c, ck_file_size *files,
                      uint32_t *crcs, gt_err *err) {
    static const char *const small[] = {"config.json", "generation_config.json", "model.safetensors.index.json",
                                        "trainer_state.json"};
    int n = c->nfiles;
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        char path[GT_CKPT_PATH];
        struct stat sb;
        if (gt_path_join(path, sizeof path, dir, small[i], err)) return -1;
        if (stat(path, &sb) != 0) {
            if (errno == ENOENT) continue; /* the index exists only for sharded weights */
            return gt_fail(err, "%s: %s", path, strerror(errno));
        }
        snprintf(files[n].name, sizeof files[n].name, "%s", small[i]);
        files[n].bytes = (uint64_t)sb.st_size;
        if (ck_sums_compute(NULL, dir, &files[n], 1, &crcs[n], err)) return -1;
        n++;
    }
    return ck_sums_write(dir, st, files, crcs, n, err);
}

/* Rank 0, after every rank's data is on disk and summed (crcs of files, the catalog's): the small
 * files (trainer_state.json, then checksums.json last), then the rename that makes the checkpoint exist. */
static int seal(const gt_model *m, const gt_ckpt_state *st, const gt_ckpt_options *opt, const ck_paths *p,
                const ck_catalog *c, ck_file_size *files, uint32_t *crcs, gt_err *err) {
    if (ck_write_hf_files(&m->cfg, opt->dtype, c, p->tmp, err)) return -1;
    char path[GT_CKPT_PATH];
    char *json = ck_state_json(st, c, opt->dtype);
    int rc = gt_path_join(path, sizeof path, p->tmp, "trainer_state.json", err);
    if (rc == 0) rc = gt_write_text(path, json, err);
    free(json);
    if (rc == 0) rc = write_sums(p->tmp, st, c, files, crcs, err);
    if (rc == 0) rc = gt_fsync_dir(p->tmp, err);
    if (rc) return -1;
    /* A checkpoint of this step already there (saved again after a resume) is replaced whole. */
    struct stat sb;
    int had = stat(p->final, &sb) == 0;
    if (had && rename(p->final, p->old) != 0)
        return gt_fail(err, "%s: cannot move the previous checkpoint of this step aside: %s", p->final, strerror(errno));
    if (rename(p->tmp, p->final) != 0) {
        int e = errno;
        if (had) rename(p->old, p->final);
        return gt_fail(err, "%s: cannot rename %s into place: %s", p->final, p->tmp, strerror(e));
    }
    if (gt_fsync_dir(opt->run_dir, err)) return -1;
    if (had) gt_remove_tree(p->old, NULL);
    return ck_write_latest(opt->run_dir, p->name, err);
}

/* Rank 0: deletes the oldest checkpoints before step so that `keep` remain, the new one included.
 * A directory is renamed away first, so a crash mid-delete never leaves a half checkpoint. */
static void prune(const char *run_dir, int keep, long long step) {
    long long *steps;
    int n;
    if (keep <= 0 || ck_list_steps(run_dir, &steps, &n, NULL)) return;
    int older = 0;
    for (int i = 0; i < n; i++) older += steps[i] < step;
    for (int i = 0; i < n && older > keep - 1; i++) {
        if (steps[i] >= step) continue;
        ck_paths p;
        gt_err e;
        if (make_paths(&p, run_dir, steps[i], &e) == 0 && rename(p.final, p.old) == 0 && gt_remove_tree(p.old, &e))
            fprintf(stderr, "gemmatron: warning: %s\n", e.msg);
        older--;
    }
    free(steps);
}

static int check_options(const gt_ckpt_options *opt, gt_err *err) {
    if (!opt->run_dir || !opt->run_dir[0]) return gt_fail(err, "checkpoint: no run directory");
    if (opt->dtype != GT_BF16 && opt->dtype != GT_F32)
        return gt_fail(err, "checkpoint.dtype: %s is not bf16 or fp32", gt_dtype_name(opt->dtype));
    return 0;
}

int gt_checkpoint_save(gt_model *m, gt_optimizer *o, gt_grid *g, const gt_ckpt_state *st,
                       const gt_ckpt_options *opt, char *path, gt_err *err) {
    int rank0 = g->world_rank == 0;
    ck_paths p;
    ck_catalog c;
    /* Rank 0 alone seals and prunes while the others wait: not a hang (see ck_agree). */
    int armed = gt_watchdog_arm(g->wd, 0);
    int rc = check_options(opt, err) || make_paths(&p, opt->run_dir, st->step, err);
    int built = rc == 0 && ck_catalog_build(&c, &m->cfg, opt->dtype, o ? (int)ck_state_dtype(m) : -1,
                                            opt->shard_bytes, err) == 0;
    if (rc == 0 && !built) rc = -1;
    if (rc == 0 && m->fp8) rc = ck_catalog_add_fp8(&c, m->fp8, err);
    if (rc == 0 && rank0) rc = prepare(opt, &p, &c, err);
    rc = ck_agree(g, rc, err);
    if (rc == 0 && (g->dp_rank == 0 || (o && o->dp))) rc = write_slices(m, o, g, &p, &c, err);
    rc = ck_agree(g, rc, err);
    /* Every byte is on disk: all ranks read it back, a slice each, for the checksums. */
    ck_file_size *files = built ? sum_list(&c) : NULL;
    uint32_t *crcs = built ? gt_calloc((size_t)c.nfiles + 8, sizeof *crcs) : NULL;
    if (rc == 0) rc = ck_sums_compute(g, p.tmp, files, c.nfiles, crcs, err);
    if (rc == 0 && rank0) rc = seal(m, st, opt, &p, &c, files, crcs, err);
    free(files);
    free(crcs);
    if (rc == 0 && rank0) prune(opt->run_dir, opt->keep, st->step);
    /* Every rank is done writing: a failed checkpoint's directory can go. */
    if (rank0 && built) gt_remove_tree(p.tmp, NULL);
    rc = ck_agree(g, rc, err);
    if (built) ck_catalog_free(&c);
    if (rc == 0 && path) snprintf(path, GT_CKPT_PATH, "%s", p.final);
    gt_watchdog_arm(g->wd, armed);
    return rc;
}

/* ---- resume ---- */

/* The checkpoint must be of the same model: every field that shapes the weights or the function. */
static int same_model(const char *dir, const gt_config *want, gt_err *err) {
    gt_config got;
    char path[GT_CKPT_PATH];
    if (gt_path_join(path, sizeof path, dir, "config.json", err) || gt_config_load(&got, path, err)) return -1;
    const struct {
        const char *key;
        long long there, here;
    } f[] = {{"vocab_size", got.vocab_size, want->vocab_size},
             {"hidden_size", got.hidden_size, want->hidden_size},
             {"intermediate_size", got.intermediate_size, want->intermediate_size},
             {"num_hidden_layers", got.num_hidden_layers, want->num_hidden_layers},
             {"num_attention_heads", got.num_attention_heads, want->num_attention_heads},
             {"num_key_value_heads", got.num_key_value_heads, want->num_key_value_heads},
             {"head_dim", got.head_dim, want->head_dim},
             {"hidden_act (0 tanh, 1 erf)", got.act, want->act}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].there != f[i].here)
            return gt_fail(err, "%s: a checkpoint of another model: %s is %lld there, %lld in this run's model", dir,
                           f[i].key, f[i].there, f[i].here);
    if (got.rms_norm_eps != want->rms_norm_eps || got.rope_theta != want->rope_theta)
        return gt_fail(err, "%s: a checkpoint of another model: rms_norm_eps/rope_theta are %g/%g there, %g/%g here",
                       dir, got.rms_norm_eps, got.rope_theta, want->rms_norm_eps, want->rope_theta);
    return 0;
}

int gt_checkpoint_load(gt_model *m, gt_optimizer *o, gt_grid *g, const char *dir, gt_ckpt_state *st,
                       gt_err *err) {
    GT_ASSERT(o, "gt_checkpoint_load needs an optimizer");
    memset(st, 0, sizeof *st);
    int armed = gt_watchdog_arm(g->wd, 0); /* reads of different sizes per rank (see ck_agree) */
    char path[GT_CKPT_PATH];
    int rc = gt_checkpoint_validate(dir, err);
    if (rc == 0) rc = same_model(dir, &m->cfg, err);
    if (rc == 0) rc = gt_path_join(path, sizeof path, dir, "trainer_state.json", err);
    if (rc == 0) rc = ck_state_load(path, st, NULL, NULL, NULL, err);
    if (rc == 0 && m->fp8 && st->fp8.present) rc = ck_read_fp8(m, dir, &st->fp8, err);
    if (rc == 0) rc = ck_read_slices(m, o, dir, err);
    /* A sharded optimizer read its range of the parameters: every rank's to every rank. */
    if (o->dp && (rc = ck_agree(g, rc, err)) == 0) gt_model_dp_gather_params(m);
    /* New weights: the FP8 copies are recast (and their amaxes recorded) by the next training forward. */
    if (rc == 0) gt_model_fp8_weights_changed(m);
    if (rc == 0) {
        o->step = st->opt_step;
        o->skipped = st->opt_skipped;
    }
    rc = ck_agree(g, rc, err);
    if (rc) gt_ckpt_state_free(st);
    gt_watchdog_arm(g->wd, armed);
    return rc;
}
