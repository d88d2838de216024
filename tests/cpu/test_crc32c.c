/* CRC32C (core/crc32c.h) against published vectors (RFC 3720 B.4, the "123456789" check value),
 * the table path against the hardware path on every length and alignment around the block
 * boundaries, and combine of adjacent pieces. `test_crc32c --bench GB` prints the speed in s/GB;
 * `test_crc32c --bench-file PATH GB` the cost of reading a written file back with its CRC against the write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/crc32c.h"
#include "../../train/ckpt/ckpt_internal.h"
#include "check.h"

/* Bitwise reference: one bit at a time. */
static uint32_t slow(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    }
    return ~c;
}

static int bench(double gb) {
    size_t n = (size_t)(gb * 1e9);
    unsigned char *buf = malloc(n);
    if (!buf) {
        fprintf(stderr, "cannot allocate %zu bytes\n", n);
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    double t0 = gt_now();
    uint32_t c = gt_crc32c(0, buf, n);
    double t = gt_now() - t0;
    printf("crc32c of %.2f GB in memory: %.3f s, %.4f s/GB, %.2f GB/s (crc %08x)\n", (double)n / 1e9, t,
           t / ((double)n / 1e9), (double)n / 1e9 / t, c);
    free(buf);
    return 0;
}

/* Writes GB bytes to path (16 MiB writes, then fsync), then reads them back with their CRC32C, as
 * a checkpoint save does: the cost of the checksum against the write. */
static int bench_file(const char *path, double gb) {
    size_t chunk = (size_t)16 << 20, total = (size_t)(gb * 1e9);
    unsigned char *buf = malloc(chunk);
    if (!buf) return 1;
    for (size_t i = 0; i < chunk; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        free(buf);
        return 1;
    }
    double t0 = gt_now();
    int bad = 0;
    for (size_t done = 0; done < total && !bad; done += chunk) {
        size_t n = total - done < chunk ? total - done : chunk;
        buf[0] = (unsigned char)done;
        bad = fwrite(buf, 1, n, f) != n;
    }
    bad = bad || fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad = fclose(f) != 0 || bad;
    double tw = gt_now() - t0;
    if (bad) {
        perror(path);
        free(buf);
        return 1;
    }
    /* The checkpoint writer's own read-back (train/ckpt/ckpt_sums.c), one process. */
    free(buf);
    const char *slash = strrchr(path, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    ck_file_size file;
    snprintf(file.name, sizeof file.name, "%s", slash ? slash + 1 : path);
    file.bytes = total;
    uint32_t c;
    gt_err e;
    t0 = gt_now();
    if (ck_sums_compute(NULL, dir, &file, 1, &c, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double tr = gt_now() - t0;
    double g = (double)total / 1e9;
    printf("%.2f GB: write + fsync %.3f s (%.3f s/GB); checksum read-back (ck_sums_compute) %.3f s (%.4f s/GB), %.1f%% of the write "
           "(crc %08x)\n", g, tw, tw / g, tr, tr / g, 100 * tr / tw, c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--bench")) return bench(atof(argv[2]));
    if (argc > 3 && !strcmp(argv[1], "--bench-file")) return bench_file(argv[2], atof(argv[3]));
    gt_check c = {0};
    unsigned char buf[32];
    gt_check_true(&c, gt_crc32c(0, "123456789", 9) == 0xe3069283u, "check value of \"123456789\"");
    memset(buf, 0, 32);
    gt_check_true(&c, gt_crc32c(0, buf, 32) == 0x8a9136aau, "32 zero bytes (RFC 3720)");
    memset(buf, 0xff, 32);
    gt_check_true(&c, gt_crc32c(0, buf, 32) == 0x62a8ab43u, "32 0xff bytes (RFC 3720)");
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
    gt_check_true(&c, gt_crc32c(0, buf, 32) == 0x46dd794eu, "bytes 0..31 (RFC 3720)");
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(31 - i);
    gt_check_true(&c, gt_crc32c(0, buf, 32) == 0x113fdb5cu, "bytes 31..0 (RFC 3720)");
    gt_check_true(&c, gt_crc32c(0, "", 0) == 0, "empty");

    size_t big = 3 * 8192 * 3 + 100;
    unsigned char *data = malloc(big + 8);
    if (!data) return 1;
    for (size_t i = 0; i < big + 8; i++) data[i] = (unsigned char)(i * 2654435761u >> 11);
    const size_t lens[] = {0, 1, 7, 8, 63, 64, 65, 1000, 24575, 24576, 24577, 49152 + 13, 3 * 8192 * 3 + 99};
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
        for (int off = 0; off < 8; off++) {
            uint32_t want = slow(data + off, lens[l]), got = gt_crc32c(0, data + off, lens[l]);
            if (!gt_check_true(&c, got == want, "length %zu at offset %d: %08x, bitwise %08x", lens[l], off, got, want))
                break;
        }
    /* Incremental and combined agree with one pass. */
    uint32_t whole = gt_crc32c(0, data, big);
    const size_t cuts[] = {0, 1, 5000, 24576, 30001, big - 1, big};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        size_t a = cuts[k];
        uint32_t ca = gt_crc32c(0, data, a), cb = gt_crc32c(0, data + a, big - a);
        gt_check_true(&c, gt_crc32c(ca, data + a, big - a) == whole, "incremental at %zu", a);
        gt_check_true(&c, gt_crc32c_combine(ca, cb, big - a) == whole, "combine at %zu", a);
    }
    free(data);
    return gt_check_done(&c, "crc32c");
}
