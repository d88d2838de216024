/* Token shards (data/shard.h): the binary writer and validating reader, and the plain-text id format.
 *
 * Every multi-byte field is encoded byte by byte as little-endian, so a shard written on one host
 * reads the same on any other; on a little-endian host the compiler turns the loops into copies. */
#include "shard.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARD_FLAG_ATTR 1u
#define SHARD_KNOWN_FLAGS SHARD_FLAG_ATTR
#define SHARD_KNOWN_ATTR (GT_TOK_TARGET | GT_TOK_DOC_START)
#define SHARD_MAGIC_BYTES 8
#define SHARD_RESERVED_OFFSET 28
/* Tokens converted per write call: bounds the staging buffer (256 KiB) for shards of any size. */
#define SHARD_WRITE_CHUNK 65536
/* How much of a bad text word goes into a message; the rest is elided. */
#define TEXT_WORD_SHOWN 40

typedef struct {
    uint32_t version, flags, vocab_size;
    uint64_t count;
} shard_header;

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- checks shared by the writer and the readers ---- */

/* limit 0 means the vocabulary is unknown and any id is accepted. */
static int check_ids(const uint32_t *tokens, int64_t count, uint32_t limit, const char *path,
                     gt_err *err) {
    if (limit == 0) return 0;
    for (int64_t i = 0; i < count; i++) {
        if (tokens[i] >= limit) {
            return gt_fail(err, "%s: token %" PRId64 " has id %" PRIu32
                                ", not below the vocabulary size %" PRIu32,
                           path, i, tokens[i], limit);
        }
    }
    return 0;
}

static int check_attrs(const uint8_t *attr, int64_t count, const char *path, gt_err *err) {
    for (int64_t i = 0; attr && i < count; i++) {
        if (attr[i] & ~SHARD_KNOWN_ATTR) {
            return gt_fail(err, "%s: token %" PRId64 " has attribute byte 0x%02x with unknown bits "
                                "(known: 0x%02x)",
                           path, i, attr[i], SHARD_KNOWN_ATTR);
        }
    }
    return 0;
}

/* ---- writing ---- */

static void header_encode(uint8_t b[GT_SHARD_HEADER_BYTES], const shard_header *h) {
    memset(b, 0, GT_SHARD_HEADER_BYTES); /* the reserved bytes must be zero */
    memcpy(b, GT_SHARD_MAGIC, SHARD_MAGIC_BYTES);
    put_u32(b + 8, h->version);
    put_u32(b + 12, h->flags);
    put_u64(b + 16, h->count);
    put_u32(b + 24, h->vocab_size);
}

static int write_all(FILE *f, const void *p, size_t n, const char *path, gt_err *err) {
    if (n > 0 && fwrite(p, 1, n, f) != n) {
        return gt_fail(err, "%s: write failed: %s", path, strerror(errno));
    }
    return 0;
}

static int write_tokens(FILE *f, const uint32_t *tokens, int64_t count, const char *path,
                        gt_err *err) {
    uint8_t *buf = gt_malloc((size_t)SHARD_WRITE_CHUNK * 4);
    int rc = 0;
    for (int64_t i0 = 0; i0 < count && rc == 0; i0 += SHARD_WRITE_CHUNK) {
        int64_t n = count - i0 < SHARD_WRITE_CHUNK ? count - i0 : SHARD_WRITE_CHUNK;
        for (int64_t i = 0; i < n; i++) put_u32(buf + 4 * i, tokens[i0 + i]);
        rc = write_all(f, buf, (size_t)n * 4, path, err);
    }
    free(buf);
    return rc;
}

static int write_body(FILE *f, const uint32_t *tokens, const uint8_t *attr, int64_t count,
                      uint32_t vocab_size, const char *path, gt_err *err) {
    shard_header h = {GT_SHARD_VERSION, attr ? SHARD_FLAG_ATTR : 0u, vocab_size, (uint64_t)count};
    uint8_t hb[GT_SHARD_HEADER_BYTES];
    header_encode(hb, &h);
    if (write_all(f, hb, sizeof hb, path, err)) return -1;
    if (write_tokens(f, tokens, count, path, err)) return -1;
    return attr ? write_all(f, attr, (size_t)count, path, err) : 0;
}

