/* RUN_DIR/train.lock (run_lock.h): an fcntl write lock on the whole file, and "host H pid P" in it. */
#include "run_lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fs.h"
#include "ckpt/checkpoint.h"

/* The holder as its lock file says ("host H pid P"), into buf; "holder not written yet" just after it took the lock. */
static void holder(int fd, char *buf, size_t len) {
    ssize_t n = pread(fd, buf, len - 1, 0);
    if (n <= 0) {
        snprintf(buf, len, "holder %s", n < 0 ? strerror(errno) : "not written yet");
        return;
    }
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
}

static int take(gt_run_lock *l, const char *run_dir, gt_err *err) {
    char *path = l->path, host[256], me[512];
    struct stat sb;
    if (snprintf(l->dir, sizeof l->dir, "%s", run_dir) >= (int)sizeof l->dir)
        return gt_fail(err, "run_dir %s: path too long", run_dir);
    l->created = stat(run_dir, &sb) != 0 && errno == ENOENT;
    if (gt_mkdirs(run_dir, err) || gt_path_join(path, sizeof l->path, run_dir, GT_RUN_LOCK_FILE, err)) return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return gt_fail(err, "%s: cannot open the run directory's lock file: %s", path, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        char who[300];
        if (e == EACCES || e == EAGAIN) holder(fd, who, sizeof who);
        close(fd);
        if (e == EACCES || e == EAGAIN)
            return gt_fail(err, "run_dir %s is in use by another training run (held by %s, lock file %s): wait for it to end "
                                "or choose another --run-dir", run_dir, who, path);
        return gt_fail(err, "%s: cannot lock: %s", path, strerror(e));
    }
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown-host");
    host[sizeof host - 1] = 0;
    int n = snprintf(me, sizeof me, "host %s pid %ld\n", host, (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, me, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return gt_fail(err, "%s: cannot write the holder: %s", path, strerror(e));
    }
    l->fd = fd;
    return 0;
}

int gt_run_lock_take(gt_run_lock *l, gt_grid *g, const char *run_dir, gt_err *err) {
    l->fd = -1;
    l->created = 0;
    int rc = g->world_rank == 0 ? take(l, run_dir, err) : 0;
    return ck_agree(g, rc, err);
}

/* dir holds nothing but the lock file. */
static int only_lock(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int other = 0;
    for (struct dirent *de; !other && (de = readdir(d));)
        other = strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, GT_RUN_LOCK_FILE);
    closedir(d);
    return !other;
}

void gt_run_lock_release(gt_run_lock *l, int failed) {
    if (l->fd < 0) return;
    /* Removed while still locked, so no other run can have taken it in between. */
    if (failed && l->created && only_lock(l->dir) && unlink(l->path) == 0 && rmdir(l->dir) != 0)
        fprintf(stderr, "gemmatron: warning: %s: cannot remove the empty run directory: %s\n", l->dir, strerror(errno));
    close(l->fd); /* the lock goes with the descriptor; the file (and its text) stays */
    l->fd = -1;
}
