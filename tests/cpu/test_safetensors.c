/* safetensors: write -> open -> read round trips (every dtype, row/column blocks, a sharded
 * directory with an index) checked against the source values and against the file's bytes read
 * independently with stdio; and one case per kind of bad input, each of which must fail with -1
 * and a message naming the file and the problem. Files live in a fresh directory under /tmp. */
#include "model/safetensors.h"
#include "tests/cpu/check.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    gt_check c;
    char dir[64];
} ctx;

typedef struct {
    char s[256];
} path_buf;

static path_buf path_in(const ctx *x, const char *name) {
    path_buf p;
    snprintf(p.s, sizeof p.s, "%s/%s", x->dir, name);
    return p;
}

/* Asserts rc == -1 and that the message names the file and contains phrase. */
static void expect_fail(ctx *x, int rc, const gt_err *err, const char *file, const char *phrase,
                        const char *label) {
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    int ok = rc == -1 && strstr(err->msg, base) && strstr(err->msg, phrase);
    gt_check_true(&x->c, ok, "%s: rc %d, message '%s' (want '%s' and '%s')", label, rc, err->msg,
                  base, phrase);
    if (ok) printf("ok   %-30s %s\n", label, err->msg);
}

static void write_bytes(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* A file with the given header text (length prefix = its length) followed by ndata zero bytes. */
static void write_raw(const char *path, const char *header, size_t ndata) {
    size_t n = strlen(header);
    unsigned char *buf = calloc(8 + n + ndata + 1, 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    write_bytes(path, buf, 8 + n + ndata, NULL, 0);
    free(buf);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    b[*n] = 0;
    return b;
}

/* Source tensors of the round trip; values are exactly representable in their dtype, so a
 * correct reader returns them bit-exactly. */
enum { R = 5, C = 7, BR = 4, BC = 6, HR = 3, HC = 5, NE = 9 };
typedef struct {
    float f32[R * C], bf_val[BR * BC], h_val[HR * HC], d_val[2 * 3 * 4], scalar;
    uint16_t bf[BR * BC], h[HR * HC];
    double f64[2 * 3 * 4];
    int32_t i32[6];
    int64_t i64[4];
    uint8_t e4m3[16];
    gt_st_entry e[NE];
} source;

static void make_source(source *s) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < R * C; i++) s->f32[i] = (float)sin(0.37 * i) * 3.0f;
    for (int i = 0; i < BR * BC; i++) {
        s->bf_val[i] = (float)(i - 11) * 0.125f; /* k/8: exact in bf16 */
        uint32_t u;
        memcpy(&u, &s->bf_val[i], 4);
        s->bf[i] = (uint16_t)(u >> 16); /* exact values: truncation is the conversion */
    }
    for (int i = 0; i < HR * HC; i++) {
        s->h_val[i] = (float)(i - 7) * 0.25f;
        s->h[i] = gt_f32_to_f16(s->h_val[i]);
    }
    for (int i = 0; i < 24; i++) {
        s->f64[i] = (double)(i * 3 - 30) / 64.0;
        s->d_val[i] = (float)s->f64[i];
    }
    for (int i = 0; i < 6; i++) s->i32[i] = -3 + i * 1000003;
    for (int i = 0; i < 4; i++) s->i64[i] = (int64_t)1 << (40 + i);
    for (int i = 0; i < 16; i++) s->e4m3[i] = (uint8_t)(i * 17);
    s->scalar = 2.5f;
    gt_st_entry e[NE] = {
        {"model.a", GT_F32, 2, {R, C}, s->f32},  {"b.bf16", GT_BF16, 2, {BR, BC}, s->bf},
        {"c.f16", GT_F16, 2, {HR, HC}, s->h},    {"d.f64", GT_F64, 3, {2, 3, 4}, s->f64},
        {"e.i32", GT_I32, 1, {6}, s->i32},       {"f.i64", GT_I64, 2, {2, 2}, s->i64},
        {"g.scalar", GT_F32, 0, {0}, &s->scalar}, {"h.e4m3", GT_E4M3, 1, {16}, s->e4m3},
        {"z.empty", GT_F32, 2, {0, 4}, NULL},
    };
    memcpy(s->e, e, sizeof e);
}

