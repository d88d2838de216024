/* Writing this rank's slices of every checkpoint tensor at their offsets, with no gather: the
 * pieces of model/layout.h say which rows and columns of each full HF tensor the rank holds and
 * where they are in its buffers (parameters, master copy and moments share element offsets; with a
 * sharded optimizer the state holds the elements [lo, hi) of the parameter buffer only, and each dp
 * rank writes the part of every piece that falls in its range). Row slices are contiguous in the
 * file (one pwrite per chunk); column slices take one pwrite per row. Device data passes through a
 * host buffer of bounded size. */
#include <stdlib.h>

#include "../../model/tp.h"
#include "ckpt_internal.h"

/* Elements staged through host memory at a time (16 MiB of floats). */
#define CHUNK_ELEMS ((size_t)1 << 22)

typedef struct {
    const void *base; /* device buffer: element i of the layout's buffer at base[i - shift] */
    gt_kind kind;
    size_t shift;
    size_t lo, hi;    /* the layout's elements it holds */
} source;

gt_dtype ck_state_dtype(const gt_model *m) { return gt_kind_dtype(m, GT_GRAD); }

/* Where each kind of entry comes from. On the CPU backends and with optim.state bf16 the
 * parameters are the master copy. */
static void sources(const gt_model *m, const gt_optimizer *o, source src[CK_KINDS]) {
    src[CK_WEIGHT] = (source){m->params, GT_ACT, 0, 0, m->lay.count};
    if (!o) return;
    src[CK_MASTER] = o->master ? (source){o->master, GT_GRAD, o->lo, o->lo, o->hi}
                               : (source){m->params, GT_ACT, 0, o->lo, o->hi};
    /* bf16 moments: widened (exact) */
    src[CK_EXP_AVG] = (source){o->mom, o->mom_kind, o->lo, o->lo, o->hi};
    src[CK_EXP_AVG_SQ] = (source){o->var, o->mom_kind, o->lo, o->lo, o->hi};
}

static int overlaps(const gt_piece *a, const gt_piece *b) {
    return !strcmp(a->name, b->name) && a->row0 < b->row0 + b->nrows && b->row0 < a->row0 + a->nrows &&
           a->col0 < b->col0 + b->ncols && b->col0 < a->col0 + a->ncols;
}

/* own[i] = 1 when no lower tp rank holds elements of piece i (norms and replicated K/V heads are
 * held by several ranks; the lowest one writes them). */
static unsigned char *owned_pieces(const gt_model *m, int tp_size, const gt_piece *mine, int n) {
    unsigned char *own = gt_malloc((size_t)n + 1);
    memset(own, 1, (size_t)n + 1);
    for (int r = 0; r < m->lay.tp_rank; r++) {
        gt_layout lay;
        gt_err e;
        GT_ASSERT(!gt_layout_init(&lay, &m->cfg, r, tp_size, &e), "%s", e.msg);
        int np;
        gt_piece *other = gt_layout_pieces(&lay, &m->cfg, &np);
        for (int i = 0; i < n; i++) {
            for (int j = 0; own[i] && j < np; j++) {
                if (!overlaps(&mine[i], &other[j])) continue;
                GT_ASSERT(mine[i].row0 == other[j].row0 && mine[i].nrows == other[j].nrows &&
                              mine[i].col0 == other[j].col0 && mine[i].ncols == other[j].ncols,
                          "%s: tp ranks %d and %d hold partly overlapping slices", mine[i].name, r, m->lay.tp_rank);
                own[i] = 0;
            }
        }
        free(other);
        gt_layout_free(&lay);
    }
    return own;
}

/* float -> stored bytes of dtype dt. */
static void encode(const float *x, size_t n, gt_dtype dt, void *out) {
    if (dt == GT_F32) {
        memcpy(out, x, n * sizeof *x);
    } else if (dt == GT_F64) {
        double *d = out;
        for (size_t i = 0; i < n; i++) d[i] = x[i];
    } else {
        uint16_t *h = out;
        for (size_t i = 0; i < n; i++) h[i] = dt == GT_BF16 ? gt_f32_to_bf16(x[i]) : gt_f32_to_f16(x[i]);
    }
}

typedef struct {
    gt_model *m;
    const ck_catalog *c;
    char (*path)[GT_CKPT_PATH];  /* [nfiles] full paths, for messages */
    const int *fds;
    float *f32;          /* [chunk] */
    unsigned char *raw;  /* [chunk * 8] */
    size_t chunk;        /* elements */
} writer;

