/* The run directory's checkpoints: checkpoint-N names and listing, the `latest` pointer, and the
 * removal of interrupted saves. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ckpt_internal.h"

void ck_dir_name(char *buf, size_t len, long long step) { snprintf(buf, len, "checkpoint-%06lld", step); }

/* N when name is exactly "checkpoint-" followed by digits, else -1. */
static long long step_of(const char *name) {
    if (strncmp(name, "checkpoint-", 11) || !name[11]) return -1;
    long long v = 0;
    for (const char *s = name + 11; *s; s++) {
        if (*s < '0' || *s > '9' || v > 1000000000000LL) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int ck_list_steps(const char *run_dir, long long **steps, int *n, gt_err *err) {
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(run_dir);
    if (!d) return errno == ENOENT ? 0 : gt_fail(err, "%s: cannot list: %s", run_dir, strerror(errno));
    int cap = 0;
    for (struct dirent *de; (de = readdir(d));) {
        long long s = step_of(de->d_name);
        if (s < 0) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            long long *grown = realloc(*steps, (size_t)cap * sizeof *grown);
            GT_ASSERT(grown, "out of host memory");
            *steps = grown;
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    if (*n > 1) qsort(*steps, (size_t)*n, sizeof **steps, cmp_ll);
    return 0;
}

int ck_write_latest(const char *run_dir, const char *name, gt_err *err) {
    char tmp[GT_CKPT_PATH], fin[GT_CKPT_PATH];
    if (gt_path_join(tmp, sizeof tmp, run_dir, "latest.tmp", err) || gt_path_join(fin, sizeof fin, run_dir, "latest", err)) return -1;
    if (gt_write_text(tmp, name, err)) return -1;
    if (rename(tmp, fin) != 0) {
        int e = errno;
        unlink(tmp);
        return gt_fail(err, "%s: cannot replace: %s", fin, strerror(e));
    }
    return gt_fsync_dir(run_dir, err);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void ck_remove_stale(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return;
    char path[GT_CKPT_PATH];
    for (struct dirent *de; (de = readdir(d));) {
        const char *nm = de->d_name;
        if (strncmp(nm, "checkpoint-", 11) || !(ends_with(nm, ".tmp") || ends_with(nm, ".old"))) continue;
        if (gt_path_join(path, sizeof path, run_dir, nm, NULL) == 0) gt_remove_tree(path, NULL);
    }
    closedir(d);
}