/* The data must be on disk before the rename makes it visible, or a crash could leave a complete
 * looking name with missing contents. fclose runs even after a failure so the FILE is never leaked. */
static int finish_file(FILE *f, const char *path, gt_err *err) {
    int rc = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = gt_fail(err, "%s: write failed: %s", path, strerror(errno));
    }
    if (fclose(f) != 0 && rc == 0) rc = gt_fail(err, "%s: write failed: %s", path, strerror(errno));
    return rc;
}

int gt_shard_write(const char *path, const uint32_t *tokens, const uint8_t *attr, int64_t count,
                   uint32_t vocab_size, gt_err *err) {
    /* Refuse what the reader would reject, so a bad shard is caught where it is made. */
    if (count <= 0 || !tokens) {
        return gt_fail(err, "%s: refusing to write a shard with no tokens", path);
    }
    if (check_ids(tokens, count, vocab_size, path, err)) return -1;
    if (check_attrs(attr, count, path, err)) return -1;

    size_t len = strlen(path);
    char *tmp = gt_malloc(len + 5);
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    int rc = -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        gt_fail(err, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    } else {
        rc = write_body(f, tokens, attr, count, vocab_size, path, err);
        if (rc == 0) rc = finish_file(f, path, err);
        else fclose(f);
        if (rc == 0 && rename(tmp, path) != 0) {
            rc = gt_fail(err, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        }
        if (rc != 0) remove(tmp);
    }
    free(tmp);
    return rc;
}

/* ---- reading a binary shard ---- */

/* pread until n bytes arrive: a single call may return fewer (signals, reads over 2 GiB). */
static int read_exact(int fd, void *dst, size_t n, uint64_t offset, const char *path,
                      gt_err *err) {
    uint8_t *p = dst;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return gt_fail(err, "%s: read failed: %s", path, strerror(errno));
        if (got == 0) {
            return gt_fail(err, "%s: truncated: the file ended at byte %" PRIu64
                                " while reading (did it shrink?)",
                           path, offset);
        }
        p += got;
        n -= (size_t)got;
        offset += (uint64_t)got;
    }
    return 0;
}

static int header_decode(const uint8_t b[GT_SHARD_HEADER_BYTES], shard_header *h,
                         const char *path, gt_err *err) {
    if (memcmp(b, GT_SHARD_MAGIC, SHARD_MAGIC_BYTES) != 0) {
        return gt_fail(err, "%s: not a token shard: wrong magic (expected \"%s\")", path,
                       GT_SHARD_MAGIC);
    }
    h->version = get_u32(b + 8);
    h->flags = get_u32(b + 12);
    h->count = get_u64(b + 16);
    h->vocab_size = get_u32(b + 24);
    if (h->version != GT_SHARD_VERSION) {
        return gt_fail(err, "%s: unknown token shard version %" PRIu32 " (this build reads %u)",
                       path, h->version, GT_SHARD_VERSION);
    }
    if (h->flags & ~SHARD_KNOWN_FLAGS) {
        return gt_fail(err, "%s: unknown flag bits 0x%" PRIx32 " in the token shard header", path,
                       h->flags & ~SHARD_KNOWN_FLAGS);
    }
    for (int i = SHARD_RESERVED_OFFSET; i < GT_SHARD_HEADER_BYTES; i++) {
        if (b[i] != 0) {
            return gt_fail(err, "%s: reserved header byte %d is 0x%02x, not zero", path, i, b[i]);
        }
    }
    return 0;
}

/* Compares the count with the file size by division, so a corrupt count near 2^64 cannot overflow
 * the product and pass, and nothing is allocated before the count is known to fit the file. */
static int check_size(const shard_header *h, uint64_t file_bytes, const char *path, gt_err *err) {
    uint64_t per = (h->flags & SHARD_FLAG_ATTR) ? 5 : 4;
    uint64_t body = file_bytes - GT_SHARD_HEADER_BYTES;
    if (h->count == 0) return gt_fail(err, "%s: the token shard holds no tokens", path);
    if (h->count > body / per) {
        return gt_fail(err, "%s: truncated: the header says %" PRIu64 " tokens (%" PRIu64
                            " bytes each) but only %" PRIu64 " bytes follow the header",
                       path, h->count, per, body);
    }
    if (h->count * per < body) {
        return gt_fail(err, "%s: trailing bytes: %" PRIu64 " bytes after the %" PRIu64
                            " tokens the header declares",
                       path, body - h->count * per, h->count);
    }
    return 0;
}

