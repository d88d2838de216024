/* checksums.json: the CRC32C of every file of a checkpoint, written at save time beside them, and
 * its check (checkpoint.h, docs/checkpoints.md).
 *
 * {"format": "gemmatron-checksums", "version": 1, "algorithm": "crc32c",
 *  "step": 500, "optimizer": {"step": 500, "skipped": 0},
 *  "files": [{"name": "model.safetensors", "bytes": 123, "crc32c": "e3069283"}, ...]}
 *
 * The large files are written by several ranks, slice by slice: once every rank's writes are on
 * disk, each rank reads an equal byte range of every file back, and the range CRCs are joined in
 * order (gt_crc32c_combine), so the cost is one parallel re-read of data still in the page cache.
 * The small files (config.json, trainer_state.json, ...) are summed by rank 0 as it writes them.
 * The step and optimizer counters repeat trainer_state.json's: an edited step is told apart from
 * other corruption. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/crc32c.h"
#include "ckpt_internal.h"

#define WINDOW ((uint64_t)256 << 20)
#define SUMS_FORMAT "gemmatron-checksums"

static int agree(gt_grid *g, int rc, gt_err *err) { return g ? ck_agree(g, rc, err) : (rc ? -1 : 0); }

/* CRC32C of bytes [lo, hi) of dir/name, through windows mapped from the page cache (no copy:
 * about twice as fast as pread into a buffer). */
static int crc_range(const char *dir, const char *name, uint64_t lo, uint64_t hi, uint32_t *crc, gt_err *err) {
    char path[GT_CKPT_PATH];
    *crc = 0;
    if (lo >= hi) return 0;
    if (gt_path_join(path, sizeof path, dir, name, err)) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pg = page > 0 ? (uint64_t)page : 4096;
    int rc = 0;
    for (uint64_t at = lo; at < hi && rc == 0;) {
        uint64_t base = at / pg * pg, n = hi - at < WINDOW ? hi - at : WINDOW;
        size_t maplen = (size_t)(at - base + n);
        void *p = mmap(NULL, maplen, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)base);
        if (p == MAP_FAILED) {
            rc = gt_fail(err, "%s: cannot map bytes %llu..%llu to check them: %s", path, (unsigned long long)at,
                         (unsigned long long)(at + n), strerror(errno));
            break;
        }
        *crc = gt_crc32c(*crc, (const unsigned char *)p + (at - base), (size_t)n);
        if (munmap(p, maplen) != 0) rc = gt_fail(err, "%s: munmap: %s", path, strerror(errno));
        at += n;
    }
    if (close(fd) != 0 && rc == 0) rc = gt_fail(err, "%s: close: %s", path, strerror(errno));
    return rc;
}

int ck_sums_compute(gt_grid *g, const char *dir, const ck_file_size *files, int n, uint32_t *crcs, gt_err *err) {
    int size = g && g->world.size > 1 && g->world.mpi != MPI_COMM_NULL ? g->world.size : 1;
    int rank = size > 1 ? g->world.rank : 0;
    uint32_t *mine = gt_calloc((size_t)n + 1, sizeof *mine);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        uint64_t s = files[i].bytes;
        rc = crc_range(dir, files[i].name, s * (uint64_t)rank / (uint64_t)size, s * (uint64_t)(rank + 1) / (uint64_t)size,
                       &mine[i], err);
    }
    rc = agree(size > 1 ? g : NULL, rc, err);
    if (rc == 0 && size == 1) memcpy(crcs, mine, (size_t)n * sizeof *crcs);
    if (rc == 0 && size > 1) {
        uint32_t *all = gt_calloc((size_t)n * (size_t)size + 1, sizeof *all);
        MPI_CHECK(MPI_Allgather(mine, n, MPI_UINT32_T, all, n, MPI_UINT32_T, g->world.mpi));
        for (int i = 0; i < n; i++) {
            uint64_t s = files[i].bytes;
            uint32_t c = 0;
            for (int r = 0; r < size; r++)
                c = gt_crc32c_combine(c, all[(size_t)r * (size_t)n + (size_t)i],
                                      s * (uint64_t)(r + 1) / (uint64_t)size - s * (uint64_t)r / (uint64_t)size);
            crcs[i] = c;
        }
        free(all);
    }
    free(mine);
    return rc;
}

