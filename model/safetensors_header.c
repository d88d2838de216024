/* Validation of one safetensors file's header (DESIGN.md §5):
 *   bytes [0, 8)       N, little-endian u64
 *   bytes [8, 8+N)     JSON object: "__metadata__" (string -> string) and, per tensor,
 *                      name -> {"dtype": "BF16", "shape": [r, c], "data_offsets": [begin, end]}
 *   bytes [8+N, ...)   data; offsets are relative to 8+N, contiguous from 0, no gap or overlap,
 *                      and the file ends exactly at 8+N+last end.
 * Anything else is rejected with one line naming the file, the tensor and the problem. */
#include "safetensors_internal.h"
#include "json_util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Byte range of one tensor inside the data buffer, for the contiguity check. */
typedef struct {
    uint64_t begin, end;
    int tensor; /* index into st->tensors */
} st_span;

void gt_st_shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = 0;
    if (size == 0) return;
    buf[0] = '\0';
    int n = snprintf(buf, size, "[");
    for (int d = 0; d < ndim && n >= 0; d++) {
        used += (size_t)n;
        if (used >= size) return;
        n = snprintf(buf + used, size - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    }
    if (n < 0) return;
    used += (size_t)n;
    if (used < size) snprintf(buf + used, size - used, "]");
}

static uint64_t le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

/* shape: array of at most GT_ST_MAX_DIMS non-negative integers whose product fits in int64. */
static int parse_shape(const json_t *js, gt_st_tensor *t, const char *path, gt_err *err) {
    if (!json_is_array(js))
        return gt_fail(err, "%s: tensor '%s': shape is %s, not an array", path, t->name,
                       gt_json_kind(js));
    size_t nd = json_array_size(js);
    if (nd > GT_ST_MAX_DIMS)
        return gt_fail(err, "%s: tensor '%s': shape has %zu dimensions, at most %d are supported",
                       path, t->name, nd, GT_ST_MAX_DIMS);
    t->ndim = (int)nd;
    t->numel = 1;
    for (size_t d = 0; d < nd; d++) {
        const json_t *v = json_array_get(js, d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return gt_fail(err, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path,
                           t->name, d);
        int64_t dim = (int64_t)json_integer_value(v);
        if (dim > 0 && t->numel > INT64_MAX / dim)
            return gt_fail(err, "%s: tensor '%s': shape has too many elements", path, t->name);
        t->shape[d] = dim;
        t->numel *= dim;
    }
    return 0;
}

static int parse_offsets(const json_t *js, st_span *sp, const char *path, const char *name,
                         gt_err *err) {
    const json_t *b = json_array_get(js, 0), *e = json_array_get(js, 1);
    if (!json_is_array(js) || json_array_size(js) != 2 || !json_is_integer(b) ||
        !json_is_integer(e) || json_integer_value(b) < 0 || json_integer_value(e) < 0)
        return gt_fail(err, "%s: tensor '%s': data_offsets is not [begin, end] of non-negative "
                       "integers", path, name);
    sp->begin = (uint64_t)json_integer_value(b);
    sp->end = (uint64_t)json_integer_value(e);
    if (sp->end < sp->begin)
        return gt_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                       path, name, (unsigned long long)sp->begin, (unsigned long long)sp->end);
    return 0;
}

static int parse_dtype(const json_t *js, gt_st_tensor *t, const char *path, gt_err *err) {
    if (!json_is_string(js))
        return gt_fail(err, "%s: tensor '%s': dtype is %s, not a string", path, t->name,
                       gt_json_kind(js));
    if (gt_dtype_parse(json_string_value(js), &t->dtype) != 0)
        return gt_fail(err, "%s: tensor '%s': unknown dtype '%s' (supported: F32, F64, BF16, F16, "
                       "I32, I64, F8_E4M3, F8_E5M2)", path, t->name, json_string_value(js));
    return 0;
}

