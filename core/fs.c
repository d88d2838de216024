/* Checked file-system steps (core/fs.h). */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One system call moves at most this much (Linux caps a single transfer near 2 GiB). */
#define IO_MAX ((size_t)1 << 30)

int gt_path_join(char *buf, size_t len, const char *dir, const char *name, gt_err *err) {
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) return gt_fail(err, "%s/%s: path too long", dir, name);
    return 0;
}

int gt_file_at(char *buf, size_t len, const char *dir, const char *name) {
    struct stat sb;
    return gt_path_join(buf, len, dir, name, NULL) == 0 && stat(buf, &sb) == 0 && S_ISREG(sb.st_mode);
}

int gt_file_exists(const char *dir, const char *name) {
    char buf[4096];
    return gt_file_at(buf, sizeof buf, dir, name);
}

int gt_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path, gt_err *err) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n < IO_MAX ? n : IO_MAX, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == ENOSPC) return gt_fail(err, "%s: write failed: no space left on the device (disk full)", path);
        if (w <= 0) return gt_fail(err, "%s: write failed: %s", path, w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int gt_pread_all(int fd, void *buf, size_t n, uint64_t off, const char *path, gt_err *err) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n < IO_MAX ? n : IO_MAX, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return gt_fail(err, "%s: read failed: %s", path, strerror(errno));
        if (r == 0) return gt_fail(err, "%s: truncated: ends before byte %llu", path, (unsigned long long)off + 1);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int gt_write_text(const char *path, const char *text, gt_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return gt_fail(err, "%s: cannot create: %s", path, strerror(errno));
    size_t n = strlen(text);
    int rc = gt_pwrite_all(fd, text, n, 0, path, err);
    if (rc == 0) rc = gt_pwrite_all(fd, "\n", 1, n, path, err);
    if (rc == 0 && fsync(fd) != 0) rc = gt_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0) rc = gt_fail(err, "%s: close failed: %s", path, strerror(errno));
    if (rc) unlink(path);
    return rc;
}

int gt_read_text(const char *path, char **text, gt_err *err) {
    *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    int rc = fstat(fd, &sb) ? gt_fail(err, "%s: cannot stat: %s", path, strerror(errno)) : 0;
    if (rc == 0 && (sb.st_size < 0 || sb.st_size > (1 << 26))) rc = gt_fail(err, "%s: too large for a text file", path);
    if (rc == 0) {
        *text = gt_malloc((size_t)sb.st_size + 1);
        rc = gt_pread_all(fd, *text, (size_t)sb.st_size, 0, path, err);
        (*text)[sb.st_size] = 0;
    }
    close(fd);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

int gt_fsync_dir(const char *dir, gt_err *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return gt_fail(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd) ? gt_fail(err, "%s: fsync failed: %s", dir, strerror(errno)) : 0;
    close(fd);
    return rc;
}

int gt_mkdirs(const char *path, gt_err *err) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return gt_fail(err, "%s: path too long", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return gt_fail(err, "%s: cannot create: %s", p, strerror(errno));
        *s = c;
        if (!c) break;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return gt_fail(err, "%s: not a directory", path);
    return 0;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT ? -1 : 0;
}

int gt_remove_tree(const char *path, gt_err *err) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : gt_fail(err, "%s: %s", path, strerror(errno));
    /* Depth first, not following symbolic links: never deletes outside path. */
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return gt_fail(err, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}