/* The file's own vocab_size names the tokenizer that made it; a different model vocabulary means
 * the ids would be read with the wrong tokenizer even when every id happens to fit. */
static int check_vocab(uint32_t file_vocab, uint32_t *vocab_size, const char *path, gt_err *err) {
    if (file_vocab != 0 && *vocab_size != 0 && file_vocab != *vocab_size) {
        return gt_fail(err, "%s: the token shard was made for a vocabulary of %" PRIu32
                            " tokens, but the model has %" PRIu32,
                       path, file_vocab, *vocab_size);
    }
    if (*vocab_size == 0) *vocab_size = file_vocab;
    return 0;
}

static int shard_read_fd(gt_tokens *out, int fd, const char *path, uint32_t vocab_size,
                         gt_err *err) {
    struct stat st;
    if (fstat(fd, &st) != 0) return gt_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return gt_fail(err, "%s: not a regular file", path);
    if (st.st_size < GT_SHARD_HEADER_BYTES) {
        return gt_fail(err, "%s: not a token shard: %lld bytes is shorter than the %d-byte header",
                       path, (long long)st.st_size, GT_SHARD_HEADER_BYTES);
    }
    uint8_t hb[GT_SHARD_HEADER_BYTES];
    shard_header h = {0};
    if (read_exact(fd, hb, sizeof hb, 0, path, err)) return -1;
    if (header_decode(hb, &h, path, err)) return -1;
    if (check_size(&h, (uint64_t)st.st_size, path, err)) return -1;
    if (check_vocab(h.vocab_size, &vocab_size, path, err)) return -1;

    out->count = (int64_t)h.count; /* fits: it is below the file size */
    out->vocab_size = vocab_size;
    out->tokens = gt_malloc((size_t)h.count * 4);
    if (read_exact(fd, out->tokens, (size_t)h.count * 4, GT_SHARD_HEADER_BYTES, path, err)) {
        return -1;
    }
    /* Decode in place: element i's bytes occupy exactly element i's storage. */
    for (int64_t i = 0; i < out->count; i++) {
        out->tokens[i] = get_u32((const uint8_t *)&out->tokens[i]);
    }
    if (h.flags & SHARD_FLAG_ATTR) {
        out->attr = gt_malloc((size_t)h.count);
        uint64_t at = GT_SHARD_HEADER_BYTES + h.count * 4;
        if (read_exact(fd, out->attr, (size_t)h.count, at, path, err)) return -1;
        if (check_attrs(out->attr, out->count, path, err)) return -1;
    }
    return check_ids(out->tokens, out->count, vocab_size, path, err);
}

int gt_shard_read(gt_tokens *out, const char *path, uint32_t vocab_size, gt_err *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    int rc = shard_read_fd(out, fd, path, vocab_size, err);
    close(fd);
    if (rc != 0) gt_tokens_free(out);
    return rc;
}

/* ---- reading a text file of ids ---- */

typedef struct {
    uint32_t *v;
    int64_t n, cap;
} id_list;

static void id_list_push(id_list *l, uint32_t id) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 4096;
        uint32_t *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) GT_DIE("out of host memory growing a token list to %" PRId64 " ids", cap);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
}

/* One whitespace-separated word as it is scanned: its value (saturated above UINT32_MAX so that
 * any number of digits is safe), whether it is all digits, and its start for the message. */
typedef struct {
    uint64_t value;
    int digits_only, overflow;
    size_t len;
    char shown[TEXT_WORD_SHOWN + 4];
    int64_t line;
} text_word;

