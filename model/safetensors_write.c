/* Writing safetensors files: the header (8-byte length + JSON padded with spaces to a multiple
 * of 8) and the tensors' data, contiguous, in the order given. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One write at most this many bytes (Linux caps a single write near 2 GiB). */
#define ST_WRITE_MAX (1u << 30)

/* Checks one entry and returns its data size in *bytes. */
static int entry_bytes(const char *what, const gt_st_entry *e, uint64_t *bytes, gt_err *err) {
    if (!e->name || !e->name[0] || !strcmp(e->name, "__metadata__"))
        return gt_fail(err, "%s: invalid tensor name '%s'", what, e->name ? e->name : "(null)");
    if ((unsigned)e->dtype >= GT_DTYPE_COUNT)
        return gt_fail(err, "%s: tensor '%s': invalid dtype %d", what, e->name, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > GT_ST_MAX_DIMS)
        return gt_fail(err, "%s: tensor '%s': ndim %d is not in [0, %d]", what, e->name, e->ndim,
                       GT_ST_MAX_DIMS);
    uint64_t numel = 1, es = gt_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] < 0)
            return gt_fail(err, "%s: tensor '%s': shape[%d] = %lld is negative", what, e->name, d,
                           (long long)e->shape[d]);
        if (e->shape[d] > 0 && numel > (uint64_t)INT64_MAX / (uint64_t)e->shape[d] / es)
            return gt_fail(err, "%s: tensor '%s': too many elements", what, e->name);
        numel *= (uint64_t)e->shape[d];
    }
    *bytes = numel * es;
    return 0;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [begin, end]} */
static json_t *entry_json(const gt_st_entry *e, uint64_t begin, uint64_t end) {
    json_t *shape = json_array(), *offs = json_array(), *obj = json_object();
    GT_ASSERT(shape && offs && obj, "jansson: out of memory");
    for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
    json_array_append_new(offs, json_integer((json_int_t)begin));
    json_array_append_new(offs, json_integer((json_int_t)end));
    json_object_set_new(obj, "dtype", json_string(gt_dtype_name(e->dtype)));
    json_object_set_new(obj, "shape", shape);
    json_object_set_new(obj, "data_offsets", offs);
    return obj;
}

/* The header object; data offsets relative to the data buffer go to rel[i] (begin of entry i). */
static json_t *header_json(const char *what, const gt_st_entry *entries, int n, uint64_t *rel,
                           uint64_t *total, gt_err *err) {
    json_t *root = json_object(), *md = json_object();
    GT_ASSERT(root && md, "jansson: out of memory");
    json_object_set_new(md, "format", json_string("pt"));
    json_object_set_new(root, "__metadata__", md);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const gt_st_entry *e = &entries[i];
        uint64_t bytes;
        if (entry_bytes(what, e, &bytes, err)) goto fail;
        if (json_object_get(root, e->name)) {
            gt_fail(err, "%s: tensor '%s' is given twice", what, e->name);
            goto fail;
        }
        if (json_object_set_new(root, e->name, entry_json(e, at, at + bytes))) {
            gt_fail(err, "%s: tensor name '%s' is not valid UTF-8", what, e->name);
            goto fail;
        }
        rel[i] = at;
        at += bytes;
    }
    *total = at;
    return root;
fail:
    json_decref(root);
    return NULL;
}

int gt_st_header(const char *what, const gt_st_entry *entries, int n, void **bytes,
                 size_t *nbytes, uint64_t *offsets, uint64_t *file_size, gt_err *err) {
    *bytes = NULL;
    if (n < 0) return gt_fail(err, "%s: negative tensor count %d", what, n);
    uint64_t *rel = gt_malloc((size_t)(n + 1) * sizeof *rel), total = 0;
    json_t *root = header_json(what, entries, n, rel, &total, err);
    if (!root) {
        free(rel);
        return -1;
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    GT_ASSERT(text, "jansson: json_dumps failed");
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    unsigned char *out = gt_malloc(8 + padded);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(out + 8, text, len);
    memset(out + 8 + len, ' ', padded - len);
    free(text);
    for (int i = 0; offsets && i < n; i++) offsets[i] = 8 + padded + rel[i];
    free(rel);
    *bytes = out;
    *nbytes = 8 + padded;
    if (file_size) *file_size = 8 + padded + total;
    return 0;
}

static int write_all(int fd, const void *buf, uint64_t n, const char *path, gt_err *err) {
    const unsigned char *p = buf;
    while (n > 0) {
        size_t want = n < ST_WRITE_MAX ? (size_t)n : ST_WRITE_MAX;
        ssize_t put = write(fd, p, want);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0)
            return gt_fail(err, "%s: write failed: %s", path,
                           put < 0 ? strerror(errno) : "no progress");
        p += put;
        n -= (uint64_t)put;
    }
    return 0;
}

/* Writes header and data to an open fd, then fsyncs it. */
static int write_body(int fd, const char *path, const void *hdr, size_t hbytes,
                      const gt_st_entry *entries, int n, gt_err *err) {
    if (write_all(fd, hdr, hbytes, path, err)) return -1;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = 0;
        if (entry_bytes(path, &entries[i], &bytes, err)) return -1;
        if (bytes && write_all(fd, entries[i].data, bytes, path, err)) return -1;
    }
    if (fsync(fd) != 0) return gt_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    return 0;
}

int gt_st_write(const char *path, const gt_st_entry *entries, int n, gt_err *err) {
    void *hdr;
    size_t hbytes;
    if (gt_st_header(path, entries, n, &hdr, &hbytes, NULL, NULL, err)) return -1;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = 0;
        entry_bytes(path, &entries[i], &bytes, NULL);
        if (bytes && !entries[i].data) {
            free(hdr);
            return gt_fail(err, "%s: tensor '%s' has no data", path, entries[i].name);
        }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(hdr);
        return gt_fail(err, "%s: cannot create: %s", path, strerror(errno));
    }
    int rc = write_body(fd, path, hdr, hbytes, entries, n, err);
    free(hdr);
    if (close(fd) != 0 && rc == 0) rc = gt_fail(err, "%s: close failed: %s", path, strerror(errno));
    if (rc) unlink(path);
    return rc;
}
