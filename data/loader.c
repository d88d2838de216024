#include "loader.h"

#include <glob.h>
#include <inttypes.h>
#include <stdlib.h>

#include "sequence.h"

/* ---- the file list ---- */

typedef struct {
    char **paths;
    int n, cap;
} path_list;

static void path_push(path_list *l, const char *p) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        char **v = realloc(l->paths, (size_t)l->cap * sizeof *v);
        if (!v) GT_DIE("out of host memory listing data files");
        l->paths = v;
    }
    size_t len = strlen(p) + 1;
    l->paths[l->n] = gt_malloc(len);
    memcpy(l->paths[l->n++], p, len);
}

static void path_free(path_list *l) {
    for (int i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
}

static int has_glob_chars(const char *p) { return strpbrk(p, "*?[") != NULL; }

/* A plain path is taken as it is, so that a missing file is reported by the shard reader with the
 * system's reason; a pattern must match at least one file. */
static int expand(path_list *out, const gt_loader_config *cfg, gt_err *err) {
    for (int i = 0; i < cfg->npatterns; i++) {
        const char *pat = cfg->patterns[i];
        if (!has_glob_chars(pat)) {
            path_push(out, pat);
            continue;
        }
        glob_t g;
        int rc = glob(pat, 0, NULL, &g);
        if (rc == GLOB_NOMATCH) return gt_fail(err, "%s: no file matches '%s'", cfg->what, pat);
        if (rc != 0) return gt_fail(err, "%s: cannot expand '%s' (glob error %d)", cfg->what, pat, rc);
        for (size_t k = 0; k < g.gl_pathc; k++) path_push(out, g.gl_pathv[k]);
        globfree(&g);
    }
    if (out->n == 0) return gt_fail(err, "%s: no data files given", cfg->what);
    return 0;
}

/* ---- reading and concatenating ---- */

/* Appends shard s to the stream; its first token always begins a document, and a shard without
 * attributes is all targets. */
static void append(gt_tokens *all, const gt_tokens *s) {
    int64_t n = all->count + s->count;
    uint32_t *tok = realloc(all->tokens, (size_t)n * sizeof *tok);
    uint8_t *attr = realloc(all->attr, (size_t)n);
    if (!tok || !attr) GT_DIE("out of host memory reading %" PRId64 " tokens", n);
    memcpy(tok + all->count, s->tokens, (size_t)s->count * sizeof *tok);
    if (s->attr) memcpy(attr + all->count, s->attr, (size_t)s->count);
    else memset(attr + all->count, GT_TOK_TARGET, (size_t)s->count);
    attr[all->count] |= GT_TOK_DOC_START;
    all->tokens = tok;
    all->attr = attr;
    all->count = n;
}

static int read_all(gt_loader *ld, const path_list *files, gt_err *err) {
    for (int i = 0; i < files->n; i++) {
        gt_tokens s;
        if (gt_shard_read(&s, files->paths[i], ld->cfg.vocab_size, err)) {
            char inner[sizeof err->msg];
            memcpy(inner, err->msg, sizeof inner);
            return gt_fail(err, "%s: %s", ld->cfg.what, inner);
        }
        append(&ld->tk, &s);
        gt_tokens_free(&s);
    }
    ld->tk.vocab_size = ld->cfg.vocab_size;
    ld->nfiles = files->n;
    return 0;
}

int gt_loader_open(gt_loader *ld, const gt_loader_config *cfg, gt_err *err) {
    memset(ld, 0, sizeof *ld);
    ld->cfg = *cfg;
    ld->cfg.patterns = NULL;
    ld->order_epoch[0] = ld->order_epoch[1] = -1;
    if (cfg->seq_len < 2) return gt_fail(err, "%s: seq_len %d is below 2", cfg->what, cfg->seq_len);
    if (cfg->dp_size < 1 || cfg->dp_rank < 0 || cfg->dp_rank >= cfg->dp_size) {
        return gt_fail(err, "%s: dp rank %d of %d is not a rank", cfg->what, cfg->dp_rank, cfg->dp_size);
    }
    path_list files = {0};
    int rc = expand(&files, cfg, err);
    if (rc == 0) rc = read_all(ld, &files, err);
    path_free(&files);
    if (rc != 0) {
        gt_loader_close(ld);
        return -1;
    }
    ld->nseq = ld->tk.count / cfg->seq_len;
    if (ld->nseq < cfg->dp_size) {
        int64_t have = ld->tk.count;
        gt_loader_close(ld);
        return gt_fail(err, "%s: %" PRId64 " tokens make %" PRId64 " sequences of %d, fewer than the "
                            "%d data-parallel ranks need (one each)",
                       cfg->what, have, have / cfg->seq_len, cfg->seq_len, cfg->dp_size);
    }
    for (int i = 0; i < 2; i++) ld->order[i] = gt_malloc((size_t)ld->nseq * sizeof(int64_t));
    return 0;
}

void gt_loader_close(gt_loader *ld) {
    gt_tokens_free(&ld->tk);
    for (int i = 0; i < 2; i++) free(ld->order[i]);
    memset(ld, 0, sizeof *ld);
}

/* ---- the order of an epoch ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) by rejection, so that no index is favoured. */
static uint64_t below(uint64_t *s, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = splitmix64(s);
    while (r >= limit);
    return r % n;
}

/* Fisher-Yates from a generator seeded by (seed, epoch) alone: any rank, any resume, same order. */
static void make_order(const gt_loader *ld, int64_t epoch, int64_t *order) {
    for (int64_t i = 0; i < ld->nseq; i++) order[i] = i;
    if (!ld->cfg.shuffle) return;
    uint64_t s = ld->cfg.seed ^ ((uint64_t)epoch * 0xD1B54A32D192ED03ull);
    splitmix64(&s);
    for (int64_t i = ld->nseq - 1; i > 0; i--) {
        int64_t j = (int64_t)below(&s, (uint64_t)i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static const int64_t *order_of(gt_loader *ld, int64_t epoch) {
    int slot = (int)(epoch & 1);
    if (ld->order_epoch[slot] != epoch) {
        make_order(ld, epoch, ld->order[slot]);
        ld->order_epoch[slot] = epoch;
    }
    return ld->order[slot];
}

/* The position `ahead` slots after p. */
static gt_loader_pos advance(gt_loader_pos p, int64_t ahead, int64_t nseq) {
    p.index += ahead;
    p.epoch += p.index / nseq;
    p.index %= nseq;
    return p;
}

int64_t gt_loader_next(gt_loader *ld, int32_t *tok, int32_t *tgt, int32_t *pos, int32_t *seg,
                       int64_t *seq) {
    gt_loader_pos mine = advance(ld->pos, ld->cfg.dp_rank, ld->nseq);
    int64_t k = order_of(ld, mine.epoch)[mine.index];
    ld->pos = advance(ld->pos, ld->cfg.dp_size, ld->nseq);
    if (seq) *seq = k;
    int T = ld->cfg.seq_len;
    return gt_fill_sequence(&ld->tk, k * T, T, ld->cfg.doc_mask, tok, tgt, pos, seg);
}

gt_loader_pos gt_loader_tell(const gt_loader *ld) { return ld->pos; }

int gt_loader_seek(gt_loader *ld, gt_loader_pos pos, gt_err *err) {
    if (pos.epoch < 0 || pos.index < 0 || pos.index >= ld->nseq) {
        return gt_fail(err, "%s: data position epoch %" PRId64 " index %" PRId64 " is outside the %" PRId64
                            " sequences of the data (did the data or seq_len change?)",
                       ld->cfg.what, pos.epoch, pos.index, ld->nseq);
    }
    ld->pos = pos;
    return 0;
}
