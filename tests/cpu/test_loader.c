/* The data loader (data/loader.h) on shards written to a temporary directory:
 *  - packing: a hand-worked stream of two shards (documents, a non-target token, a shard without
 *    attributes) gives the expected tokens, targets, positions and segments, with doc masking on
 *    and off;
 *  - dp = 2 emulated with two loaders (rank 0 and 1): across the ranks every sequence is read
 *    exactly once per epoch (odd and even sequence counts, shuffled), and each epoch has its own order;
 *  - a position saved with tell and restored with seek continues with the same sequences;
 *  - globs, and bad input (no match, too little data, another vocabulary, a bad position). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../data/loader.h"
#include "check.h"

typedef struct {
    gt_check c;
    char dir[64];
} tctx;

static void write_shard(tctx *t, const char *name, const uint32_t *tok, const uint8_t *attr, int n,
                        uint32_t vocab) {
    char path[256];
    gt_err err;
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    GT_ASSERT(gt_shard_write(path, tok, attr, n, vocab, &err) == 0, "%s", err.msg);
}

static int open_ld(gt_loader *ld, tctx *t, const char *pattern, int T, int rank, int dp, int doc_mask,
                   int shuffle, uint64_t seed, gt_err *err) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", t->dir, pattern);
    const char *pats[] = {path};
    gt_loader_config lc = {"data.train", pats, 1, 300, T, rank, dp, doc_mask, shuffle, seed};
    return gt_loader_open(ld, &lc, err);
}

static int same(const int32_t *a, const int32_t *b, int n) { return memcmp(a, b, (size_t)n * 4) == 0; }

/* Stream: p-0.bin = 100..109, documents at 0 and 4, token 106 not a target; p-1.bin = 200..206
 * without attributes (all targets, one document starting at the shard). T = 4: 4 sequences, 206 unused. */
static void test_packing(tctx *t) {
    uint32_t a[10], b[7];
    uint8_t at[10];
    for (int i = 0; i < 10; i++) a[i] = 100 + i, at[i] = GT_TOK_TARGET;
    for (int i = 0; i < 7; i++) b[i] = 200 + i;
    at[0] |= GT_TOK_DOC_START;
    at[4] |= GT_TOK_DOC_START;
    at[6] = 0;
    write_shard(t, "p-0.bin", a, at, 10, 300);
    write_shard(t, "p-1.bin", b, NULL, 7, 0);
    static const int32_t tok[4][4] = {{100, 101, 102, 103}, {104, 105, 106, 107}, {108, 109, 200, 201}, {202, 203, 204, 205}};
    static const int32_t tgt[4][4] = {{101, 102, 103, -1}, {105, -1, 107, -1}, {109, -1, 201, -1}, {203, 204, 205, -1}};
    static const int32_t pos[4][4] = {{0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1, 0, 1}, {0, 1, 2, 3}};
    static const int32_t seg[4][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 1, 1}, {0, 0, 0, 0}};
    static const int64_t ntgt[4] = {3, 2, 2, 3};
    gt_loader ld;
    gt_err err;
    GT_ASSERT(open_ld(&ld, t, "p-*.bin", 4, 0, 1, 1, 0, 0, &err) == 0, "%s", err.msg);
    gt_check_true(&t->c, ld.nseq == 4 && ld.nfiles == 2, "packing: %lld sequences from %d files, expected 4 from 2",
                  (long long)ld.nseq, ld.nfiles);
    for (int k = 0; k < 4; k++) {
        int32_t x[4], y[4], p[4], s[4];
        int64_t id, n = gt_loader_next(&ld, x, y, p, s, &id);
        gt_check_true(&t->c, id == k && n == ntgt[k] && same(x, tok[k], 4) && same(y, tgt[k], 4) &&
                                 same(p, pos[k], 4) && same(s, seg[k], 4),
                      "packing: sequence %d (id %lld, %lld targets) differs from the hand-worked one", k,
                      (long long)id, (long long)n);
    }
    gt_loader_pos pp = gt_loader_tell(&ld);
    gt_check_true(&t->c, pp.epoch == 1 && pp.index == 0, "packing: after 4 of 4 the position is epoch 1 index 0");
    gt_loader_close(&ld);

    /* Without doc masking, one segment: 200 (a document start with the target bit) is predicted. */
    GT_ASSERT(open_ld(&ld, t, "p-*.bin", 4, 0, 1, 0, 0, 0, &err) == 0, "%s", err.msg);
    int32_t x[4], y[4], p[4], s[4];
    for (int k = 0; k < 3; k++) gt_loader_next(&ld, x, y, p, s, NULL);
    static const int32_t tgt2[4] = {109, 200, 201, -1}, pos2[4] = {0, 1, 2, 3}, seg2[4] = {0, 0, 0, 0};
    gt_check_true(&t->c, same(y, tgt2, 4) && same(p, pos2, 4) && same(s, seg2, 4),
                  "packing without doc masking: targets %d %d %d %d", y[0], y[1], y[2], y[3]);
    gt_loader_close(&ld);
}

