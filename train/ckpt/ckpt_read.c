/* Reading this rank's slices of the optimizer state of a checkpoint (whatever tp/dp wrote it):
 * NAME.master becomes the parameters (rounded to the activation dtype) and the master copy,
 * NAME.exp_avg and NAME.exp_avg_sq the moments. Stored values of the backend's own dtype are
 * uploaded as they are (bit-exact resume); others are converted through float: bf16 moments
 * (optim.state) are stored widened to the state dtype, and rounding them back is exact, so a resume
 * with any optim.state continues bitwise from one written with the same state, and one written
 * with another converts (a missing master copy is the weights; extra precision is rounded off).
 * With the state sharded over dp (ZeRO-1), a rank reads only the part of each tensor that falls in
 * its range [lo, hi) of the parameter buffer. */
#include <stdio.h>
#include <stdlib.h>

#include "../../model/safetensors.h"
#include "../../model/tp.h"
#include "ckpt_internal.h"

#define CHUNK_ELEMS ((size_t)1 << 22)

typedef struct {
    void *base;   /* element i of the layout's buffer at base[i - shift] */
    gt_kind kind;
    size_t shift;
} dest;

typedef struct {
    gt_model *m;
    const gt_st *st;
    float *f32;         /* [chunk] */
    unsigned char *raw; /* [chunk * 8] */
    size_t chunk;
} reader;

/* Where the values of each kind of entry go: up to two buffers. */
static int dests(gt_model *m, gt_optimizer *o, int kind, dest d[2]) {
    switch (kind) {
    case CK_MASTER:
        d[0] = (dest){m->params, GT_ACT, 0};
        d[1] = (dest){o->master, GT_GRAD, o->lo};
        return o->master ? 2 : 1;
    case CK_EXP_AVG: d[0] = (dest){o->mom, o->mom_kind, o->lo}; return 1;
    default: d[0] = (dest){o->var, o->mom_kind, o->lo}; return 1;
    }
}

static void decode(const void *src, gt_dtype dt, size_t n, float *out) {
    if (dt == GT_F32) {
        memcpy(out, src, n * sizeof *out);
    } else if (dt == GT_F64) {
        const double *d = src;
        for (size_t i = 0; i < n; i++) out[i] = (float)d[i];
    } else {
        const uint16_t *h = src;
        for (size_t i = 0; i < n; i++) out[i] = dt == GT_BF16 ? gt_bf16_to_f32(h[i]) : gt_f16_to_f32(h[i]);
    }
}

/* Elements [k, k+n) of piece p (row-major) of tensor t (2-D view with cols columns) into rd->raw:
 * one read when the piece spans whole rows, else one per row touched. */
static int get_elems(reader *rd, const gt_st_tensor *t, int64_t cols, const gt_piece *p, size_t k, size_t n,
                     gt_err *err) {
    size_t es = gt_dtype_size(t->dtype), pc = (size_t)p->ncols;
    const gt_st_file *f = &rd->st->files[t->file];
    if (p->col0 == 0 && p->ncols == cols)
        return gt_pread_all(f->fd, rd->raw, n * es, t->offset + ((uint64_t)p->row0 * (uint64_t)cols + k) * es, f->path,
                            err);
    for (size_t done = 0; done < n;) {
        size_t row = (k + done) / pc, col = (k + done) % pc, len = pc - col < n - done ? pc - col : n - done;
        uint64_t at = t->offset + (((uint64_t)p->row0 + row) * (uint64_t)cols + (uint64_t)p->col0 + col) * es;
        if (gt_pread_all(f->fd, rd->raw + done * es, len * es, at, f->path, err)) return -1;
        done += len;
    }
    return 0;
}

static int read_piece(reader *rd, gt_optimizer *o, const gt_piece *p, int kind, gt_err *err) {
    gt_model *m = rd->m;
    char name[CK_NAME_LEN + 8];
    snprintf(name, sizeof name, "%s%s", p->name, ck_suffix[kind]);
    int64_t rows, cols;
    int ndim;
    GT_ASSERT(!gt_hf_tensor_dims(&m->cfg, p->name, &rows, &cols, &ndim), "no HF shape for %s", p->name);
    int64_t shape[2] = {ndim == 1 ? cols : rows, cols};
    const gt_st_tensor *t;
    if (gt_st_expect(rd->st, name, ndim, shape, &t, err)) return -1;
    if (t->dtype != GT_F32 && t->dtype != GT_F64 && t->dtype != GT_BF16 && t->dtype != GT_F16)
        return gt_fail(err, "%s: tensor '%s' has dtype %s; optimizer state is F32 or F64", rd->st->path, name,
                       gt_dtype_name(t->dtype));
    dest d[2];
    int nd = dests(m, o, kind, d);
    /* the part of the piece in the optimizer's range, in chunks of a whole number of rows' elements */
    size_t size = (size_t)(p->nrows * p->ncols);
    size_t from0 = o->lo > p->dst ? o->lo : p->dst, to0 = o->hi < p->dst + size ? o->hi : p->dst + size;
    size_t a = from0 - p->dst, b = to0 > from0 ? to0 - p->dst : a;
    size_t step = rd->chunk / (size_t)p->ncols * (size_t)p->ncols;
    for (size_t e = a; e < b; e += step) {
        size_t count = b - e < step ? b - e : step;
        if (get_elems(rd, t, cols, p, e, count, err)) return -1;
        int decoded = 0;
        for (int k = 0; k < nd; k++) {
            size_t esz = m->ops->size[d[k].kind];
            char *to = (char *)d[k].base + (p->dst + e - d[k].shift) * esz;
            if (gt_kind_dtype(m, d[k].kind) == t->dtype) {
                m->ops->upload_raw(m->be, to, rd->raw, count * esz);
                continue;
            }
            if (!decoded) decode(rd->raw, t->dtype, count, rd->f32);
            decoded = 1;
            m->ops->upload(m->be, d[k].kind, to, rd->f32, count);
        }
    }
    return 0;
}

int ck_read_slices(gt_model *m, gt_optimizer *o, const char *dir, gt_err *err) {
    char path[GT_CKPT_PATH];
    if (gt_path_join(path, sizeof path, dir, "optimizer.safetensors", err)) return -1;
    gt_st st;
    if (gt_st_open(&st, path, err)) return -1;
    int np;
    gt_piece *pc = gt_layout_pieces(&m->lay, &m->cfg, &np);
    reader rd = {m, &st, NULL, NULL, CHUNK_ELEMS};
    for (int i = 0; i < np; i++)
        if ((size_t)pc[i].ncols > rd.chunk) rd.chunk = (size_t)pc[i].ncols;
    rd.f32 = gt_malloc(rd.chunk * sizeof(float));
    rd.raw = gt_malloc(rd.chunk * 8);
    int rc = 0;
    for (int i = 0; i < np && rc == 0; i++)
        for (int k = CK_MASTER; k < CK_KINDS && rc == 0; k++) rc = read_piece(&rd, o, &pc[i], k, err);
    m->ops->sync(m->be);
    free(rd.raw);
    free(rd.f32);
    free(pc);
    gt_st_close(&st);
    return rc;
}
