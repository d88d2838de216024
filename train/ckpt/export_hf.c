/* Writing a (tensor-parallel) model as an HF directory: the checkpoint writer's catalog and
 * parallel slice writes, without optimizer state (export_hf.h). */
#include "export_hf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "ckpt_internal.h"

typedef struct {
    char tmp[GT_CKPT_PATH], old[GT_CKPT_PATH];
} export_paths;

static int make_paths(export_paths *p, const char *dir, gt_err *err) {
    if (snprintf(p->tmp, sizeof p->tmp, "%s.tmp", dir) >= (int)sizeof p->tmp ||
        snprintf(p->old, sizeof p->old, "%s.old", dir) >= (int)sizeof p->old)
        return gt_fail(err, "%s: path too long", dir);
    return 0;
}

/* Rank 0: a fresh DIR.tmp with every file at its final size. */
static int prepare(const export_paths *p, const ck_catalog *c, gt_err *err) {
    gt_remove_tree(p->tmp, NULL);
    if (mkdir(p->tmp, 0755) != 0) return gt_fail(err, "%s: cannot create: %s", p->tmp, strerror(errno));
    return ck_create_files(c, p->tmp, err);
}

static int write_slices(gt_model *m, gt_grid *g, const export_paths *p, const ck_catalog *c, gt_err *err) {
    int *fds = gt_calloc((size_t)c->nfiles, sizeof *fds);
    int rc = ck_open_files(c, p->tmp, fds, err);
    if (rc == 0) rc = ck_write_slices(m, NULL, g->tp, 1, c, p->tmp, fds, err);
    gt_err cerr;
    if (ck_close_files(c, p->tmp, fds, &cerr) && rc == 0) {
        *err = cerr;
        rc = -1;
    }
    free(fds);
    return rc;
}

/* Rank 0: the small files, then DIR.tmp replaces DIR (the previous export moved aside first). */
static int seal(const gt_model *m, gt_dtype dt, const export_paths *p, const ck_catalog *c, const char *dir,
                gt_err *err) {
    if (ck_write_hf_files(&m->cfg, dt, c, p->tmp, err) || gt_fsync_dir(p->tmp, err)) return -1;
    struct stat sb;
    int had = stat(dir, &sb) == 0;
    gt_remove_tree(p->old, NULL);
    if (had && rename(dir, p->old) != 0)
        return gt_fail(err, "%s: cannot move the previous export aside: %s", dir, strerror(errno));
    if (rename(p->tmp, dir) != 0) {
        int e = errno;
        if (had) rename(p->old, dir);
        return gt_fail(err, "%s: cannot rename %s into place: %s", dir, p->tmp, strerror(e));
    }
    gt_remove_tree(p->old, NULL);
    return 0;
}

int gt_export_hf(gt_model *m, gt_grid *g, const char *dir, gt_dtype dtype, gt_err *err) {
    int rank0 = g->world_rank == 0;
    export_paths p;
    ck_catalog c;
    int armed = gt_watchdog_arm(g->wd, 0); /* rank 0 alone seals while the others wait (see ck_agree) */
    int rc = dtype == GT_BF16 || dtype == GT_F32 || dtype == GT_F16 ? 0
                                                                     : gt_fail(err, "%s: export dtype must be BF16, F16 or F32", dir);
    if (rc == 0) rc = make_paths(&p, dir, err);
    int built = rc == 0 && ck_catalog_build(&c, &m->cfg, dtype, -1, 0, err) == 0;
    if (rc == 0 && !built) rc = -1;
    if (rc == 0 && rank0) rc = prepare(&p, &c, err);
    rc = ck_agree(g, rc, err);
    if (rc == 0 && g->dp_rank == 0) rc = write_slices(m, g, &p, &c, err);
    rc = ck_agree(g, rc, err);
    if (rc == 0 && rank0) rc = seal(m, dtype, &p, &c, dir, err);
    if (rank0 && built) gt_remove_tree(p.tmp, NULL);
    rc = ck_agree(g, rc, err);
    if (built) ck_catalog_free(&c);
    gt_watchdog_arm(g->wd, armed);
    return rc;
}