/* nseq sequences of T = 4 tokens in one shard, ids 0..4*nseq-1 (vocabulary 300 allows 75). */
static void write_counting(tctx *t, const char *name, int nseq) {
    uint32_t *tok = gt_malloc((size_t)nseq * 4 * sizeof *tok);
    for (int i = 0; i < nseq * 4; i++) tok[i] = (uint32_t)(i % 300);
    write_shard(t, name, tok, NULL, nseq * 4, 300);
    free(tok);
}

/* Two ranks read `epochs` epochs; slot 2j + r is rank r's j-th sequence. */
static void test_dp2(tctx *t, const char *name, int nseq) {
    write_counting(t, name, nseq);
    gt_loader ld[2];
    gt_err err;
    for (int r = 0; r < 2; r++) GT_ASSERT(open_ld(&ld[r], t, name, 4, r, 2, 1, 1, 99, &err) == 0, "%s", err.msg);
    int epochs = 3, slots = epochs * nseq;
    int64_t *seen = gt_malloc((size_t)(slots + 2) * sizeof *seen);
    for (int j = 0; 2 * j < slots; j++) {
        for (int r = 0; r < 2; r++) {
            int32_t x[4], y[4], p[4], s[4];
            int64_t id;
            gt_loader_next(&ld[r], x, y, p, s, &id);
            seen[2 * j + r] = id;
            GT_ASSERT(x[0] == (int32_t)((id * 4) % 300), "sequence %lld holds the wrong tokens", (long long)id);
        }
        gt_loader_pos a = gt_loader_tell(&ld[0]), b = gt_loader_tell(&ld[1]);
        GT_ASSERT(a.epoch == b.epoch && a.index == b.index, "the ranks' positions differ");
    }
    int identical = 1;
    for (int e = 0; e < epochs; e++) {
        int *count = gt_calloc((size_t)nseq, sizeof *count), once = 1;
        for (int i = 0; i < nseq; i++) count[seen[e * nseq + i]]++;
        for (int i = 0; i < nseq; i++) once &= count[i] == 1;
        gt_check_true(&t->c, once, "dp=2, %d sequences: epoch %d does not read every sequence exactly once", nseq, e);
        if (e > 0) identical &= memcmp(seen, seen + e * nseq, (size_t)nseq * sizeof *seen) == 0;
        free(count);
    }
    gt_check_true(&t->c, !identical, "dp=2, %d sequences: every epoch has the same order", nseq);
    int sorted = 1;
    for (int i = 0; i < nseq; i++) sorted &= seen[i] == i;
    gt_check_true(&t->c, !sorted, "dp=2, %d sequences: shuffling left epoch 0 in stream order", nseq);
    free(seen);
    for (int r = 0; r < 2; r++) gt_loader_close(&ld[r]);
}

