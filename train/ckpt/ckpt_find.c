/* Is a directory a complete checkpoint, and which checkpoint of a run to resume from. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../../model/safetensors.h"
#include "ckpt_internal.h"

/* Every file trainer_state.json lists exists with the recorded size. */
static int check_sizes(const char *dir, const ck_file_size *files, int n, gt_err *err) {
    char path[GT_CKPT_PATH];
    for (int i = 0; i < n; i++) {
        struct stat sb;
        if (gt_path_join(path, sizeof path, dir, files[i].name, err)) return -1;
        if (stat(path, &sb) != 0)
            return gt_fail(err, "%s: missing (%s): the checkpoint is incomplete", path, strerror(errno));
        if ((uint64_t)sb.st_size != files[i].bytes)
            return gt_fail(err, "%s: %lld bytes, the checkpoint recorded %llu: truncated or partly written", path,
                           (long long)sb.st_size, (unsigned long long)files[i].bytes);
    }
    return 0;
}

/* Every tensor of kinds [k0, k1) of the catalog is in st with its shape. */
static int check_tensors(const gt_st *st, const ck_catalog *c, int k0, int k1, gt_err *err) {
    for (int k = k0; k < k1; k++) {
        for (int i = 0; i < c->ntensors; i++) {
            int64_t shape[2] = {c->ndim[i] == 1 ? c->cols[i] : c->rows[i], c->cols[i]};
            const gt_st_tensor *t;
            if (gt_st_expect(st, ck_entry_of(c, k, i)->name, c->ndim[i], shape, &t, err)) return -1;
        }
    }
    return 0;
}

/* Opens path (a directory's model files, or one file) and checks the tensors of kinds [k0, k1). */
static int check_file(const char *path, const ck_catalog *c, int k0, int k1, gt_err *err) {
    gt_st st;
    if (gt_st_open(&st, path, err)) return -1;
    int rc = check_tensors(&st, c, k0, k1, err);
    gt_st_close(&st);
    return rc;
}

int ck_check_weights(const char *dir, const gt_config *cfg, gt_err *err) {
    ck_catalog c;
    if (ck_catalog_build(&c, cfg, GT_F32, -1, 0, err)) return -1;
    int rc = check_file(dir, &c, CK_WEIGHT, CK_MASTER, err);
    ck_catalog_free(&c);
    return rc;
}

static int has_file(const ck_file_size *files, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(files[i].name, name)) return 1;
    return 0;
}

int gt_checkpoint_validate(const char *dir, gt_err *err) {
    char path[GT_CKPT_PATH];
    gt_ckpt_state st;
    ck_file_size *files = NULL;
    int nfiles = 0;
    gt_dtype wdtype;
    if (gt_path_join(path, sizeof path, dir, "trainer_state.json", err)) return -1;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return gt_fail(err, "%s: not a directory", dir);
    if (stat(path, &sb) != 0)
        return gt_fail(err, "%s: no trainer_state.json: not a gemmatron checkpoint, or an incomplete one", dir);
    if (ck_state_load(path, &st, &files, &nfiles, &wdtype, err)) return -1;
    gt_ckpt_fp8 fp8 = st.fp8;
    gt_ckpt_state_free(&st);
    gt_config cfg;
    ck_catalog c;
    int rc = check_sizes(dir, files, nfiles, err);
    if (rc == 0 && !has_file(files, nfiles, "optimizer.safetensors"))
        rc = gt_fail(err, "%s/trainer_state.json: lists no optimizer.safetensors", dir);
    if (rc == 0 && fp8.present && !has_file(files, nfiles, CK_FP8_FILE))
        rc = gt_fail(err, "%s/trainer_state.json: describes FP8 state but lists no %s", dir, CK_FP8_FILE);
    if (rc == 0 && fp8.present) rc = ck_check_fp8(dir, &fp8, err);
    if (rc == 0) rc = gt_path_join(path, sizeof path, dir, "config.json", err);
    if (rc == 0) rc = gt_config_load(&cfg, path, err);
    if (rc == 0) rc = gt_config_validate(&cfg, path, err);
    if (rc == 0 && ck_catalog_build(&c, &cfg, wdtype, GT_F32, 0, err) == 0) {
        rc = check_file(dir, &c, CK_WEIGHT, CK_MASTER, err);
        if (rc == 0) rc = gt_path_join(path, sizeof path, dir, "optimizer.safetensors", err);
        if (rc == 0) rc = check_file(path, &c, CK_MASTER, CK_KINDS, err);
        ck_catalog_free(&c);
    } else if (rc == 0) {
        rc = -1;
    }
    free(files);
    return rc;
}

