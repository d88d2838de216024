#include "op_profile.h"

#include "../../core/clock.h"

static const char *const names[GT_PROF_COUNT] = {
    "matmul fwd", "matmul bwd", "attention fwd", "attention bwd", "rmsnorm fwd", "rmsnorm bwd",
    "rope", "geglu fwd", "geglu bwd", "embedding", "cross-entropy", "add", "optimizer", "memory",
    "fp8 cast/scale", "kv write", "attention decode", "argmax", "rope + kv write"};

const char *gt_op_profile_name(int op) { return op >= 0 && op < GT_PROF_COUNT ? names[op] : "?"; }

/* Runs `call` on the inner backend, timed between two device synchronizations. */
#define TIMED(op, call)                                                                            \
    do {                                                                                           \
        gt_op_profile *p_ = (gt_op_profile *)be;                                                   \
        gt_backend *ib = p_->inner_be;                                                             \
        p_->inner->sync(ib);                                                                       \
        double t0_ = gt_now();                                                                        \
        p_->inner->call;                                                                           \
        p_->inner->sync(ib);                                                                       \
        p_->seconds[op] += gt_now() - t0_;                                                            \
        p_->calls[op]++;                                                                           \
    } while (0)
#define INNER(be) (((gt_op_profile *)(be))->inner)
#define IBE(be) (((gt_op_profile *)(be))->inner_be)

