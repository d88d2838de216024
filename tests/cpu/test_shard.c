/* Token shards (data/shard.h): round trips with and without attributes, the exact byte layout,
 * the text id format, the choice between the two, and one test per kind of bad input, each checking
 * -1, a phrase saying what is wrong, and the file name in the message. Files live in a mkdtemp dir. */
#include "check.h"
#include "data/shard.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    gt_check c;
    char dir[64];
    char path[256]; /* the file the current case works on */
} tctx;

static const char *file_in(tctx *t, const char *name) {
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

static void write_raw(tctx *t, const void *bytes, size_t n) {
    FILE *f = fopen(t->path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write test file %s\n", t->path);
        exit(2);
    }
}

static void write_text(tctx *t, const char *name, const char *text) {
    file_in(t, name);
    write_raw(t, text, strlen(text));
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* ---- an independent encoder, so the tests pin the layout rather than echo shard.c ---- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} raw_file;

static void le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A valid shard of ids 0..count-1 (attributes 1 when flags bit 0), ready to be damaged. */
static raw_file raw_shard(uint32_t flags, uint64_t count, uint32_t vocab) {
    raw_file r;
    memset(&r, 0, sizeof r);
    memcpy(r.b, "GTTOKENS", 8);
    le(r.b + 8, 1, 4);
    le(r.b + 12, flags, 4);
    le(r.b + 16, count, 8);
    le(r.b + 24, vocab, 4);
    r.n = 64;
    for (uint64_t i = 0; i < count; i++, r.n += 4) le(r.b + r.n, i, 4);
    for (uint64_t i = 0; (flags & 1) && i < count; i++) r.b[r.n++] = GT_TOK_TARGET;
    return r;
}

/* ---- checks ---- */

static void expect_fail(tctx *t, int rc, const gt_err *err, const char *phrase, const char *what) {
    gt_check_true(&t->c, rc == -1, "%s: returned %d, want -1", what, rc);
    gt_check_true(&t->c, strstr(err->msg, phrase) != NULL, "%s: message lacks '%s': %s", what,
                  phrase, err->msg);
    gt_check_true(&t->c, strstr(err->msg, t->path) != NULL, "%s: message lacks the file name: %s",
                  what, err->msg);
    printf("msg  %-28s %s\n", what, err->msg);
}

/* Reads t->path with the shard reader (and, for binary files, through gt_tokens_read too, which
 * must reach the same verdict) and expects a failure mentioning phrase. */
static void expect_shard_fail(tctx *t, uint32_t vocab, const char *phrase, const char *what) {
    gt_tokens tok;
    gt_err err = {{0}};
    expect_fail(t, gt_shard_read(&tok, t->path, vocab, &err), &err, phrase, what);
    gt_check_true(&t->c, tok.tokens == NULL && tok.attr == NULL && tok.count == 0,
                  "%s: output not left empty", what);
    gt_err err2 = {{0}};
    expect_fail(t, gt_tokens_read(&tok, t->path, vocab, &err2), &err2, phrase, what);
}

static void expect_text_fail(tctx *t, uint32_t vocab, const char *phrase, const char *what) {
    gt_tokens tok;
    gt_err err = {{0}};
    expect_fail(t, gt_tokens_read_text(&tok, t->path, vocab, &err), &err, phrase, what);
    gt_check_true(&t->c, tok.tokens == NULL && tok.count == 0, "%s: output not left empty", what);
}

static void check_ids(tctx *t, const gt_tokens *tok, const uint32_t *want, int64_t n,
                      const char *what) {
    int same = tok->count == n;
    for (int64_t i = 0; same && i < n; i++) same = tok->tokens[i] == want[i];
    gt_check_true(&t->c, same, "%s: ids differ (count %lld, want %lld)", what,
                  (long long)tok->count, (long long)n);
}

/* ---- round trips ---- */

static void test_round_trip_plain(tctx *t) {
    const uint32_t ids[] = {0, 1, 255, 256, 65535, 65536, 0x01020304u, UINT32_MAX};
    const int64_t n = 8;
    const char *p = file_in(t, "plain.gtt");
    gt_err err = {{0}};
    int rc = gt_shard_write(p, ids, NULL, n, 0, &err);
    gt_check_true(&t->c, rc == 0, "write plain: %s", err.msg);
    gt_check_true(&t->c, file_size(p) == 64 + 4 * n, "plain size %ld", file_size(p));

    /* The exact bytes the format promises: this is what another tool would read. */
    uint8_t b[64 + 4 * 8];
    FILE *f = fopen(p, "rb");
    int got = f && fread(b, 1, sizeof b, f) == sizeof b;
    if (f) fclose(f);
    gt_check_true(&t->c, got, "cannot read back %s", p);
    raw_file want = raw_shard(0, 8, 0);
    for (int i = 0; i < 8; i++) le(want.b + 64 + 4 * i, ids[i], 4);
    gt_check_true(&t->c, got && memcmp(b, want.b, sizeof b) == 0, "plain bytes differ from spec");
    gt_check_true(&t->c, b[64 + 24] == 0x04 && b[64 + 27] == 0x01, "ids not little-endian");

    gt_tokens tok;
    rc = gt_shard_read(&tok, p, 0, &err);
    gt_check_true(&t->c, rc == 0, "read plain: %s", err.msg);
    check_ids(t, &tok, ids, n, "plain");
    gt_check_true(&t->c, tok.attr == NULL, "plain shard has attributes");
    gt_check_true(&t->c, tok.vocab_size == 0, "plain vocab %u", tok.vocab_size);
    gt_tokens_free(&tok);
    gt_check_true(&t->c, tok.tokens == NULL && tok.count == 0, "free did not zero");
    gt_tokens_free(&tok); /* twice is harmless */
}

static void test_round_trip_attr(tctx *t) {
    const uint32_t ids[] = {2, 17, 255999, 0, 9, 1000};
    const uint8_t attr[] = {GT_TOK_DOC_START, GT_TOK_TARGET, GT_TOK_TARGET | GT_TOK_DOC_START,
                            0, GT_TOK_TARGET, 0};
    const int64_t n = 6;
    const char *p = file_in(t, "attr.gtt");
    gt_err err = {{0}};
    int rc = gt_shard_write(p, ids, attr, n, 256000, &err);
    gt_check_true(&t->c, rc == 0, "write attr: %s", err.msg);
    gt_check_true(&t->c, file_size(p) == 64 + 5 * n, "attr size %ld", file_size(p));
    gt_check_true(&t->c, !file_exists(file_in(t, "attr.gtt.tmp")), "tmp file left behind");

    uint8_t b[64];
    FILE *f = fopen(file_in(t, "attr.gtt"), "rb");
    int got = f && fread(b, 1, sizeof b, f) == sizeof b;
    if (f) fclose(f);
    raw_file want = raw_shard(1, 6, 256000);
    gt_check_true(&t->c, got && memcmp(b, want.b, 64) == 0, "attr header differs from spec");

    gt_tokens tok;
    rc = gt_shard_read(&tok, t->path, 256000, &err);
    gt_check_true(&t->c, rc == 0, "read attr: %s", err.msg);
    check_ids(t, &tok, ids, n, "attr");
    gt_check_true(&t->c, tok.attr && memcmp(tok.attr, attr, sizeof attr) == 0, "attr bytes differ");
    gt_check_true(&t->c, tok.vocab_size == 256000, "attr vocab %u", tok.vocab_size);
    gt_tokens_free(&tok);

    /* The caller knows no vocabulary: the header's applies. */
    rc = gt_tokens_read(&tok, t->path, 0, &err);
    gt_check_true(&t->c, rc == 0 && tok.vocab_size == 256000 && tok.attr != NULL,
                  "gt_tokens_read of a shard: rc %d vocab %u %s", rc, tok.vocab_size, err.msg);
    check_ids(t, &tok, ids, n, "gt_tokens_read shard");
    gt_tokens_free(&tok);
}

static void test_overwrite(tctx *t) {
    const uint32_t a[] = {1, 2, 3}, b[] = {7, 8};
    const char *p = file_in(t, "over.gtt");
    gt_err err = {{0}};
    int rc = gt_shard_write(p, a, NULL, 3, 0, &err);
    rc |= gt_shard_write(p, b, NULL, 2, 0, &err);
    gt_check_true(&t->c, rc == 0, "overwrite: %s", err.msg);
    gt_tokens tok;
    rc = gt_shard_read(&tok, p, 0, &err);
    gt_check_true(&t->c, rc == 0, "read overwritten: %s", err.msg);
    check_ids(t, &tok, b, 2, "overwrite");
    gt_tokens_free(&tok);
}

/* ---- the writer refuses what the reader would reject, and leaves nothing behind ---- */

static void test_write_errors(tctx *t) {
    const uint32_t ids[] = {5, 99, 100};
    const uint8_t bad_attr[] = {1, 1, 8};
    char tmp[300];
    gt_err err = {{0}};

    file_in(t, "w_vocab.gtt");
    expect_fail(t, gt_shard_write(t->path, ids, NULL, 3, 100, &err), &err, "token 2 has id 100",
                "write: id >= vocab");
    gt_check_true(&t->c, !file_exists(t->path), "write: id >= vocab left a file");

    file_in(t, "w_attr.gtt");
    expect_fail(t, gt_shard_write(t->path, ids, bad_attr, 3, 0, &err), &err, "0x08",
                "write: bad attribute");

    file_in(t, "w_empty.gtt");
    expect_fail(t, gt_shard_write(t->path, ids, NULL, 0, 0, &err), &err, "no tokens",
                "write: no tokens");

    file_in(t, "no_such_dir/x.gtt");
    expect_fail(t, gt_shard_write(t->path, ids, NULL, 3, 0, &err), &err, "cannot create",
                "write: missing directory");

    /* rename onto a non-empty directory fails after the tmp file was fully written. */
    file_in(t, "is_a_dir");
    mkdir(t->path, 0700);
    snprintf(tmp, sizeof tmp, "%s/inside", t->path);
    mkdir(tmp, 0700);
    expect_fail(t, gt_shard_write(t->path, ids, NULL, 3, 0, &err), &err, "cannot rename",
                "write: rename fails");
    snprintf(tmp, sizeof tmp, "%s.tmp", t->path);
    gt_check_true(&t->c, !file_exists(tmp), "write: tmp left after a failed rename");
}

/* ---- bad shards ---- */

static void test_bad_shards(tctx *t) {
    raw_file r;

    file_in(t, "short.gtt");
    r = raw_shard(0, 2, 0);
    write_raw(t, r.b, 40);
    expect_shard_fail(t, 0, "shorter than the 64-byte header", "short file");

    file_in(t, "magic.gtt");
    r = raw_shard(0, 2, 0);
    r.b[7] = 'Z';
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "wrong magic", "wrong magic");

    file_in(t, "version.gtt");
    r = raw_shard(0, 2, 0);
    le(r.b + 8, 2, 4);
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "unknown token shard version 2", "unknown version");

    file_in(t, "flags.gtt");
    r = raw_shard(0, 2, 0);
    le(r.b + 12, 0x5, 4);
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "unknown flag bits 0x4", "unknown flags");

    file_in(t, "reserved.gtt");
    r = raw_shard(0, 2, 0);
    r.b[63] = 1;
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "reserved header byte 63", "reserved byte");

    file_in(t, "truncated.gtt");
    r = raw_shard(0, 4, 0);
    write_raw(t, r.b, r.n - 1);
    expect_shard_fail(t, 0, "truncated", "truncated");

    file_in(t, "truncated_attr.gtt");
    r = raw_shard(1, 4, 0); /* all 16 id bytes present, one attribute byte missing */
    write_raw(t, r.b, r.n - 1);
    expect_shard_fail(t, 0, "truncated", "truncated attributes");

    file_in(t, "huge_count.gtt");
    r = raw_shard(0, 2, 0);
    le(r.b + 16, UINT64_MAX / 4 + 1, 8); /* count*4 would wrap to 0 */
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "truncated", "count that overflows");

    file_in(t, "trailing.gtt");
    r = raw_shard(0, 3, 0);
    r.b[r.n++] = 0;
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "trailing bytes: 1 bytes", "trailing bytes");

    file_in(t, "zero.gtt");
    r = raw_shard(0, 0, 0);
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "no tokens", "zero tokens");

    file_in(t, "attr_bits.gtt");
    r = raw_shard(1, 4, 0);
    r.b[64 + 16 + 2] = 0x84;
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "token 2 has attribute byte 0x84", "unknown attribute bits");

    file_in(t, "vocab.gtt"); /* ids 0..4, id 4 at index 4; model vocabulary 4 */
    r = raw_shard(0, 5, 0);
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 4, "token 4 has id 4, not below the vocabulary size 4", "id >= vocab");

    file_in(t, "header_vocab.gtt"); /* header says 3, caller knows none: the header's applies */
    r = raw_shard(0, 5, 3);
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 0, "token 3 has id 3, not below the vocabulary size 3",
                      "id >= header vocab");

    file_in(t, "other_vocab.gtt");
    r = raw_shard(0, 5, 32000);
    write_raw(t, r.b, r.n);
    expect_shard_fail(t, 256000, "made for a vocabulary of 32000", "vocab mismatch");

    file_in(t, "missing.gtt");
    expect_shard_fail(t, 0, "cannot open", "missing file");

    file_in(t, "a_dir");
    mkdir(t->path, 0700);
    gt_tokens tok;
    gt_err err = {{0}};
    expect_fail(t, gt_shard_read(&tok, t->path, 0, &err), &err, "not a regular file", "directory");
    expect_fail(t, gt_tokens_read(&tok, t->path, 0, &err), &err, "read failed", "directory (any)");
}