/* The step RUN_DIR/latest names, or -1 (with the reason in why) when it names nothing usable. */
static long long latest_step(const char *run_dir, char *why, size_t len) {
    char path[GT_CKPT_PATH], *text;
    gt_err e;
    why[0] = 0;
    if (gt_path_join(path, sizeof path, run_dir, "latest", &e)) return -1;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(why, len, "%s is missing", path);
        return -1;
    }
    if (gt_read_text(path, &text, &e)) {
        snprintf(why, len, "%s", e.msg);
        return -1;
    }
    long long step = -1;
    char rest[8] = "";
    int ok = sscanf(text, "checkpoint-%lld%7s", &step, rest) == 1 && step >= 0;
    if (!ok) snprintf(why, len, "%s does not name a checkpoint", path);
    free(text);
    return ok ? step : -1;
}

/* gt_checkpoint_find_latest among the checkpoints before step `below` (LLONG_MAX: all); *found_step
 * receives the step of the one found. `latest` naming a step at or after `below` is no warning: the
 * caller rejected that one already. */
static int find_below(const char *run_dir, long long below, char *path, size_t len, FILE *warn, long long *found_step,
                      gt_err *err) {
    long long *steps;
    int n;
    gt_err e;
    e.msg[0] = 0;
    if (ck_list_steps(run_dir, &steps, &n, err)) return -1;
    int all = n;
    while (n > 0 && steps[n - 1] >= below) n--;
    if (n == 0) {
        free(steps);
        if (all == 0) return 0;
        return gt_fail(err, "%s: none of its %d checkpoint(s) is usable (remove them to start afresh)", run_dir, all);
    }
    char why[GT_CKPT_PATH + sizeof e.msg], name[64];
    long long want = latest_step(run_dir, why, sizeof why);
    if (want >= below) want = -2;
    int start = n - 1;
    if (want >= 0) {
        while (start >= 0 && steps[start] > want) start--;
        if (start < 0 || steps[start] != want) {
            snprintf(why, sizeof why, "%s/latest names checkpoint-%06lld, which is not there", run_dir, want);
            start = n - 1;
            want = -1;
        }
    }
    if (want == -1 && warn) fprintf(warn, "gemmatron: warning: %s; taking the newest complete checkpoint\n", why);
    int found = 0;
    for (int i = start; i >= 0 && !found; i--) {
        *found_step = steps[i];
        ck_dir_name(name, sizeof name, steps[i]);
        if (gt_path_join(path, len, run_dir, name, err)) break;
        found = gt_checkpoint_validate(path, &e) == 0;
        if (!found && warn)
            fprintf(warn, "gemmatron: warning: %s is not usable: %s; falling back to the previous checkpoint\n", path,
                    e.msg);
    }
    free(steps);
    if (found) return 1;
    return gt_fail(err, "%s: none of its %d checkpoint(s) is usable (remove them to start afresh): %s", run_dir, all,
                   e.msg);
}

int gt_checkpoint_find_latest(const char *run_dir, char *path, size_t len, FILE *warn, gt_err *err) {
    long long step;
    return find_below(run_dir, LLONG_MAX, path, len, warn, &step, err);
}

int gt_checkpoint_find_verified(gt_grid *g, const char *run_dir, char *path, size_t len, FILE *warn,
                                int *unverified, gt_err *err) {
    int rank0 = !g || g->world_rank == 0, many = g && g->world.size > 1 && g->world.mpi != MPI_COMM_NULL;
    long long below = LLONG_MAX, step = -1;
    *unverified = 0;
    for (;;) {
        int found = 0;
        if (rank0) found = find_below(run_dir, below, path, len, warn, &step, err);
        if (g && ck_agree(g, found < 0, err)) return -1;
        if (!g && found < 0) return -1;
        if (many) {
            MPI_CHECK(MPI_Bcast(&found, 1, MPI_INT, 0, g->world.mpi));
            MPI_CHECK(MPI_Bcast(&step, 1, MPI_LONG_LONG, 0, g->world.mpi));
            GT_ASSERT(len <= 0x7fffffff, "path buffer of %zu bytes", len);
            MPI_CHECK(MPI_Bcast(path, (int)len, MPI_CHAR, 0, g->world.mpi));
        }
        if (found == 0) return 0;
        gt_err e;
        int had;
        if (ck_sums_verify(g, path, 0, &had, &e) == 0) {
            *unverified = !had;
            return 1;
        }
        if (rank0 && warn)
            fprintf(warn, "gemmatron: warning: %s is not usable: %s; falling back to the previous checkpoint\n", path,
                    e.msg);
        *err = e;
        below = step;
    }
}
