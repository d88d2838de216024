#include "base.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[GT_DTYPE_COUNT] = {
    [GT_F32] = {"F32", 4},   [GT_F64] = {"F64", 8},         [GT_BF16] = {"BF16", 2},
    [GT_F16] = {"F16", 2},   [GT_I32] = {"I32", 4},         [GT_I64] = {"I64", 8},
    [GT_E4M3] = {"F8_E4M3", 1}, [GT_E5M2] = {"F8_E5M2", 1},
};

size_t gt_dtype_size(gt_dtype t) { return (unsigned)t < GT_DTYPE_COUNT ? dtype_info[t].size : 0; }

const char *gt_dtype_name(gt_dtype t) {
    return (unsigned)t < GT_DTYPE_COUNT ? dtype_info[t].name : "?";
}

int gt_dtype_parse(const char *s, gt_dtype *out) {
    for (int i = 0; i < GT_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (gt_dtype)i;
            return 0;
        }
    }
    return -1;
}

int gt_fail(gt_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int gt_env_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

__attribute__((noreturn)) void gt_die(const char *file, int line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "gemmatron: rank %d: %s:%d: %s\n", gt_env_rank(), file, line, msg);
    fflush(stderr);
    exit(1);
}

void *gt_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) GT_DIE("out of host memory allocating %zu bytes", bytes);
    return p;
}

void *gt_calloc(size_t count, size_t bytes) {
    void *p = calloc(count ? count : 1, bytes ? bytes : 1);
    if (!p) GT_DIE("out of host memory allocating %zu x %zu bytes", count, bytes);
    return p;
}

float gt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float mag;
    if (exp == 0) mag = ldexpf((float)man, -24);
    else if (exp == 31) mag = man ? NAN : INFINITY;
    else mag = ldexpf((float)(man | 0x400), (int)exp - 25);
    uint32_t u;
    memcpy(&u, &mag, sizeof u);
    u |= sign;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t gt_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7e00u;
    if (a >= 65520.0f) return sign | 0x7c00u; /* rounds to infinity */
    if (a < 6.103515625e-05f) {               /* subnormal: multiples of 2^-24, round to even */
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    }
    int e;
    float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    uint32_t man = (uint32_t)lrintf(m * 2048.0f); /* 11 significant bits, round to even */
    if (man == 2048) {
        man = 1024;
        e++;
    }
    return sign | (uint16_t)((uint32_t)(e + 14) << 10) | (uint16_t)(man & 0x3ffu);
}
