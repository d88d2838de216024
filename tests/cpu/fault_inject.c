/* Fault injection for the checkpoint tests, loaded with LD_PRELOAD (built by the test scripts:
 * cc -shared -fPIC -o fault.so tests/cpu/fault_inject.c -ldl). It wraps pwrite(): when the file
 * being written has a path containing $GT_FAULT_PATH, then
 *   GT_FAULT=kill    the process kills itself with SIGKILL (a crash in the middle of a write),
 *   GT_FAULT=enospc  the write fails with ENOSPC (a full disk),
 * after $GT_FAULT_AFTER (default 0) matching writes went through. Without GT_FAULT_PATH it does
 * nothing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

/* 1 when fd's path contains the configured fragment. */
static int matches(int fd) {
    const char *want = getenv("GT_FAULT_PATH");
    if (!want || !*want) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, want) != NULL;
}

/* Matching writes so far; the shim's own state, process-local (tests only). */
static long seen;

static ssize_t faulty(pwrite_fn real, int fd, const void *buf, size_t n, off_t off) {
    if (matches(fd)) {
        const char *after = getenv("GT_FAULT_AFTER"), *mode = getenv("GT_FAULT");
        if (seen++ >= (after ? atol(after) : 0) && mode) {
            if (!strcmp(mode, "kill")) kill(getpid(), SIGKILL);
            if (!strcmp(mode, "enospc")) {
                errno = ENOSPC;
                return -1;
            }
        }
    }
    return real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    return faulty((pwrite_fn)dlsym(RTLD_NEXT, "pwrite"), fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    return faulty((pwrite_fn)dlsym(RTLD_NEXT, "pwrite64"), fd, buf, n, off);
}