static void *p_alloc(gt_backend *be, size_t n) { return INNER(be)->alloc(IBE(be), n); }
static void p_release(gt_backend *be, void *x) { INNER(be)->release(IBE(be), x); }
static void p_zero(gt_backend *be, void *x, size_t n) { TIMED(GT_PROF_MEMORY, zero(ib, x, n)); }
static void p_copy(gt_backend *be, void *d, const void *s, size_t n) { TIMED(GT_PROF_MEMORY, copy(ib, d, s, n)); }
static void p_upload_raw(gt_backend *be, void *d, const void *s, size_t n) { INNER(be)->upload_raw(IBE(be), d, s, n); }
static void p_download_raw(gt_backend *be, void *d, const void *s, size_t n) { INNER(be)->download_raw(IBE(be), d, s, n); }
static void p_upload(gt_backend *be, gt_kind k, void *d, const float *s, size_t n) { INNER(be)->upload(IBE(be), k, d, s, n); }
static void p_download(gt_backend *be, gt_kind k, float *d, const void *s, size_t n) { INNER(be)->download(IBE(be), k, d, s, n); }
static void p_sync(gt_backend *be) { INNER(be)->sync(IBE(be)); }
static void *p_stream(gt_backend *be) { return INNER(be)->stream(IBE(be)); }
static size_t p_mem_in_use(gt_backend *be) { return INNER(be)->mem_in_use(IBE(be)); }
static void p_device_name(gt_backend *be, char *buf, size_t len) { INNER(be)->device_name(IBE(be), buf, len); }
static gt_peak p_peak(gt_backend *be) { return INNER(be)->peak(IBE(be)); }
static void p_add(gt_backend *be, void *o, const void *a, const void *b, size_t n) { TIMED(GT_PROF_ADD, add(ib, o, a, b, n)); }
static void p_accumulate(gt_backend *be, void *d, const void *s, size_t n) { TIMED(GT_PROF_ADD, accumulate(ib, d, s, n)); }
static void p_embed_fwd(gt_backend *be, void *o, const int32_t *t, const void *w, float sc, int64_t vs, int V, int N, int C) {
    TIMED(GT_PROF_EMBED, embed_fwd(ib, o, t, w, sc, vs, V, N, C));
}
static void p_embed_bwd(gt_backend *be, void *dw, const void *d, const int32_t *t, float sc, int64_t vs, int V, int N, int C, int pad) {
    TIMED(GT_PROF_EMBED, embed_bwd(ib, dw, d, t, sc, vs, V, N, C, pad));
}
static void p_rms_fwd(gt_backend *be, void *o, void *r, const void *x, const void *w, float eps, int N, int C) {
    TIMED(GT_PROF_RMSNORM_FWD, rmsnorm_fwd(ib, o, r, x, w, eps, N, C));
}
static void p_rms_bwd(gt_backend *be, void *dx, void *dw, const void *d, const void *x, const void *w, const void *r, int N, int C) {
    TIMED(GT_PROF_RMSNORM_BWD, rmsnorm_bwd(ib, dx, dw, d, x, w, r, N, C));
}
/* The residual add fused into the norm counts as a norm: the add it replaces is gone. */
static void p_add_rms_fwd(gt_backend *be, void *res, void *o, void *r, const void *a, const void *b, const void *w,
                          float eps, int N, int C) {
    TIMED(GT_PROF_RMSNORM_FWD, add_rmsnorm_fwd(ib, res, o, r, a, b, w, eps, N, C));
}
static void p_mm_fwd(gt_backend *be, void *y, const void *x, const void *w, int N, int IC, int OC) {
    TIMED(GT_PROF_MATMUL_FWD, matmul_fwd(ib, y, x, w, N, IC, OC));
}
static void p_mm_bwd(gt_backend *be, void *dx, void *dw, const void *dy, const void *x, const void *w, int N, int IC, int OC) {
    TIMED(GT_PROF_MATMUL_BWD, matmul_bwd(ib, dx, dw, dy, x, w, N, IC, OC));
}
static void p_rope_fwd(gt_backend *be, void *q, const int32_t *pos, float th, int N, int Hq, int Hkv, int D) {
    TIMED(GT_PROF_ROPE, rope_fwd(ib, q, pos, th, N, Hq, Hkv, D));
}
static void p_rope_bwd(gt_backend *be, void *q, const int32_t *pos, float th, int N, int Hq, int Hkv, int D) {
    TIMED(GT_PROF_ROPE, rope_bwd(ib, q, pos, th, N, Hq, Hkv, D));
}
static void p_att_fwd(gt_backend *be, void *o, void *l, const void *q, const int32_t *s, float sc, int B, int T, int Hq, int Hkv, int D) {
    TIMED(GT_PROF_ATTN_FWD, attention_fwd(ib, o, l, q, s, sc, B, T, Hq, Hkv, D));
}
static void p_att_bwd(gt_backend *be, void *dq, const void *d, const void *q, const void *o, const void *l, const int32_t *s, float sc, int B, int T, int Hq, int Hkv, int D) {
    TIMED(GT_PROF_ATTN_BWD, attention_bwd(ib, dq, d, q, o, l, s, sc, B, T, Hq, Hkv, D));
}
static void p_geglu_fwd(gt_backend *be, void *h, const void *a, gt_gelu k, int N, int F) {
    TIMED(GT_PROF_GEGLU_FWD, geglu_fwd(ib, h, a, k, N, F));
}
static void p_geglu_bwd(gt_backend *be, void *da, const void *dh, const void *a, gt_gelu k, int N, int F) {
    TIMED(GT_PROF_GEGLU_BWD, geglu_bwd(ib, da, dh, a, k, N, F));
}
static void p_geglu_fwd_fp8(gt_backend *be, void *h, void *h8, void *h8t, const void *a, gt_gelu k, int N, int F,
                            gt_dtype fmt, const float *scale, float *amax) {
    TIMED(GT_PROF_GEGLU_FWD, geglu_fwd_fp8(ib, h, h8, h8t, a, k, N, F, fmt, scale, amax));
}
static void p_geglu_bwd_fp8(gt_backend *be, void *da, void *da8, void *da8t, const void *dh, const void *a, gt_gelu k,
                            int N, int F, gt_dtype fmt, const float *scale, float *amax) {
    TIMED(GT_PROF_GEGLU_BWD, geglu_bwd_fp8(ib, da, da8, da8t, dh, a, k, N, F, fmt, scale, amax));
}
static void p_rms_fwd_fp8(gt_backend *be, void *y, void *y8, void *y8t, void *r, const void *x, const void *w, float eps,
                          int N, int C, gt_dtype fmt, const float *scale, float *amax) {
    TIMED(GT_PROF_RMSNORM_FWD, rmsnorm_fwd_fp8(ib, y, y8, y8t, r, x, w, eps, N, C, fmt, scale, amax));
}
static void p_add_rms_fwd_fp8(gt_backend *be, void *res, void *y, void *y8, void *y8t, void *r, const void *a,
                              const void *b, const void *w, float eps, int N, int C, gt_dtype fmt, const float *scale,
                              float *amax) {
    TIMED(GT_PROF_RMSNORM_FWD, add_rmsnorm_fwd_fp8(ib, res, y, y8, y8t, r, a, b, w, eps, N, C, fmt, scale, amax));
}
static void p_ce_partial(gt_backend *be, void *p, const void *l, const int32_t *t, int64_t vs, int V, int N) {
    TIMED(GT_PROF_CE, ce_partial(ib, p, l, t, vs, V, N));
}
static void p_ce_finish(gt_backend *be, void *lse, void *ls, const void *p, const int32_t *t, int tp, int N) {
    TIMED(GT_PROF_CE, ce_finish(ib, lse, ls, p, t, tp, N));
}
static void p_ce_backward(gt_backend *be, void *d, const void *l, const int32_t *t, const void *lse, float ds, int64_t vs, int V, int N) {
    TIMED(GT_PROF_CE, ce_backward(ib, d, l, t, lse, ds, vs, V, N));
}
static void p_sumsq(gt_backend *be, void *o, const void *g, size_t n) { TIMED(GT_PROF_OPTIM, grad_sumsq(ib, o, g, n)); }
static void p_adamw(gt_backend *be, void *p, void *ms, void *m, void *v, const void *g, size_t n, const gt_adamw_args *a) {
    TIMED(GT_PROF_OPTIM, adamw(ib, p, ms, m, v, g, n, a));
}