/* One header entry name -> {dtype, shape, data_offsets}; no other keys. t->name is set. */
static int parse_entry(const json_t *obj, gt_st_tensor *t, st_span *sp, const char *path,
                       gt_err *err) {
    if (!json_is_object(obj))
        return gt_fail(err, "%s: tensor '%s': entry is %s, not an object", path, t->name,
                       gt_json_kind(obj));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return gt_fail(err, "%s: tensor '%s': unknown key '%s'", path, t->name, key);
    }
    static const char *const need[] = {"dtype", "shape", "data_offsets"};
    for (int i = 0; i < 3; i++) {
        if (!json_object_get(obj, need[i]))
            return gt_fail(err, "%s: tensor '%s': no '%s'", path, t->name, need[i]);
    }
    if (parse_dtype(json_object_get(obj, "dtype"), t, path, err) ||
        parse_shape(json_object_get(obj, "shape"), t, path, err) ||
        parse_offsets(json_object_get(obj, "data_offsets"), sp, path, t->name, err))
        return -1;
    uint64_t esize = gt_dtype_size(t->dtype);
    char shp[160];
    gt_st_shape_str(shp, sizeof shp, t->ndim, t->shape);
    if ((uint64_t)t->numel > UINT64_MAX / esize ||
        sp->end - sp->begin != (uint64_t)t->numel * esize)
        return gt_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape "
                       "%s of %s needs %llu (size does not match shape)", path, t->name,
                       (unsigned long long)sp->begin, (unsigned long long)sp->end,
                       (unsigned long long)(sp->end - sp->begin), shp, gt_dtype_name(t->dtype),
                       (unsigned long long)t->numel * esize);
    return 0;
}

static int check_metadata(const json_t *md, const char *path, gt_err *err) {
    if (!json_is_object(md))
        return gt_fail(err, "%s: __metadata__ is %s, not an object", path, gt_json_kind(md));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)md, key, v) {
        if (!json_is_string(v))
            return gt_fail(err, "%s: __metadata__ value of '%s' is %s, not a string", path, key,
                           gt_json_kind(v));
    }
    return 0;
}

static int span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Sorted by begin, the spans must tile [0, total) exactly. Returns total in *total. */
static int check_contiguous(const gt_st *st, st_span *sp, int n, const char *path,
                            uint64_t *total, gt_err *err) {
    qsort(sp, (size_t)n, sizeof *sp, span_cmp);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const char *name = st->tensors[sp[i].tensor].name;
        if (sp[i].begin > at && i == 0)
            return gt_fail(err, "%s: tensor '%s': data_offsets begin at %llu, leaving a gap at the "
                           "start of the data (must begin at 0)", path, name,
                           (unsigned long long)sp[i].begin);
        if (sp[i].begin > at)
            return gt_fail(err, "%s: tensor '%s': data_offsets begin at %llu, leaving a gap of "
                           "%llu bytes after tensor '%s' (ends at %llu)", path, name,
                           (unsigned long long)sp[i].begin, (unsigned long long)(sp[i].begin - at),
                           st->tensors[sp[i - 1].tensor].name, (unsigned long long)at);
        if (sp[i].begin < at)
            return gt_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' "
                           "(ends at %llu)", path, name, (unsigned long long)sp[i].begin,
                           (unsigned long long)sp[i].end, st->tensors[sp[i - 1].tensor].name,
                           (unsigned long long)at);
        at = sp[i].end;
    }
    *total = at;
    return 0;
}

/* Reads the 8-byte length and the header text; *json_text is malloc'ed, *n its length. */
static int read_header_text(const gt_st_file *f, uint64_t fsize, char **json_text, uint64_t *n,
                            gt_err *err) {
    unsigned char lenb[8];
    if (fsize < 8)
        return gt_fail(err, "%s: truncated: the file is %llu bytes, too short for the 8-byte "
                       "header length", f->path, (unsigned long long)fsize);
    if (gt_st_pread(f, lenb, 8, 0, "the header length", err)) return -1;
    *n = le64(lenb);
    if (*n > fsize - 8)
        return gt_fail(err, "%s: header length %llu runs past the end of the file (%llu bytes; "
                       "truncated or not a safetensors file)", f->path, (unsigned long long)*n,
                       (unsigned long long)fsize);
    if (*n > GT_ST_MAX_HEADER)
        return gt_fail(err, "%s: header length %llu is over the %llu-byte limit", f->path,
                       (unsigned long long)*n, GT_ST_MAX_HEADER);
    *json_text = gt_malloc((size_t)*n);
    if (gt_st_pread(f, *json_text, (size_t)*n, 8, "the header", err)) {
        free(*json_text);
        *json_text = NULL;
        return -1;
    }
    return 0;
}