/* ---- text ---- */

static void test_text(tctx *t) {
    const uint32_t want[] = {12, 7, 0, 4294967295u, 3, 255999, 8, 9};
    write_text(t, "ids.txt", "  12\t7\n\n   0 \r\n4294967295\t\t3\n\v255999\f 008\n9");
    gt_tokens tok;
    gt_err err = {{0}};
    int rc = gt_tokens_read_text(&tok, t->path, 0, &err);
    gt_check_true(&t->c, rc == 0, "text: %s", err.msg);
    check_ids(t, &tok, want, 8, "text");
    gt_check_true(&t->c, tok.attr == NULL, "text has attributes");
    gt_tokens_free(&tok);

    rc = gt_tokens_read(&tok, t->path, 0, &err);
    gt_check_true(&t->c, rc == 0, "gt_tokens_read text: %s", err.msg);
    check_ids(t, &tok, want, 8, "gt_tokens_read text");
    gt_tokens_free(&tok);

    write_text(t, "ids_vocab.txt", "1 2\n3\n4 256000 5\n");
    rc = gt_tokens_read_text(&tok, t->path, 256001, &err);
    gt_check_true(&t->c, rc == 0 && tok.count == 6 && tok.tokens[4] == 256000 &&
                             tok.vocab_size == 256001,
                  "text below vocab: %s", err.msg);
    gt_tokens_free(&tok);
    expect_text_fail(t, 256000, "line 3: token 4 has id 256000, not below the vocabulary size "
                                "256000", "text id >= vocab");

    write_text(t, "letters.txt", "1 2\n3\n4 5a 6\n");
    expect_text_fail(t, 0, "line 3: '5a' is not a token id", "text letters");
    write_text(t, "negative.txt", "1\t-5\n");
    expect_text_fail(t, 0, "line 1: '-5' is not a token id", "text negative");
    write_text(t, "plus.txt", "\n\n+5");
    expect_text_fail(t, 0, "line 3: '+5' is not a token id", "text plus sign");
    write_text(t, "overflow.txt", "1\n4294967296\n");
    expect_text_fail(t, 0, "line 2: token id '4294967296' is larger than 4294967295",
                     "text overflow");
    write_text(t, "long.txt", "7 123456789012345678901234567890123456789012345678901234567890\n");
    expect_text_fail(t, 0, "'1234567890123456789012345678901234567890...' is larger",
                     "text long overflow");
    write_text(t, "empty.txt", "");
    expect_text_fail(t, 0, "contains no token ids", "text empty");
    write_text(t, "blank.txt", " \n\t\r\n ");
    expect_text_fail(t, 0, "contains no token ids", "text only whitespace");
    file_in(t, "missing.txt");
    expect_text_fail(t, 0, "cannot open", "text missing");

    /* Not a shard by magic and no NUL byte: read as text, and the bad word is named. */
    write_text(t, "notes.txt", "GTTOKENX 1 2\n");
    expect_fail(t, gt_tokens_read(&tok, t->path, 0, &err), &err, "'GTTOKENX' is not a token id",
                "any: text with a bad word");
}

/* ---- scratch directory ---- */

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char p[512];
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void) {
    tctx t;
    memset(&t, 0, sizeof t);
    strcpy(t.dir, "/tmp/gt_test_shard_XXXXXX");
    if (!mkdtemp(t.dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_round_trip_plain(&t);
    test_round_trip_attr(&t);
    test_overwrite(&t);
    test_write_errors(&t);
    test_bad_shards(&t);
    test_text(&t);
    remove_tree(t.dir);
    return gt_check_done(&t.c, "test_shard");
}