static int is_space(int ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void word_add(text_word *w, int ch) {
    if (w->len < TEXT_WORD_SHOWN) {
        /* A binary byte in a message would garble the terminal; show it as '?'. */
        w->shown[w->len] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        w->shown[w->len + 1] = '\0';
    } else if (w->len == TEXT_WORD_SHOWN) {
        memcpy(w->shown + TEXT_WORD_SHOWN, "...", 4);
    }
    w->len++;
    if (ch < '0' || ch > '9') {
        w->digits_only = 0;
        return;
    }
    w->value = w->value * 10 + (uint64_t)(ch - '0');
    if (w->value > UINT32_MAX) {
        w->overflow = 1;
        w->value = UINT32_MAX; /* saturate: the next *10 cannot wrap a uint64 */
    }
}

static int word_finish(const text_word *w, id_list *l, uint32_t vocab_size, const char *path,
                       gt_err *err) {
    if (!w->digits_only) {
        return gt_fail(err, "%s: line %" PRId64 ": '%s' is not a token id (a non-negative "
                            "decimal integer)",
                       path, w->line, w->shown);
    }
    if (w->overflow) {
        return gt_fail(err, "%s: line %" PRId64 ": token id '%s' is larger than %" PRIu32, path,
                       w->line, w->shown, UINT32_MAX);
    }
    if (vocab_size != 0 && w->value >= vocab_size) {
        return gt_fail(err, "%s: line %" PRId64 ": token %" PRId64 " has id %" PRIu64
                            ", not below the vocabulary size %" PRIu32,
                       path, w->line, l->n, w->value, vocab_size);
    }
    id_list_push(l, (uint32_t)w->value);
    return 0;
}

static int text_scan(FILE *f, id_list *l, uint32_t vocab_size, const char *path, gt_err *err) {
    text_word w = {0};
    int in_word = 0;
    int64_t line = 1;
    for (int ch = getc(f);; ch = getc(f)) {
        if (ch == EOF || is_space(ch)) {
            if (in_word && word_finish(&w, l, vocab_size, path, err)) return -1;
            in_word = 0;
            if (ch == EOF) break;
            if (ch == '\n') line++;
            continue;
        }
        if (!in_word) {
            memset(&w, 0, sizeof w);
            w.digits_only = 1;
            w.line = line;
            in_word = 1;
        }
        word_add(&w, ch);
    }
    if (ferror(f)) return gt_fail(err, "%s: read failed: %s", path, strerror(errno));
    if (l->n == 0) return gt_fail(err, "%s: contains no token ids", path);
    return 0;
}

int gt_tokens_read_text(gt_tokens *out, const char *path, uint32_t vocab_size, gt_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return gt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    id_list l = {0};
    errno = 0;
    int rc = text_scan(f, &l, vocab_size, path, err);
    fclose(f);
    if (rc != 0) {
        free(l.v);
        return -1;
    }
    out->tokens = l.v;
    out->count = l.n;
    out->vocab_size = vocab_size;
    return 0;
}

/* ---- either format ---- */

/* A shard is recognised by its magic, and also by a NUL byte in its first 64 bytes: a shard header
 * always has some (version 1 is 01 00 00 00) and a text file of ids never does. So a shard whose
 * magic was damaged is reported as a bad shard, not as a text file full of strange words. */
static int looks_binary(int fd, const char *path, int *binary, gt_err *err) {
    uint8_t b[GT_SHARD_HEADER_BYTES];
    ssize_t got;
    do {
        got = pread(fd, b, sizeof b, 0);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return gt_fail(err, "%s: read failed: %s", path, strerror(errno));
    *binary = got >= SHARD_MAGIC_BYTES && memcmp(b, GT_SHARD_MAGIC, SHARD_MAGIC_BYTES) == 0;
    for (ssize_t i = 0; i < got; i++) *binary |= b[i] == 0;
    return 0;
}

int gt_tokens_read(gt_tokens *out, const char *path, uint32_t vocab_size, gt_err *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    int binary = 0;
    int rc = looks_binary(fd, path, &binary, err);
    close(fd);
    if (rc != 0) return -1;
    return binary ? gt_shard_read(out, path, vocab_size, err)
                  : gt_tokens_read_text(out, path, vocab_size, err);
}

void gt_tokens_free(gt_tokens *t) {
    if (!t) return;
    free(t->tokens);
    free(t->attr);
    memset(t, 0, sizeof *t);
}
