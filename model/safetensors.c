/* Opening a model's safetensors: a directory (model.safetensors, else
 * model.safetensors.index.json), an index file, or one .safetensors file. The index is
 * {"metadata": {...}, "weight_map": {tensor name: shard file name}}; shards live next to it. */
#include "safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dup_str(const char *s) {
    char *d = strdup(s);
    GT_ASSERT(d, "strdup failed");
    return d;
}

/* dir + "/" + name, malloc'ed. */
static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = gt_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The directory part of path ("." if none), malloc'ed. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_str(".");
    if (slash == path) return dup_str("/");
    size_t n = (size_t)(slash - path);
    char *d = gt_malloc(n + 1);
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Opens path read-only and appends it to st->files; returns its index or -1. */
static int add_file(gt_st *st, const char *path, gt_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    gt_st_file *grown = realloc(st->files, (size_t)(st->nfiles + 1) * sizeof *grown);
    GT_ASSERT(grown, "out of host memory");
    st->files = grown;
    st->files[st->nfiles].path = dup_str(path);
    st->files[st->nfiles].fd = fd;
    return st->nfiles++;
}

static int open_single(gt_st *st, const char *path, gt_err *err) {
    int fi = add_file(st, path, err);
    return fi < 0 ? -1 : gt_st_load_header(st, fi, err);
}

static int tensor_cmp(const void *a, const void *b) {
    const gt_st_tensor *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->file - y->file;
}

/* Sorts by name (gt_st_find bisects) and rejects a name stored twice (in two shards). */
static int sort_and_check_unique(gt_st *st, gt_err *err) {
    if (st->ntensors > 1) qsort(st->tensors, (size_t)st->ntensors, sizeof *st->tensors, tensor_cmp);
    for (int i = 1; i < st->ntensors; i++) {
        const gt_st_tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        if (strcmp(a->name, b->name) == 0)
            return gt_fail(err, "%s: tensor '%s' is stored twice: duplicate in %s and %s", st->path,
                           a->name, st->files[a->file].path, st->files[b->file].path);
    }
    return 0;
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct shard names of weight_map, sorted; *n set. Checks each is a plain string file name
 * (no directory part, so an index cannot point outside its directory). */
static const char **shard_names(const json_t *wm, const char *ipath, int *n, gt_err *err) {
    const char **names = gt_malloc((json_object_size(wm) + 1) * sizeof *names);
    const char *key;
    const json_t *v;
    int k = 0;
    json_object_foreach((json_t *)wm, key, v) {
        const char *s = json_string_value(v);
        if (!s || !*s || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, "..")) {
            gt_fail(err, "%s: weight_map entry of tensor '%s' is not a plain shard file name",
                    ipath, key);
            free(names);
            return NULL;
        }
        names[k++] = s;
    }
    qsort(names, (size_t)k, sizeof *names, str_cmp);
    int u = 0;
    for (int i = 0; i < k; i++) {
        if (u == 0 || strcmp(names[u - 1], names[i])) names[u++] = names[i];
    }
    *n = u;
    return names;
}

/* Opens each shard (in name order) and loads its header. File index = first + position. */
static int open_shards(gt_st *st, const char *ipath, const json_t *wm, const char **names, int n,
                       gt_err *err) {
    char *dir = dir_of(ipath);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *p = join_path(dir, names[i]);
        struct stat sb;
        if (stat(p, &sb) != 0) {
            const char *who = "?", *key;
            const json_t *v;
            json_object_foreach((json_t *)wm, key, v) {
                if (!strcmp(json_string_value(v), names[i])) {
                    who = key;
                    break;
                }
            }
            rc = gt_fail(err, "%s: weight_map names shard '%s' (for tensor '%s') which does not "
                         "exist: %s: %s", ipath, names[i], who, p, strerror(errno));
        } else {
            int fi = add_file(st, p, err);
            rc = fi < 0 ? -1 : gt_st_load_header(st, fi, err);
        }
        free(p);
    }
    free(dir);
    return rc;
}

