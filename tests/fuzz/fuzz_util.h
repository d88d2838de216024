/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c): the readers take paths, so each input is written
 * to a file in a scratch directory of this process (under /dev/shm when it exists: no disk I/O),
 * made once and removed at exit. */
#ifndef GT_FUZZ_UTIL_H
#define GT_FUZZ_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[256];

static inline void fuzz_cleanup(void) {
    char cmd[300];
    if (fuzz_dir[0] && snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir) < (int)sizeof cmd && system(cmd) != 0)
        fprintf(stderr, "fuzz: cannot remove %s\n", fuzz_dir);
}

/* The scratch directory, made on the first call. */
static inline const char *fuzz_scratch(void) {
    if (fuzz_dir[0]) return fuzz_dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/gt-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir)) {
        fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fuzz_dir, strerror(errno));
        abort();
    }
    if (atexit(fuzz_cleanup) != 0) abort();
    return fuzz_dir;
}

/* Writes data[0..size) to scratch/name (replacing it); aborts on an I/O error (not the reader's fault). */
static inline void fuzz_write(const char *name, const uint8_t *data, size_t size, char *path, size_t path_len) {
    snprintf(path, path_len, "%s/%s", fuzz_scratch(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: writing %s: %s\n", path, strerror(errno));
        abort();
    }
}

/* Copies a file (a fixture the input may refer to) into the scratch directory. */
static inline void fuzz_copy(const char *from, const char *name) {
    FILE *f = fopen(from, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: %s: %s (run from the source root)\n", from, strerror(errno));
        abort();
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    if (ferror(f) || !feof(f)) {
        fprintf(stderr, "fuzz: %s: cannot read it whole\n", from);
        abort();
    }
    fclose(f);
    char path[512];
    fuzz_write(name, buf, n, path, sizeof path);
}

#endif