/* The file's bytes, read with stdio: length prefix, padding, metadata and data placement. */
static void check_file_bytes(ctx *x, const char *path, const source *s) {
    size_t n = 0;
    unsigned char *b = slurp(path, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | b[i];
    size_t data = 4 * R * C + 2 * BR * BC + 2 * HR * HC + 8 * 24 + 4 * 6 + 8 * 4 + 4 + 16;
    gt_check_true(&x->c, hl % 8 == 0, "header length %llu not a multiple of 8",
                  (unsigned long long)hl);
    gt_check_true(&x->c, n == 8 + hl + data, "file size %zu, want %llu", n,
                  (unsigned long long)(8 + hl + data));
    const char *md = "\"__metadata__\":{\"format\":\"pt\"}";
    gt_check_true(&x->c, b[8] == '{' && strstr((char *)b + 8, md),
                  "header lacks __metadata__ {format: pt}");
    const unsigned char *d = b + 8 + hl;
    gt_check_true(&x->c, !memcmp(d, s->f32, sizeof s->f32), "F32 bytes misplaced");
    d += sizeof s->f32;
    gt_check_true(&x->c, !memcmp(d, s->bf, sizeof s->bf), "BF16 bytes misplaced");
    d += sizeof s->bf + sizeof s->h + sizeof s->f64;
    gt_check_true(&x->c, !memcmp(d, s->i32, sizeof s->i32), "I32 bytes misplaced");
    free(b);
}

static void check_read(ctx *x, const gt_st *st, const char *name, int64_t r0, int64_t nr,
                       int64_t c0, int64_t nc, const float *src, int64_t width) {
    gt_err err = {{0}};
    const gt_st_tensor *t = gt_st_find(st, name);
    float *got = calloc((size_t)(nr * nc + 1), sizeof *got);
    int rc = t ? gt_st_read_f32(st, t, r0, nr, c0, nc, got, &err) : -1;
    int same = rc == 0;
    for (int64_t i = 0; same && i < nr; i++)
        for (int64_t j = 0; same && j < nc; j++)
            same = got[i * nc + j] == src[(r0 + i) * width + c0 + j];
    gt_check_true(&x->c, same, "%s [%lld:+%lld, %lld:+%lld]: rc %d %s", name, (long long)r0,
                  (long long)nr, (long long)c0, (long long)nc, rc, err.msg);
    free(got);
}

static void test_round_trip(ctx *x) {
    static source s;
    make_source(&s);
    gt_err err = {{0}};
    path_buf pb = path_in(x, "model.safetensors");
    const char *p = pb.s;
    gt_check_true(&x->c, gt_st_write(p, s.e, NE, &err) == 0, "write: %s", err.msg);
    check_file_bytes(x, p, &s);
    gt_st st;
    int rc = gt_st_open(&st, x->dir, &err); /* the directory: finds model.safetensors */
    if (!gt_check_true(&x->c, rc == 0, "open: %s", err.msg)) return;
    gt_check_true(&x->c, st.ntensors == NE && st.nfiles == 1, "ntensors %d", st.ntensors);
    const gt_st_tensor *t = gt_st_find(&st, "d.f64");
    gt_check_true(&x->c, t && t->dtype == GT_F64 && t->ndim == 3 && t->shape[2] == 4 &&
                  t->numel == 24, "d.f64 metadata");
    check_read(x, &st, "model.a", 0, R, 0, C, s.f32, C);
    check_read(x, &st, "model.a", 1, 3, 0, C, s.f32, C);  /* whole rows: one span */
    check_read(x, &st, "model.a", 1, 3, 2, 3, s.f32, C);  /* a column block: per-row reads */
    check_read(x, &st, "model.a", 4, 1, 6, 1, s.f32, C);  /* last element */
    check_read(x, &st, "b.bf16", 0, BR, 0, BC, s.bf_val, BC);
    check_read(x, &st, "b.bf16", 1, 2, 3, 3, s.bf_val, BC);
    check_read(x, &st, "c.f16", 0, HR, 0, HC, s.h_val, HC);
    check_read(x, &st, "c.f16", 2, 1, 1, 4, s.h_val, HC);
    check_read(x, &st, "d.f64", 1, 1, 5, 7, s.d_val, 12); /* 3-D viewed as [2, 12] */
    check_read(x, &st, "g.scalar", 0, 1, 0, 1, &s.scalar, 1);
    check_read(x, &st, "z.empty", 0, 0, 0, 4, s.f32, 4);
    int32_t i32[6];
    int64_t i64[4];
    uint8_t e8[16];
    rc = gt_st_read_raw(&st, gt_st_find(&st, "e.i32"), i32, &err) ||
         gt_st_read_raw(&st, gt_st_find(&st, "f.i64"), i64, &err) ||
         gt_st_read_raw(&st, gt_st_find(&st, "h.e4m3"), e8, &err);
    gt_check_true(&x->c, rc == 0 && !memcmp(i32, s.i32, sizeof i32) &&
                  !memcmp(i64, s.i64, sizeof i64) && !memcmp(e8, s.e4m3, sizeof e8),
                  "raw reads: %s", err.msg);
    float dummy[64];
    expect_fail(x, gt_st_read_f32(&st, gt_st_find(&st, "model.a"), 3, 3, 0, C, dummy, &err), &err,
                p, "out of bounds", "rows out of bounds");
    expect_fail(x, gt_st_read_f32(&st, gt_st_find(&st, "model.a"), 0, 1, 5, 3, dummy, &err), &err,
                p, "out of bounds", "columns out of bounds");
    expect_fail(x, gt_st_read_f32(&st, gt_st_find(&st, "e.i32"), 0, 1, 0, 6, dummy, &err), &err,
                p, "cannot be read as float", "I32 read as float");
    const gt_st_tensor *out;
    int64_t shp[2] = {R, C}, bad[2] = {C, R};
    gt_check_true(&x->c, gt_st_expect(&st, "model.a", 2, shp, &out, &err) == 0 && out,
                  "expect model.a: %s", err.msg);
    expect_fail(x, gt_st_expect(&st, "model.b", 2, shp, &out, &err), &err, x->dir, "not found",
                "expect: missing tensor");
    expect_fail(x, gt_st_expect(&st, "model.a", 2, bad, &out, &err), &err, p,
                "has shape [5, 7], expected [7, 5]", "expect: wrong shape");
    gt_st_close(&st);
}

/* A BF16 tensor bigger than the 8 MiB staging buffer: several preads per span. */
static void test_large(ctx *x) {
    enum { LR = 2500, LC = 2000 };
    uint16_t *bf = malloc((size_t)LR * LC * 2);
    float *val = malloc((size_t)LR * LC * 4);
    for (size_t i = 0; i < (size_t)LR * LC; i++) {
        val[i] = (float)((int)(i % 509) - 254) * 0.5f;
        bf[i] = gt_f32_to_bf16(val[i]);
    }
    gt_st_entry e = {"big", GT_BF16, 2, {LR, LC}, bf};
    gt_err err = {{0}};
    path_buf pb = path_in(x, "big.safetensors");
    const char *p = pb.s;
    gt_st st;
    if (gt_check_true(&x->c, gt_st_write(p, &e, 1, &err) == 0 && gt_st_open(&st, p, &err) == 0,
                      "big: %s", err.msg)) {
        check_read(x, &st, "big", 0, LR, 0, LC, val, LC);
        check_read(x, &st, "big", 1000, 1500, 0, LC, val, LC);
        check_read(x, &st, "big", 7, 100, 1000, 1000, val, LC);
        gt_st_close(&st);
    }
    unlink(p);
    free(bf);
    free(val);
}

static void write_index(const char *path, const char *body) {
    write_bytes(path, body, strlen(body), NULL, 0);
}

static void test_sharded(ctx *x) {
    gt_err err = {{0}};
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {-1, -2, -3}, c[4] = {9, 8, 7, 6};
    gt_st_entry s1[2] = {{"w.a", GT_F32, 2, {2, 3}, a}, {"w.b", GT_F32, 1, {3}, b}};
    gt_st_entry s2[1] = {{"w.c", GT_F32, 2, {2, 2}, c}};
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sharded", x->dir);
    mkdir(sub, 0755);
    char p1[200], p2[200], idx[200];
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", sub);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", sub);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", sub);
    gt_st_write(p1, s1, 2, &err);
    gt_st_write(p2, s2, 1, &err);
    write_index(idx, "{\"metadata\": {\"total_size\": 52}, \"weight_map\": {"
                     "\"w.a\": \"model-00001-of-00002.safetensors\", "
                     "\"w.c\": \"model-00002-of-00002.safetensors\", "
                     "\"w.b\": \"model-00001-of-00002.safetensors\"}}");
    const char *opens[2] = {sub, idx};
    for (int k = 0; k < 2; k++) {
        gt_st st;
        if (!gt_check_true(&x->c, gt_st_open(&st, opens[k], &err) == 0, "sharded open %s: %s",
                           opens[k], err.msg))
            continue;
        gt_check_true(&x->c, st.nfiles == 2 && st.ntensors == 3, "sharded: %d files %d tensors",
                      st.nfiles, st.ntensors);
        const gt_st_tensor *ta = gt_st_find(&st, "w.a"), *tc = gt_st_find(&st, "w.c");
        gt_check_true(&x->c, ta && tc && ta->file != tc->file &&
                      strstr(st.files[tc->file].path, "00002"), "sharded: files of tensors");
        check_read(x, &st, "w.a", 1, 1, 0, 3, a, 3);
        check_read(x, &st, "w.b", 0, 1, 0, 3, b, 3);
        check_read(x, &st, "w.c", 0, 2, 1, 1, c, 2);
        gt_st_close(&st);
    }
    /* index naming a shard that does not exist */
    write_index(idx, "{\"weight_map\": {\"w.a\": \"model-00001-of-00002.safetensors\", "
                     "\"w.c\": \"model-00003-of-00003.safetensors\"}}");
    gt_st st;
    expect_fail(x, gt_st_open(&st, sub, &err), &err, "model.safetensors.index.json",
                "model-00003-of-00003.safetensors' (for tensor 'w.c') which does not exist",
                "index: missing shard");
    /* listed in weight_map but absent from its shard */
    write_index(idx, "{\"weight_map\": {\"w.a\": \"model-00001-of-00002.safetensors\", "
                     "\"w.b\": \"model-00001-of-00002.safetensors\", "
                     "\"w.c\": \"model-00002-of-00002.safetensors\", "
                     "\"w.d\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail(x, gt_st_open(&st, sub, &err), &err, "model.safetensors.index.json",
                "'w.d' is listed in weight_map under 'model-00002-of-00002.safetensors' but is not "
                "in that shard", "index: tensor absent from shard");
    /* a tensor of a shard not listed */
    write_index(idx, "{\"weight_map\": {\"w.a\": \"model-00001-of-00002.safetensors\", "
                     "\"w.c\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail(x, gt_st_open(&st, sub, &err), &err, "model-00001-of-00002.safetensors",
                "'w.b' is not listed in the weight_map", "index: unlisted tensor");
    /* the same name in two shards */
    gt_st_entry dup[1] = {{"w.a", GT_F32, 2, {2, 2}, c}};
    gt_st_write(p2, dup, 1, &err);
    write_index(idx, "{\"weight_map\": {\"w.a\": \"model-00001-of-00002.safetensors\", "
                     "\"w.b\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail(x, gt_st_open(&st, sub, &err), &err, "model-00002-of-00002.safetensors",
                "duplicate", "index: duplicate across shards");
    write_index(idx, "{\"weight_map\": {\"w.a\": \"../model.safetensors\"}}");
    expect_fail(x, gt_st_open(&st, idx, &err), &err, "model.safetensors.index.json",
                "not a plain shard file name", "index: path outside the directory");
    write_index(idx, "{\"weight_map\": {\"w.a\": \"model-00001");
    expect_fail(x, gt_st_open(&st, idx, &err), &err, "model.safetensors.index.json",
                "not valid JSON", "index: not JSON");
    gt_check_true(&x->c, st.ntensors == 0 && st.files == NULL, "failed open leaves st closed");
}