int ck_sums_write(const char *dir, const gt_ckpt_state *st, const ck_file_size *files, const uint32_t *crcs, int n,
                  gt_err *err) {
    json_t *o = json_object(), *a = json_array();
    GT_ASSERT(o && a, "jansson: out of memory");
    for (int i = 0; i < n; i++) {
        char hex[16];
        snprintf(hex, sizeof hex, "%08x", crcs[i]);
        json_t *f = json_pack("{s:s, s:I, s:s}", "name", files[i].name, "bytes", (json_int_t)files[i].bytes, "crc32c", hex);
        GT_ASSERT(f && json_array_append_new(a, f) == 0, "jansson: out of memory");
    }
    json_t *opt = json_pack("{s:i, s:i}", "step", st->opt_step, "skipped", st->opt_skipped);
    GT_ASSERT(opt, "jansson: out of memory");
    GT_ASSERT(json_object_set_new(o, "format", json_string(SUMS_FORMAT)) == 0 &&
                  json_object_set_new(o, "version", json_integer(1)) == 0 &&
                  json_object_set_new(o, "algorithm", json_string("crc32c")) == 0 &&
                  json_object_set_new(o, "step", json_integer(st->step)) == 0 &&
                  json_object_set_new(o, "optimizer", opt) == 0 && json_object_set_new(o, "files", a) == 0,
              "jansson: out of memory");
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    GT_ASSERT(text, "jansson: json_dumps failed");
    char path[GT_CKPT_PATH];
    int rc = gt_path_join(path, sizeof path, dir, CK_SUMS_FILE, err);
    if (rc == 0) rc = gt_write_text(path, text, err);
    free(text);
    return rc;
}

/* ---- checking ---- */

typedef struct {
    long long step;
    int opt_step, opt_skipped;
    ck_file_size *files;
    uint32_t *crcs;
    int n;
} sums;

static int parse_sums(const char *path, sums *s, gt_err *err) {
    char *text;
    memset(s, 0, sizeof *s);
    if (gt_read_text(path, &text, err)) return -1;
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    free(text);
    if (!root) return gt_fail(err, "%s: CORRUPT: not valid JSON: line %d: %s", path, je.line, je.text);
    json_t *fmt = json_object_get(root, "format"), *alg = json_object_get(root, "algorithm");
    json_t *step = json_object_get(root, "step"), *opt = json_object_get(root, "optimizer");
    json_t *os = json_object_get(opt, "step"), *ok = json_object_get(opt, "skipped");
    json_t *a = json_object_get(root, "files");
    int rc = 0;
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), SUMS_FORMAT) || !json_is_string(alg) ||
        strcmp(json_string_value(alg), "crc32c") || !json_is_integer(step) || !json_is_integer(os) ||
        !json_is_integer(ok) || !json_is_array(a))
        rc = gt_fail(err, "%s: CORRUPT: not a gemmatron checksum list (format, algorithm crc32c, step, optimizer, files)",
                     path);
    size_t count = rc ? 0 : json_array_size(a);
    s->files = gt_calloc(count + 1, sizeof *s->files);
    s->crcs = gt_calloc(count + 1, sizeof *s->crcs);
    if (rc == 0) {
        s->step = (long long)json_integer_value(step);
        s->opt_step = (int)json_integer_value(os);
        s->opt_skipped = (int)json_integer_value(ok);
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        json_t *f = json_array_get(a, i), *nm = json_object_get(f, "name"), *by = json_object_get(f, "bytes");
        json_t *cr = json_object_get(f, "crc32c");
        const char *name = json_is_string(nm) ? json_string_value(nm) : "";
        char *end = NULL;
        unsigned long v = json_is_string(cr) ? strtoul(json_string_value(cr), &end, 16) : 0;
        if (!name[0] || strchr(name, '/') || strlen(name) >= sizeof s->files[0].name || !json_is_integer(by) ||
            json_integer_value(by) < 0 || !end || *end || strlen(json_string_value(cr)) != 8) {
            rc = gt_fail(err, "%s: CORRUPT: files[%zu] is not {\"name\", \"bytes\", \"crc32c\": 8 hex digits}", path, i);
            break;
        }
        snprintf(s->files[s->n].name, sizeof s->files[0].name, "%s", name);
        s->files[s->n].bytes = (uint64_t)json_integer_value(by);
        s->crcs[s->n++] = (uint32_t)v;
    }
    json_decref(root);
    return rc;
}