static void test_resume(tctx *t) {
    write_counting(t, "r.bin", 23);
    gt_loader a, b, c;
    gt_err err;
    GT_ASSERT(open_ld(&a, t, "r.bin", 4, 0, 1, 1, 1, 7, &err) == 0, "%s", err.msg);
    GT_ASSERT(open_ld(&b, t, "r.bin", 4, 0, 1, 1, 1, 7, &err) == 0, "%s", err.msg);
    GT_ASSERT(open_ld(&c, t, "r.bin", 4, 0, 1, 1, 1, 8, &err) == 0, "%s", err.msg);
    int32_t x[4], y[4], p[4], s[4], x2[4], y2[4], p2[4], s2[4];
    int64_t ida, idb, idc;
    int differs = 0;
    for (int i = 0; i < 30; i++) {
        gt_loader_next(&a, x, y, p, s, &ida);
        gt_loader_next(&c, x, y, p, s, &idc);
        differs |= ida != idc;
    }
    gt_check_true(&t->c, differs, "seeds 7 and 8 give the same order");
    gt_loader_pos pos = gt_loader_tell(&a);
    gt_check_true(&t->c, pos.epoch == 1 && pos.index == 7, "after 30 of 23: epoch %lld index %lld, expected 1 7",
                  (long long)pos.epoch, (long long)pos.index);
    gt_check_true(&t->c, gt_loader_seek(&b, pos, &err) == 0, "seek: %s", err.msg);
    int match = 1;
    for (int i = 0; i < 40; i++) {
        gt_loader_next(&a, x, y, p, s, &ida);
        gt_loader_next(&b, x2, y2, p2, s2, &idb);
        match &= ida == idb && same(x, x2, 4) && same(y, y2, 4) && same(p, p2, 4) && same(s, s2, 4);
    }
    gt_check_true(&t->c, match, "a resumed loader reads other sequences than the original");
    gt_loader_pos bad = {0, 23};
    gt_check_true(&t->c, gt_loader_seek(&b, bad, &err) == -1 && strstr(err.msg, "data.train") &&
                             strstr(err.msg, "index 23"),
                  "seek to index 23 of 23: '%s'", err.msg);
    gt_loader_close(&a);
    gt_loader_close(&b);
    gt_loader_close(&c);
}

static void expect_error(tctx *t, const char *pattern, int T, int dp, const char *phrase) {
    gt_loader ld;
    gt_err err = {{0}};
    int rc = open_ld(&ld, t, pattern, T, 0, dp, 1, 1, 0, &err);
    gt_check_true(&t->c, rc == -1 && strstr(err.msg, "data.train") && strstr(err.msg, phrase),
                  "%s (T %d, dp %d): expected an error with '%s', got rc %d '%s'", pattern, T, dp, phrase, rc, err.msg);
}

static void test_errors(tctx *t) {
    write_counting(t, "e.bin", 3);
    uint32_t big[4] = {1, 2, 3, 4};
    write_shard(t, "v.bin", big, NULL, 4, 100);
    expect_error(t, "nothing-*.bin", 4, 1, "no file matches");
    expect_error(t, "missing.bin", 4, 1, "missing.bin: cannot open");
    expect_error(t, "e.bin", 4, 4, "fewer than the 4 data-parallel ranks");
    expect_error(t, "e.bin", 13, 1, "make 0 sequences");
    expect_error(t, "v.bin", 2, 1, "vocabulary of 100");
}

int main(void) {
    tctx t = {{0}, "/tmp/gt_loader_XXXXXX"};
    GT_ASSERT(mkdtemp(t.dir), "mkdtemp failed");
    test_packing(&t);
    test_dp2(&t, "odd.bin", 37);
    test_dp2(&t, "even.bin", 40);
    test_resume(&t);
    test_errors(&t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", t.dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", t.dir);
    return gt_check_done(&t.c, "loader");
}