/* Hand-made headers: one per rule of the format. */
static void test_bad_headers(ctx *x) {
    gt_err err = {{0}};
    gt_st st;
    path_buf pb = path_in(x, "bad.safetensors");
    const char *p = pb.s;
    static const struct {
        const char *label, *header, *phrase;
        size_t ndata;
    } cases[] = {
        {"header not JSON", "{\"a\": {\"dtype\": \"F32\",", "header is not valid JSON", 0},
        {"header not an object", "[1, 2]", "not a JSON object", 0},
        {"offsets with a gap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         "tensor 'b': data_offsets begin at 8, leaving a gap of 4 bytes after tensor 'a'", 12},
        {"gap at the start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         "gap at the start", 8},
        {"offsets overlapping",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         "tensor 'b': data_offsets [4, 12] overlap tensor 'a'", 12},
        {"size not matching shape",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
         "tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12", 8},
        {"unknown dtype", "{\"a\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,2]}}",
         "tensor 'a': unknown dtype 'Q4_K'", 2},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}",
         "shape[0] is not a non-negative integer", 0},
        {"end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}",
         "end before they begin", 4},
        {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "no 'data_offsets'",
         4},
        {"unknown key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
         "unknown key 'x'", 4},
        {"metadata not strings", "{\"__metadata__\":{\"format\":1}}", "__metadata__ value of "
         "'format' is an integer", 0},
        {"file longer than declared",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         "file longer than the header declares: 3 bytes after", 7},
        {"data truncated", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         "truncated", 5},
        {"duplicate key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", "duplicate", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw(p, cases[i].header, cases[i].ndata);
        expect_fail(x, gt_st_open(&st, p, &err), &err, p, cases[i].phrase, cases[i].label);
    }
    /* a header length running past the end of the file */
    unsigned char len[8] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0};
    write_bytes(p, len, 8, "{\"a\":1}", 7);
    expect_fail(x, gt_st_open(&st, p, &err), &err, p, "header length 1000 runs past the end",
                "header length past the end");
    write_bytes(p, len, 5, NULL, 0);
    expect_fail(x, gt_st_open(&st, p, &err), &err, p, "truncated: the file is 5 bytes",
                "shorter than 8 bytes");
    /* a good file cut short */
    float v[4] = {1, 2, 3, 4};
    gt_st_entry e = {"v", GT_F32, 1, {4}, v};
    gt_st_write(p, &e, 1, &err);
    struct stat sb;
    stat(p, &sb);
    if (truncate(p, sb.st_size - 3) != 0) gt_check_true(&x->c, 0, "truncate failed");
    expect_fail(x, gt_st_open(&st, p, &err), &err, p, "truncated", "truncated file");
    path_buf nothing = path_in(x, "nothing");
    expect_fail(x, gt_st_open(&st, nothing.s, &err), &err, "nothing", "cannot open",
                "missing file");
    char empty[128];
    snprintf(empty, sizeof empty, "%s/emptydir", x->dir);
    mkdir(empty, 0755);
    expect_fail(x, gt_st_open(&st, empty, &err), &err, "emptydir",
                "neither model.safetensors nor", "directory without a model");
}