/* Elements [k, k+n) of piece p (row-major), already encoded in w->raw, to their places in entry e's
 * tensor: one write when the piece spans whole rows, else one per row touched. */
static int put_elems(writer *w, const gt_piece *p, int t, const ck_entry *e, size_t k, size_t n, gt_err *err) {
    size_t es = gt_dtype_size(e->dtype), pc = (size_t)p->ncols;
    uint64_t cols = (uint64_t)w->c->cols[t];
    int fd = w->fds[e->file];
    const char *path = w->path[e->file];
    if (p->col0 == 0 && (uint64_t)p->ncols == cols)
        return gt_pwrite_all(fd, w->raw, n * es, e->offset + ((uint64_t)p->row0 * cols + k) * es, path, err);
    for (size_t done = 0; done < n;) {
        size_t row = (k + done) / pc, col = (k + done) % pc, len = pc - col < n - done ? pc - col : n - done;
        uint64_t at = e->offset + (((uint64_t)p->row0 + row) * cols + (uint64_t)p->col0 + col) * es;
        if (gt_pwrite_all(fd, w->raw + done * es, len * es, at, path, err)) return -1;
        done += len;
    }
    return 0;
}

/* The part of piece p that src holds, in chunks of whole rows (a range that starts inside a row
 * keeps that offset). */
static int write_piece(writer *w, const gt_piece *p, int t, int kind, const source *src, gt_err *err) {
    const gt_ops *ops = w->m->ops;
    const ck_entry *e = ck_entry_of(w->c, kind, t);
    size_t esz = ops->size[src->kind];
    int native = gt_kind_dtype(w->m, src->kind) == e->dtype;
    size_t size = (size_t)(p->nrows * p->ncols);
    size_t from0 = src->lo > p->dst ? src->lo : p->dst, to0 = src->hi < p->dst + size ? src->hi : p->dst + size;
    size_t a = from0 - p->dst, b = to0 > from0 ? to0 - p->dst : a;
    size_t step = w->chunk / (size_t)p->ncols * (size_t)p->ncols;
    for (size_t k = a; k < b; k += step) {
        size_t count = b - k < step ? b - k : step;
        const char *from = (const char *)src->base + (p->dst + k - src->shift) * esz;
        if (native) {
            ops->download_raw(w->m->be, w->raw, from, count * esz);
        } else {
            ops->download(w->m->be, src->kind, w->f32, from, count);
            encode(w->f32, count, e->dtype, w->raw);
        }
        if (put_elems(w, p, t, e, k, count, err)) return -1;
    }
    return 0;
}

int ck_write_slices(gt_model *m, gt_optimizer *o, int tp_size, int weights, const ck_catalog *c, const char *dir,
                    const int *fds, gt_err *err) {
    int np;
    gt_piece *pc = gt_layout_pieces(&m->lay, &m->cfg, &np);
    unsigned char *own = owned_pieces(m, tp_size, pc, np);
    GT_ASSERT(o || !c->has_state, "checkpoint with optimizer state but no optimizer");
    source src[CK_KINDS];
    sources(m, o, src);
    writer w = {m, c, gt_calloc((size_t)c->nfiles, GT_CKPT_PATH), fds, NULL, NULL, CHUNK_ELEMS};
    for (int f = 0; f < c->nfiles; f++) snprintf(w.path[f], GT_CKPT_PATH, "%s/%s", dir, c->files[f].name);
    for (int i = 0; i < np; i++)
        if ((size_t)pc[i].ncols > w.chunk) w.chunk = (size_t)pc[i].ncols;
    w.f32 = gt_malloc(w.chunk * sizeof(float));
    w.raw = gt_malloc(w.chunk * 8);
    int rc = 0;
    int kinds = c->has_state ? CK_KINDS : 1;
    for (int i = 0; i < np && rc == 0; i++) {
        if (!own[i]) continue;
        int t = ck_tensor_index(&m->cfg, pc[i].name);
        GT_ASSERT(t >= 0, "piece %s is not a checkpoint tensor", pc[i].name);
        for (int k = weights ? 0 : 1; k < kinds && rc == 0; k++) rc = write_piece(&w, &pc[i], t, k, &src[k], err);
    }
    free(w.raw);
    free(w.f32);
    free(w.path);
    free(own);
    free(pc);
    return rc;
}