/* The files a --weights-only export reads: the model's own. */
static int weight_file(const char *name) {
    return !strncmp(name, "model", 5) || !strcmp(name, "config.json");
}

/* trainer_state.json's counters against those recorded with the checksums. */
static int check_step(const char *dir, const sums *s, gt_err *err) {
    char path[GT_CKPT_PATH];
    gt_ckpt_state st;
    if (gt_path_join(path, sizeof path, dir, "trainer_state.json", err) || ck_state_load(path, &st, NULL, NULL, NULL, err))
        return -1;
    int rc = 0;
    if (st.step != s->step || st.opt_step != s->opt_step || st.opt_skipped != s->opt_skipped)
        rc = gt_fail(err, "%s: CORRUPT: step %lld (optimizer step %d, %d skipped), but the checkpoint was saved at step "
                          "%lld with the optimizer state at step %d (%d skipped) (%s): trainer_state.json was edited or "
                          "damaged; it must not be changed by hand",
                     path, st.step, st.opt_step, st.opt_skipped, s->step, s->opt_step, s->opt_skipped, CK_SUMS_FILE);
    gt_ckpt_state_free(&st);
    return rc;
}

int ck_sums_verify(gt_grid *g, const char *dir, int weights_only, int *had, gt_err *err) {
    char path[GT_CKPT_PATH];
    struct stat sb;
    *had = 0;
    if (gt_path_join(path, sizeof path, dir, CK_SUMS_FILE, err)) return -1;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) return 0;
        return gt_fail(err, "%s: %s", path, strerror(errno));
    }
    *had = 1;
    sums s;
    int rc = parse_sums(path, &s, err);
    if (rc == 0 && !weights_only) rc = check_step(dir, &s, err);
    int m = 0;
    for (int i = 0; i < s.n && rc == 0; i++) {
        if (weights_only && !weight_file(s.files[i].name)) continue;
        char fp[GT_CKPT_PATH];
        if ((rc = gt_path_join(fp, sizeof fp, dir, s.files[i].name, err))) break;
        if (stat(fp, &sb) != 0)
            rc = gt_fail(err, "%s: missing (%s): the checkpoint is incomplete", fp, strerror(errno));
        else if ((uint64_t)sb.st_size != s.files[i].bytes)
            rc = gt_fail(err, "%s: CORRUPT: %lld bytes, %llu when it was saved", fp, (long long)sb.st_size,
                         (unsigned long long)s.files[i].bytes);
        s.files[m] = s.files[i];
        s.crcs[m++] = s.crcs[i];
    }
    rc = agree(g, rc, err);
    uint32_t *got = gt_calloc((size_t)m + 1, sizeof *got);
    if (rc == 0) rc = ck_sums_compute(g, dir, s.files, m, got, err);
    for (int i = 0; i < m && rc == 0; i++)
        if (got[i] != s.crcs[i])
            rc = gt_fail(err, "%s/%s: CORRUPT: its content checksum (CRC32C) is %08x, %08x when it was saved", dir,
                         s.files[i].name, got[i], s.crcs[i]);
    free(got);
    free(s.files);
    free(s.crcs);
    return rc;
}