static void test_write_errors(ctx *x) {
    gt_err err = {{0}};
    float v[2] = {1, 2};
    gt_st_entry e[2] = {{"v", GT_F32, 1, {2}, v}, {"v", GT_F32, 1, {2}, v}};
    path_buf pb = path_in(x, "dup.safetensors");
    const char *p = pb.s;
    expect_fail(x, gt_st_write(p, e, 2, &err), &err, p, "'v' is given twice", "write: duplicate");
    gt_check_true(&x->c, access(p, F_OK) != 0, "a failed write left %s", p);
    e[1].name = "w";
    e[1].data = NULL;
    expect_fail(x, gt_st_write(p, e, 2, &err), &err, p, "has no data", "write: no data");
    expect_fail(x, gt_st_write("/nonexistent-dir/x.safetensors", e, 1, &err), &err,
                "x.safetensors", "cannot create", "write: bad directory");
    /* gt_st_header agrees with the file gt_st_write makes */
    e[1].data = v;
    void *hdr = NULL;
    size_t hn = 0;
    uint64_t offs[2] = {0}, fsize = 0;
    int rc = gt_st_header("mem", e, 2, &hdr, &hn, offs, &fsize, &err);
    gt_check_true(&x->c, rc == 0 && hn % 8 == 0 && offs[0] == hn && offs[1] == hn + 8 &&
                  fsize == hn + 16, "gt_st_header: rc %d hn %zu offs %llu %llu", rc, hn,
                  (unsigned long long)offs[0], (unsigned long long)offs[1]);
    free(hdr);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(void) {
    ctx x;
    memset(&x, 0, sizeof x);
    snprintf(x.dir, sizeof x.dir, "/tmp/gt_test_st_XXXXXX");
    if (!mkdtemp(x.dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_round_trip(&x);
    test_large(&x);
    test_sharded(&x);
    test_bad_headers(&x);
    test_write_errors(&x);
    nftw(x.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return gt_check_done(&x.c, "test_safetensors");
}