static void p_set_dw(gt_backend *be, int accumulate) { INNER(be)->set_dw_accumulate(IBE(be), accumulate); }
static void p_set_grad_bf16(gt_backend *be, int on) { INNER(be)->set_grad_bf16(IBE(be), on); }
static void p_init_normal(gt_backend *be, void *d, int64_t r, int64_t c, int64_t fc, int64_t r0, int64_t c0, uint64_t key,
                          float std, int64_t zr) {
    TIMED(GT_PROF_MEMORY, init_normal(ib, d, r, c, fc, r0, c0, key, std, zr));
}
static void p_fp8_cast(gt_backend *be, void *out, void *out_t, const void *in, int rows, int cols, gt_dtype fmt,
                       const float *scale, float *amax) {
    TIMED(GT_PROF_FP8_CAST, fp8_cast(ib, out, out_t, in, rows, cols, fmt, scale, amax));
}
static void p_matmul_fp8(gt_backend *be, void *d, int out_grad, const void *a, gt_dtype af, const float *as,
                         const void *b, gt_dtype bf, const float *bs, int M, int N, int K, int fast) {
    /* the forward GEMMs are the ones with fast accumulation */
    TIMED(fast ? GT_PROF_MATMUL_FWD : GT_PROF_MATMUL_BWD, matmul_fp8(ib, d, out_grad, a, af, as, b, bf, bs, M, N, K, fast));
}
static void p_fp8_update(gt_backend *be, float *h, float *s, float *si, const float *mx, const float *red, int first,
                         int n, int count, int len, int algo, float margin) {
    TIMED(GT_PROF_FP8_CAST, fp8_update(ib, h, s, si, mx, red, first, n, count, len, algo, margin));
}

static void p_att_segments(gt_backend *be, const int32_t *seg, const int32_t *sh, int B, int T) {
    TIMED(GT_PROF_ATTN_FWD, attention_segments(ib, seg, sh, B, T));
}
static void p_kv_write(gt_backend *be, void *kc, void *vc, const void *qkv, const int32_t *dst, int N, int Hq,
                       int Hkv, int D, int Tmax) {
    TIMED(GT_PROF_KV_WRITE, kv_write(ib, kc, vc, qkv, dst, N, Hq, Hkv, D, Tmax));
}
static void p_rope_kv(gt_backend *be, void *qkv, void *kc, void *vc, const int32_t *pos, const int32_t *dst, float th,
                      int N, int Hq, int Hkv, int D, int Tmax) {
    TIMED(GT_PROF_ROPE_KV, rope_kv_write(ib, qkv, kc, vc, pos, dst, th, N, Hq, Hkv, D, Tmax));
}
static void p_att_decode(gt_backend *be, void *o, const void *qkv, const void *kc, const void *vc, const int32_t *len,
                         float sc, int B, int Hq, int Hkv, int D, int Tmax) {
    TIMED(GT_PROF_ATTN_DECODE, attention_decode(ib, o, qkv, kc, vc, len, sc, B, Hq, Hkv, D, Tmax));
}
static void p_argmax(gt_backend *be, void *val, int32_t *idx, const void *x, int N, int V) {
    TIMED(GT_PROF_ARGMAX, argmax_rows(ib, val, idx, x, N, V));
}

