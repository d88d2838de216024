/* Helpers shared by the safetensors reader's files (safetensors.c, safetensors_header.c,
 * safetensors_read.c); not part of the public API. */
#ifndef GT_SAFETENSORS_INTERNAL_H
#define GT_SAFETENSORS_INTERNAL_H

#include "safetensors.h"

/* The largest header accepted, the limit of the reference implementation (Rust safetensors), so
 * that a corrupt length cannot make us allocate gigabytes. */
#define GT_ST_MAX_HEADER 100000000ull

/* Parses and validates the header of st->files[file] and appends its tensors to st->tensors
 * (unsorted; offsets made absolute). On failure the tensors appended so far stay in st, complete,
 * so that gt_st_close frees them. */
int gt_st_load_header(gt_st *st, int file, gt_err *err);

/* Reads exactly n bytes at offset off of f, looping over short reads; what names the data in the
 * message ("the header", "tensor 'x'"). */
int gt_st_pread(const gt_st_file *f, void *buf, size_t n, uint64_t off, const char *what,
                gt_err *err);

/* "[2, 3]" into buf (truncated to size). */
void gt_st_shape_str(char *buf, size_t size, int ndim, const int64_t *shape);

#endif
