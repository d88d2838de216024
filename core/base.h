/* Base definitions shared by every part of gemmatron: dtypes, bf16/f16 conversion, error reporting.
 *
 * Two kinds of failure:
 *  - bad input (a corrupt file, a missing config field): the function fills a gt_err with one line
 *    naming the file and what is wrong and returns -1; the caller reports it and exits non-zero.
 *  - a failed library call (CUDA, cuBLASLt, NCCL, MPI, HDF5) or an impossible internal state:
 *    gt_die() prints "gemmatron: rank R: file:line: message" and exits. */
#ifndef GT_BASE_H
#define GT_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    GT_F32 = 0,
    GT_F64,
    GT_BF16,
    GT_F16,
    GT_I32,
    GT_I64,
    GT_E4M3,
    GT_E5M2,
    GT_DTYPE_COUNT
} gt_dtype;

size_t gt_dtype_size(gt_dtype t);
/* safetensors spelling: "F32", "BF16", "F8_E4M3", ... */
const char *gt_dtype_name(gt_dtype t);
/* Parses a safetensors dtype string; returns -1 if unknown. */
int gt_dtype_parse(const char *s, gt_dtype *out);

/* One line for the user: what and where. */
typedef struct {
    char msg[1024];
} gt_err;

/* Formats into err (if not NULL) and returns -1, so callers can `return gt_fail(err, ...)`. */
int gt_fail(gt_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The MPI rank of this process as the launcher set it (Open MPI, PMI, Slurm), or 0. Read from the
 * environment each time so that messages carry the rank without any global state. */
int gt_env_rank(void);

__attribute__((noreturn)) void gt_die(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define GT_DIE(...) gt_die(__FILE__, __LINE__, __VA_ARGS__)
#define GT_ASSERT(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) gt_die(__FILE__, __LINE__, __VA_ARGS__);                                      \
    } while (0)

void *gt_malloc(size_t bytes);                 /* dies on failure */
void *gt_calloc(size_t count, size_t bytes);   /* dies on failure */

/* bf16 <-> f32: round to nearest even, NaN kept quiet (as PyTorch and CUDA do). */
static inline float gt_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint16_t gt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
/* Rounds a float to the nearest bf16 value and back. */
static inline float gt_round_bf16(float f) { return gt_bf16_to_f32(gt_f32_to_bf16(f)); }

float gt_f16_to_f32(uint16_t h);
uint16_t gt_f32_to_f16(float f);

#ifdef __cplusplus
}
#endif

#endif