/* Every weight_map entry is in its named shard, and every stored tensor is listed. */
static int check_weight_map(const gt_st *st, const char *ipath, const json_t *wm, int first,
                            const char **names, gt_err *err) {
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        const char *shard = json_string_value(v);
        const gt_st_tensor *t = gt_st_find(st, key);
        if (!t)
            return gt_fail(err, "%s: tensor '%s' is listed in weight_map under '%s' but is not in "
                           "that shard (missing)", ipath, key, shard);
        const char *holder = names[t->file - first];
        if (strcmp(holder, shard))
            return gt_fail(err, "%s: tensor '%s' is listed in weight_map under '%s' but is stored "
                           "in '%s'", ipath, key, shard, holder);
    }
    for (int i = 0; i < st->ntensors; i++) {
        if (!json_object_get(wm, st->tensors[i].name))
            return gt_fail(err, "%s: tensor '%s' is not listed in the weight_map of %s",
                           st->files[st->tensors[i].file].path, st->tensors[i].name, ipath);
    }
    return 0;
}

static int open_index(gt_st *st, const char *ipath, gt_err *err) {
    json_error_t jerr;
    struct stat sb;
    if (stat(ipath, &sb) != 0) return gt_fail(err, "%s: cannot open: %s", ipath, strerror(errno));
    json_t *root = json_load_file(ipath, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return gt_fail(err, "%s: not valid JSON: %s (line %d, column %d)", ipath, jerr.text,
                       jerr.line, jerr.column);
    int rc = -1, n = 0, first = st->nfiles;
    const char **names = NULL;
    const json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(root) || !json_is_object(wm) || json_object_size(wm) == 0) {
        gt_fail(err, "%s: no non-empty 'weight_map' object (not a safetensors index)", ipath);
        goto done;
    }
    names = shard_names(wm, ipath, &n, err);
    if (names && open_shards(st, ipath, wm, names, n, err) == 0 &&
        sort_and_check_unique(st, err) == 0 &&
        check_weight_map(st, ipath, wm, first, names, err) == 0)
        rc = 0;
done:
    free(names);
    json_decref(root);
    return rc;
}

static int open_path(gt_st *st, const char *path, gt_err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return gt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        if (ends_with(path, ".index.json")) return open_index(st, path, err);
        return open_single(st, path, err) || sort_and_check_unique(st, err) ? -1 : 0;
    }
    char *single = join_path(path, "model.safetensors");
    char *index = join_path(path, "model.safetensors.index.json");
    int rc;
    if (stat(single, &sb) == 0) rc = open_single(st, single, err) || sort_and_check_unique(st, err);
    else if (stat(index, &sb) == 0) rc = open_index(st, index, err);
    else rc = gt_fail(err, "%s: directory has neither model.safetensors nor "
                      "model.safetensors.index.json", path);
    free(single);
    free(index);
    return rc ? -1 : 0;
}

int gt_st_open(gt_st *st, const char *path, gt_err *err) {
    memset(st, 0, sizeof *st);
    st->path = dup_str(path);
    if (open_path(st, path, err) == 0) return 0;
    gt_st_close(st);
    return -1;
}

void gt_st_close(gt_st *st) {
    for (int i = 0; i < st->nfiles; i++) {
        close(st->files[i].fd);
        free(st->files[i].path);
    }
    for (int i = 0; i < st->ntensors; i++) free(st->tensors[i].name);
    free(st->files);
    free(st->tensors);
    free(st->path);
    memset(st, 0, sizeof *st);
}

static int find_cmp(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const gt_st_tensor *)elem)->name);
}

const gt_st_tensor *gt_st_find(const gt_st *st, const char *name) {
    if (st->ntensors == 0) return NULL;
    return bsearch(name, st->tensors, (size_t)st->ntensors, sizeof *st->tensors, find_cmp);
}

int gt_st_expect(const gt_st *st, const char *name, int ndim, const int64_t *shape,
                 const gt_st_tensor **out, gt_err *err) {
    const gt_st_tensor *t = gt_st_find(st, name);
    if (out) *out = t;
    if (!t) return gt_fail(err, "%s: tensor '%s' not found (missing)", st->path, name);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char have[160], want[160];
        gt_st_shape_str(have, sizeof have, t->ndim, t->shape);
        gt_st_shape_str(want, sizeof want, ndim, shape);
        if (out) *out = NULL;
        return gt_fail(err, "%s: tensor '%s' has shape %s, expected %s (wrong shape)",
                       st->files[t->file].path, name, have, want);
    }
    return 0;
}