/* Every entry that takes a backend must be wrapped: an inner op called with the profile as its
 * backend would read the profile's memory as its own state. */
void gt_op_profile_init(gt_op_profile *p, const gt_ops *inner, gt_backend *inner_be) {
    memset(p, 0, sizeof *p);
    p->inner = inner;
    p->inner_be = inner_be;
    gt_ops *o = &p->ops;
    *o = *inner;
    o->name = "profiled";
    /* The profile borrows the inner backend: it neither makes nor frees one. */
    o->create = NULL, o->destroy = NULL;
    /* nor plans its memory (train/memory_plan.h runs before any profile) */
    o->mem_free = NULL, o->mem_reserve = NULL;
    o->stream = p_stream, o->mem_in_use = p_mem_in_use, o->device_name = p_device_name, o->peak = p_peak;
    o->alloc = p_alloc, o->release = p_release, o->zero = p_zero, o->copy = p_copy;
    o->upload_raw = p_upload_raw, o->download_raw = p_download_raw, o->upload = p_upload;
    o->download = p_download, o->sync = p_sync, o->add = p_add, o->accumulate = p_accumulate;
    o->embed_fwd = p_embed_fwd, o->embed_bwd = p_embed_bwd, o->rmsnorm_fwd = p_rms_fwd;
    o->rmsnorm_bwd = p_rms_bwd, o->matmul_fwd = p_mm_fwd, o->matmul_bwd = p_mm_bwd;
    o->rope_fwd = p_rope_fwd, o->rope_bwd = p_rope_bwd, o->attention_fwd = p_att_fwd;
    o->attention_bwd = p_att_bwd, o->geglu_fwd = p_geglu_fwd, o->geglu_bwd = p_geglu_bwd;
    o->geglu_fwd_fp8 = inner->geglu_fwd_fp8 ? p_geglu_fwd_fp8 : NULL;
    o->geglu_bwd_fp8 = inner->geglu_bwd_fp8 ? p_geglu_bwd_fp8 : NULL;
    o->rmsnorm_fwd_fp8 = inner->rmsnorm_fwd_fp8 ? p_rms_fwd_fp8 : NULL;
    o->add_rmsnorm_fwd = inner->add_rmsnorm_fwd ? p_add_rms_fwd : NULL;
    o->add_rmsnorm_fwd_fp8 = inner->add_rmsnorm_fwd_fp8 ? p_add_rms_fwd_fp8 : NULL;
    o->ce_partial = p_ce_partial, o->ce_finish = p_ce_finish, o->ce_backward = p_ce_backward;
    o->grad_sumsq = p_sumsq, o->adamw = p_adamw;
    o->set_dw_accumulate = inner->set_dw_accumulate ? p_set_dw : NULL;
    o->set_grad_bf16 = inner->set_grad_bf16 ? p_set_grad_bf16 : NULL;
    o->init_normal = inner->init_normal ? p_init_normal : NULL;
    o->fp8_cast = inner->fp8_cast ? p_fp8_cast : NULL;
    o->matmul_fp8 = inner->matmul_fp8 ? p_matmul_fp8 : NULL;
    o->fp8_update = inner->fp8_update ? p_fp8_update : NULL;
    o->attention_segments = inner->attention_segments ? p_att_segments : NULL;
    o->kv_write = p_kv_write, o->attention_decode = p_att_decode, o->argmax_rows = p_argmax;
    o->rope_kv_write = inner->rope_kv_write ? p_rope_kv : NULL;
    o->graph_begin = NULL, o->graph_end = NULL, o->graph_launch = NULL, o->graph_destroy = NULL;
}
