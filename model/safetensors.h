/* safetensors files, single or sharded (model.safetensors.index.json), read by slice with pread so
 * that a tensor-parallel rank reads only its own rows. Every header is validated when opened:
 * length, JSON, dtypes, shapes, offsets contiguous with no gap or overlap, file length; for a
 * sharded model also the index (shards exist, every listed tensor is in its shard, every tensor of
 * a shard is listed, no name in two shards). Errors name the file, the tensor and what is wrong. */
#ifndef GT_SAFETENSORS_H
#define GT_SAFETENSORS_H

#include "../core/base.h"

#define GT_ST_MAX_DIMS 8

typedef struct {
    char *name;
    gt_dtype dtype;
    int ndim;
    int64_t shape[GT_ST_MAX_DIMS];
    int64_t numel;
    uint64_t offset; /* absolute byte offset of the data in its file */
    int file;        /* index into gt_st.files */
} gt_st_tensor;

typedef struct {
    char *path;
    int fd;
} gt_st_file;

typedef struct {
    gt_st_file *files;
    int nfiles;
    gt_st_tensor *tensors; /* sorted by name */
    int ntensors;
    char *path;            /* the path given to gt_st_open, for messages about absent tensors */
} gt_st;

/* Opens a model: path is a directory holding model.safetensors (preferred, as transformers does)
 * or model.safetensors.index.json, an index file itself (name ending in .index.json), or a single
 * .safetensors file. Only headers are read; every file stays open for pread until gt_st_close.
 * On failure st is left closed (gt_st_close on it is harmless). */
int gt_st_open(gt_st *st, const char *path, gt_err *err);
void gt_st_close(gt_st *st);

/* NULL if absent. */
const gt_st_tensor *gt_st_find(const gt_st *st, const char *name);

/* Finds name and checks its shape equals shape[0..ndim-1]; the message names file and tensor. */
int gt_st_expect(const gt_st *st, const char *name, int ndim, const int64_t *shape,
                 const gt_st_tensor **out, gt_err *err);

/* Reads rows [row0, row0+nrows) and columns [col0, col0+ncols) of a tensor viewed as 2-D
 * [shape[0], prod(shape[1:])] (a 1-D tensor of n elements is [1, n]), converting
 * F32/F16/BF16/F64 to float. dst is [nrows, ncols] row-major. */
int gt_st_read_f32(const gt_st *st, const gt_st_tensor *t, int64_t row0, int64_t nrows,
                   int64_t col0, int64_t ncols, float *dst, gt_err *err);

/* Reads the whole tensor's bytes as stored (numel * dtype size, little-endian), any dtype. */
int gt_st_read_raw(const gt_st *st, const gt_st_tensor *t, void *dst, gt_err *err);

/* Writes one safetensors file from in-memory tensors (used by tests, fixtures and checkpoints). */
typedef struct {
    const char *name;
    gt_dtype dtype;
    int ndim;
    int64_t shape[GT_ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes */
} gt_st_entry;
/* Header JSON {"__metadata__":{"format":"pt"}, name: {dtype, shape, data_offsets}, ...} in the
 * given order, data contiguous in the same order, header padded with spaces to a multiple of 8.
 * The file is written, fsync'ed and closed; on any failure it is removed. */
int gt_st_write(const char *path, const gt_st_entry *entries, int n, gt_err *err);

/* The first bytes of such a file (8-byte length + padded JSON header), for writers that place the
 * data themselves (e.g. each rank its own slices with MPI-IO). *bytes is malloc'ed (caller frees),
 * offsets[i] (if not NULL) receives the absolute file offset of entry i's data and *file_size the
 * total file length. The entries' data pointers are not read. what names the file in messages. */
int gt_st_header(const char *what, const gt_st_entry *entries, int n, void **bytes,
                 size_t *nbytes, uint64_t *offsets, uint64_t *file_size, gt_err *err);

#endif