/* Appends the tensors of root (the parsed header object) to st; their spans go to sp. */
static int parse_entries(gt_st *st, int file, const json_t *root, st_span *sp, int *nsp,
                         gt_err *err) {
    const char *path = st->files[file].path, *key;
    const json_t *v;
    *nsp = 0;
    json_object_foreach((json_t *)root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (check_metadata(v, path, err)) return -1;
            continue;
        }
        if (key[0] == '\0') return gt_fail(err, "%s: a tensor has an empty name", path);
        gt_st_tensor *t = &st->tensors[st->ntensors];
        memset(t, 0, sizeof *t);
        t->name = strdup(key);
        GT_ASSERT(t->name, "strdup failed");
        t->file = file;
        sp[*nsp].tensor = st->ntensors;
        st->ntensors++; /* complete enough for gt_st_close from here on */
        if (parse_entry(v, t, &sp[*nsp], path, err)) return -1;
        (*nsp)++;
    }
    return 0;
}

static int check_length(const gt_st_file *f, uint64_t fsize, uint64_t hlen, uint64_t total,
                        gt_err *err) {
    uint64_t want = 8 + hlen + total;
    if (total > UINT64_MAX - 8 - hlen || want > fsize)
        return gt_fail(err, "%s: truncated: the header declares %llu bytes of data (file length "
                       "%llu) but the file is %llu bytes", f->path, (unsigned long long)total,
                       (unsigned long long)(8 + hlen + total), (unsigned long long)fsize);
    if (want < fsize)
        return gt_fail(err, "%s: file longer than the header declares: %llu bytes after the end of "
                       "the last tensor (file is %llu bytes, expected %llu)", f->path,
                       (unsigned long long)(fsize - want), (unsigned long long)fsize,
                       (unsigned long long)want);
    return 0;
}

static int parse_header_json(gt_st *st, int file, const char *text, uint64_t hlen,
                             uint64_t fsize, gt_err *err) {
    const gt_st_file *f = &st->files[file];
    json_error_t jerr;
    json_t *root = json_loadb(text, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return gt_fail(err, "%s: header is not valid JSON: %s (line %d, column %d)", f->path,
                       jerr.text, jerr.line, jerr.column);
    int rc = -1;
    st_span *sp = NULL;
    if (!json_is_object(root)) {
        gt_fail(err, "%s: header is %s, not a JSON object", f->path, gt_json_kind(root));
        goto done;
    }
    size_t cap = json_object_size(root);
    gt_st_tensor *grown = realloc(st->tensors, (st->ntensors + cap + 1) * sizeof *grown);
    GT_ASSERT(grown, "out of host memory for %zu tensors", st->ntensors + cap);
    st->tensors = grown;
    sp = gt_malloc((cap + 1) * sizeof *sp);
    int n = 0;
    uint64_t total = 0, base = 8 + hlen;
    if (parse_entries(st, file, root, sp, &n, err) ||
        check_contiguous(st, sp, n, f->path, &total, err) ||
        check_length(f, fsize, hlen, total, err))
        goto done;
    for (int i = 0; i < n; i++) st->tensors[sp[i].tensor].offset = base + sp[i].begin;
    rc = 0;
done:
    free(sp);
    json_decref(root);
    return rc;
}

int gt_st_load_header(gt_st *st, int file, gt_err *err) {
    const gt_st_file *f = &st->files[file];
    struct stat sb;
    if (fstat(f->fd, &sb) != 0)
        return gt_fail(err, "%s: cannot stat: %s", f->path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return gt_fail(err, "%s: not a regular file", f->path);
    uint64_t fsize = (uint64_t)sb.st_size, hlen = 0;
    char *text = NULL;
    if (read_header_text(f, fsize, &text, &hlen, err)) return -1;
    int rc = parse_header_json(st, file, text, hlen, fsize, err);
    free(text);
    return rc;
}
