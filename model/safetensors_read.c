/* Reading tensor data with pread: a block of rows/columns converted to float, or the raw bytes.
 * Nothing reads a whole file; a tensor-parallel rank reads only its slice. */
#include "safetensors_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Staging buffer for non-F32 data: big enough that a row of any Gemma weight is one pread,
 * small enough not to matter next to the weights themselves. */
#define ST_STAGE_BYTES (8u << 20)
/* One pread at most this many bytes (Linux caps a single read near 2 GiB). */
#define ST_PREAD_MAX (1u << 30)

int gt_st_pread(const gt_st_file *f, void *buf, size_t n, uint64_t off, const char *what,
                gt_err *err) {
    unsigned char *p = buf;
    while (n > 0) {
        size_t want = n < ST_PREAD_MAX ? n : ST_PREAD_MAX;
        ssize_t got = pread(f->fd, p, want, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0)
            return gt_fail(err, "%s: reading %s failed: %s", f->path, what, strerror(errno));
        if (got == 0)
            return gt_fail(err, "%s: unexpected end of file reading %s (was the file truncated "
                           "after it was opened?)", f->path, what);
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

static void to_f32(gt_dtype dt, const void *src, size_t n, float *dst) {
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case GT_F16: {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = gt_f16_to_f32(h);
            break;
        }
        case GT_BF16: {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = gt_bf16_to_f32(h);
            break;
        }
        case GT_F64: {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
            break;
        }
        default: memcpy(&dst[i], s + 4 * i, 4); break;
        }
    }
}

/* Reads n consecutive elements at absolute offset off into dst as float. F32 goes straight into
 * dst; other dtypes pass through stage (stage_elems elements) in as few preads as fit. */
static int read_span(const gt_st *st, const gt_st_tensor *t, uint64_t off, size_t n, float *dst,
                     void *stage, size_t stage_elems, const char *what, gt_err *err) {
    const gt_st_file *f = &st->files[t->file];
    size_t es = gt_dtype_size(t->dtype);
    if (t->dtype == GT_F32) return gt_st_pread(f, dst, n * es, off, what, err);
    while (n > 0) {
        size_t k = n < stage_elems ? n : stage_elems;
        if (gt_st_pread(f, stage, k * es, off, what, err)) return -1;
        to_f32(t->dtype, stage, k, dst);
        dst += k;
        n -= k;
        off += (uint64_t)(k * es);
    }
    return 0;
}

/* The 2-D view [rows, cols] of a tensor: [shape[0], prod(shape[1:])]; 1-D n is [1, n];
 * 0-D is [1, 1]. */
static int64_t view_rows(const gt_st_tensor *t) { return t->ndim < 2 ? 1 : t->shape[0]; }
static int64_t view_cols(const gt_st_tensor *t) {
    if (t->ndim < 2) return t->ndim == 1 ? t->shape[0] : 1;
    int64_t cols = 1;
    for (int d = 1; d < t->ndim; d++) cols *= t->shape[d];
    return cols;
}

static int check_block(const gt_st *st, const gt_st_tensor *t, int64_t row0, int64_t nrows,
                       int64_t col0, int64_t ncols, gt_err *err) {
    const char *path = st->files[t->file].path;
    if (t->dtype != GT_F32 && t->dtype != GT_F16 && t->dtype != GT_BF16 && t->dtype != GT_F64)
        return gt_fail(err, "%s: tensor '%s' has dtype %s, which cannot be read as float", path,
                       t->name, gt_dtype_name(t->dtype));
    int64_t rows = view_rows(t), cols = view_cols(t);
    if (row0 < 0 || nrows < 0 || row0 > rows || nrows > rows - row0 || col0 < 0 || ncols < 0 ||
        col0 > cols || ncols > cols - col0)
        return gt_fail(err, "%s: tensor '%s': block rows [%lld, +%lld) columns [%lld, +%lld) is "
                       "out of bounds of its [%lld, %lld] view", path, t->name, (long long)row0,
                       (long long)nrows, (long long)col0, (long long)ncols, (long long)rows,
                       (long long)cols);
    return 0;
}

int gt_st_read_f32(const gt_st *st, const gt_st_tensor *t, int64_t row0, int64_t nrows,
                   int64_t col0, int64_t ncols, float *dst, gt_err *err) {
    if (check_block(st, t, row0, nrows, col0, ncols, err)) return -1;
    if (nrows == 0 || ncols == 0) return 0;
    int64_t cols = view_cols(t);
    size_t es = gt_dtype_size(t->dtype);
    uint64_t base = t->offset + ((uint64_t)row0 * (uint64_t)cols + (uint64_t)col0) * es;
    int whole_rows = ncols == cols; /* the block is one contiguous span */
    size_t span = whole_rows ? (size_t)nrows * (size_t)ncols : (size_t)ncols;
    size_t stage_elems = ST_STAGE_BYTES / es;
    if (stage_elems > span) stage_elems = span;
    void *stage = t->dtype == GT_F32 ? NULL : gt_malloc(stage_elems * es);
    char what[300];
    snprintf(what, sizeof what, "tensor '%s'", t->name);
    int rc = 0;
    if (whole_rows) {
        rc = read_span(st, t, base, span, dst, stage, stage_elems, what, err);
    } else {
        for (int64_t r = 0; r < nrows && rc == 0; r++)
            rc = read_span(st, t, base + (uint64_t)r * (uint64_t)cols * es, span,
                           dst + (size_t)r * span, stage, stage_elems, what, err);
    }
    free(stage);
    return rc;
}

int gt_st_read_raw(const gt_st *st, const gt_st_tensor *t, void *dst, gt_err *err) {
    char what[300];
    snprintf(what, sizeof what, "tensor '%s'", t->name);
    size_t bytes = (size_t)t->numel * gt_dtype_size(t->dtype);
    return gt_st_pread(&st->files[t->file], dst, bytes, t->offset, what, err);
}
