/* Every matmul of the model goes through one cuBLASLt wrapper, gemm_run(), except the forward of at
 * most GT_GEMV_MAX_ROWS rows of a weight below GT_GEMV_MAX_WEIGHTS elements (decode: gemv.cu).
 *
 * Row-major to column-major: cuBLASLt is column-major, and a row-major M[r, c] read column-major is
 * M^T [c, r] with leading dimension c. So with x[N,IC], W[OC,IC], y[N,OC] row-major:
 *   fwd   y = x W^T    ->  y^T [OC,N]  = op_T(W^T [IC,OC]) . x^T [IC,N]          "TN" (FP8-ready)
 *   dgrad dx = dy W    ->  dx^T [IC,N] = W^T [IC,OC] . dy^T [OC,N]              "NN"
 *   wgrad dW += dy^T x ->  dW^T [IC,OC] = x^T [IC,N] . op_T(dy^T [OC,N])   "NT", C = D, beta 1
 * A, B bf16; compute and scale type fp32; D bf16 (fwd, dgrad) or the gradients' type (wgrad: fp32,
 * or bf16 after set_grad_bf16, the fp32 sum of C and the product rounded once).
 *
 * The matmul descriptor, the four layouts and the heuristic's algorithm are built once per distinct
 * (shape, ops, dtypes, leading dims, pointer alignment, fast-accumulation) key and cached in
 * be->gemm. An FP8 variant adds its dtypes to the key (already part of it), sets the scale / amax
 * pointers on the cached descriptor per call, and calls gemm_run() with the TN layout. */
#include <stdlib.h>

#include "cuda_ops.cuh"
#include "lt_plan.cuh"

/* The GEMM in cuBLASLt's column-major terms: D[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C[m,n],
 * C and D share ldc (they may be the same buffer). */
typedef struct {
    cublasOperation_t op_a, op_b;
    int m, n, k;
    const void *a;
    int64_t lda;
    cudaDataType_t type_a;
    const void *b;
    int64_t ldb;
    cudaDataType_t type_b;
    const void *c;
    void *d;
    int64_t ldc;
    cudaDataType_t type_c, type_d;
    float alpha, beta;
    int fast_accum; /* FP8 fprop only; 0 for BF16 */
} gemm_args;

/* Everything a cached plan depends on. Built from a zeroed struct so memcmp sees no padding junk.
 */
typedef struct {
    int64_t m, n, k, lda, ldb, ldc;
    int32_t op_a, op_b, type_a, type_b, type_c, type_d;
    int32_t fast_accum;
    int32_t align[4]; /* bytes (1..256) the A, B, C, D pointers are aligned to */
} gemm_key;

typedef struct {
    gemm_key key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc, ld;
    cublasLtMatmulAlgo_t algo;
} gemm_plan;

struct gt_gemm_cache {
    gemm_plan *plans;
    int count, cap;
};

extern "C" gt_gemm_cache *gt_gemm_cache_create(void) {
    return (gt_gemm_cache *)gt_calloc(1, sizeof(gt_gemm_cache));
}

extern "C" void gt_gemm_cache_destroy(gt_gemm_cache *cache) {
    if (!cache) return;
    for (int i = 0; i < cache->count; i++) {
        gemm_plan *p = &cache->plans[i];
        gt_lt_destroy(p->desc, p->la, p->lb, p->lc, p->ld);
    }
    free(cache->plans);
    free(cache);
}


static gemm_key make_key(const gemm_args *g) {
    gemm_key k;
    memset(&k, 0, sizeof k);
    k.m = g->m;
    k.n = g->n;
    k.k = g->k;
    k.lda = g->lda;
    k.ldb = g->ldb;
    k.ldc = g->ldc;
    k.op_a = (int32_t)g->op_a;
    k.op_b = (int32_t)g->op_b;
    k.type_a = (int32_t)g->type_a;
    k.type_b = (int32_t)g->type_b;
    k.type_c = (int32_t)g->type_c;
    k.type_d = (int32_t)g->type_d;
    k.fast_accum = g->fast_accum;
    k.align[0] = gt_lt_alignment(g->a);
    k.align[1] = gt_lt_alignment(g->b);
    k.align[2] = gt_lt_alignment(g->c);
    k.align[3] = gt_lt_alignment(g->d);
    return k;
}

/* Layout of a stored operand: op(X) is rows x cols, so X itself is transposed when op is T. */
static cublasLtMatrixLayout_t make_layout(cudaDataType_t type, cublasOperation_t op, int64_t rows,
                                          int64_t cols, int64_t ld) {
    cublasLtMatrixLayout_t l;
    if (op == CUBLAS_OP_N)
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, rows, cols, ld));
    else
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, cols, rows, ld));
    return l;
}

static void choose_algo(gt_backend *be, gemm_plan *p) {
    cublasLtMatmulHeuristicResult_t res;
    int found = gt_lt_heuristic(be, p->desc, p->la, p->lb, p->lc, p->ld, p->key.align, 1, &res);
    if (found < 1)
        GT_DIE("cuBLASLt has no algorithm for m=%lld n=%lld k=%lld op %d%d types %d,%d->%d",
               (long long)p->key.m, (long long)p->key.n, (long long)p->key.k, (int)p->key.op_a,
               (int)p->key.op_b, (int)p->key.type_a, (int)p->key.type_b, (int)p->key.type_d);
    p->algo = res.algo;
}

/* The descriptor, layouts and algorithm of a plan for g (key = make_key(g)). */
static void init_plan(gt_backend *be, gemm_plan *p, const gemm_args *g, const gemm_key *key) {
    p->key = *key;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &g->op_a,
                                                sizeof g->op_a));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &g->op_b,
                                                sizeof g->op_b));
    if (g->fast_accum) {
        int8_t fast = 1;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast,
                                                    sizeof fast));
    }
    p->la = make_layout(g->type_a, g->op_a, g->m, g->k, g->lda);
    p->lb = make_layout(g->type_b, g->op_b, g->k, g->n, g->ldb);
    p->lc = make_layout(g->type_c, CUBLAS_OP_N, g->m, g->n, g->ldc);
    p->ld = make_layout(g->type_d, CUBLAS_OP_N, g->m, g->n, g->ldc);
    choose_algo(be, p);
}

static gemm_plan *build_plan(gt_backend *be, const gemm_args *g, const gemm_key *key) {
    gt_gemm_cache *cache = be->gemm;
    cache->plans = (gemm_plan *)gt_lt_reserve(cache->plans, cache->count, &cache->cap, sizeof *cache->plans, "GEMM");
    gemm_plan *p = &cache->plans[cache->count];
    init_plan(be, p, g, key);
    cache->count++; /* only now: a plan that failed above never enters the cache */
    return p;
}

static gemm_plan *find_plan(gt_backend *be, const gemm_args *g) {
    gemm_key key = make_key(g);
    gt_gemm_cache *cache = be->gemm;
    for (int i = 0; i < cache->count; i++)
        if (memcmp(&cache->plans[i].key, &key, sizeof key) == 0) return &cache->plans[i];
    return build_plan(be, g, &key);
}

static void gemm_run(gt_backend *be, const gemm_args *g) {
    gemm_plan *p = find_plan(be, g);
    CUBLAS_CHECK(cublasLtMatmul(be->lt, p->desc, &g->alpha, g->a, p->la, g->b, p->lb, &g->beta,
                                g->c, p->lc, g->d, p->ld, &p->algo, be->workspace,
                                be->workspace_bytes, be->stream));
}

/* y[N,OC] = x[N,IC] W[OC,IC]^T, bf16 in and out. */
static gemm_args fwd_args(void *y, const void *x, const void *w, int N, int IC, int OC) {
    gemm_args g;
    memset(&g, 0, sizeof g);
    g.op_a = CUBLAS_OP_T;
    g.op_b = CUBLAS_OP_N;
    g.m = OC;
    g.n = N;
    g.k = IC;
    g.a = w;
    g.lda = IC;
    g.type_a = CUDA_R_16BF;
    g.b = x;
    g.ldb = IC;
    g.type_b = CUDA_R_16BF;
    g.c = y;
    g.d = y;
    g.ldc = OC;
    g.type_c = g.type_d = CUDA_R_16BF;
    g.alpha = 1.0f;
    g.beta = 0.0f;
    return g;
}

/* dx[N,IC] = dy[N,OC] W[OC,IC] (bf16, overwritten). */
static gemm_args dgrad_args(void *dx, const void *dy, const void *w, int N, int IC, int OC) {
    gemm_args g;
    memset(&g, 0, sizeof g);
    g.op_a = CUBLAS_OP_N;
    g.op_b = CUBLAS_OP_N;
    g.m = IC;
    g.n = N;
    g.k = OC;
    g.a = w;
    g.lda = IC;
    g.type_a = CUDA_R_16BF;
    g.b = dy;
    g.ldb = OC;
    g.type_b = CUDA_R_16BF;
    g.c = dx;
    g.d = dx;
    g.ldc = IC;
    g.type_c = g.type_d = CUDA_R_16BF;
    g.alpha = 1.0f;
    g.beta = 0.0f;
    return g;
}

/* dW[OC,IC] += dy[N,OC]^T x[N,IC], dW fp32 or bf16 (set_grad_bf16; overwritten while
 * set_dw_accumulate(0)). */
static gemm_args wgrad_args(const gt_backend *be, void *dw, const void *dy, const void *x, int N,
                            int IC, int OC) {
    gemm_args g;
    memset(&g, 0, sizeof g);
    g.op_a = CUBLAS_OP_N;
    g.op_b = CUBLAS_OP_T;
    g.m = IC;
    g.n = OC;
    g.k = N;
    g.a = x;
    g.lda = IC;
    g.type_a = CUDA_R_16BF;
    g.b = dy;
    g.ldb = OC;
    g.type_b = CUDA_R_16BF;
    g.c = dw;
    g.d = dw;
    g.ldc = IC;
    g.type_c = g.type_d = be->grad_bf16 ? CUDA_R_16BF : CUDA_R_32F;
    g.alpha = 1.0f;
    g.beta = be->dw_overwrite ? 0.0f : 1.0f;
    return g;
}

extern "C" void gt_cuda_matmul_fwd(gt_backend *be, void *y, const void *x, const void *w, int N,
                                   int IC, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (IC <= 0) { /* an empty sum */
        CUDA_CHECK(cudaMemsetAsync(y, 0, (size_t)N * OC * sizeof(__nv_bfloat16), be->stream));
        return;
    }
    GT_NVTX_PUSH("matmul_fwd");
    if (N <= GT_GEMV_MAX_ROWS && (size_t)OC * IC < GT_GEMV_MAX_WEIGHTS) { /* decode (gemv.cu) */
        gt_cuda_gemv(be, y, x, w, N, IC, OC);
    } else {
        gemm_args g = fwd_args(y, x, w, N, IC, OC);
        gemm_run(be, &g);
    }
    GT_NVTX_POP();
}

extern "C" void gt_cuda_matmul_bwd(gt_backend *be, void *dx, void *dw, const void *dy,
                                   const void *x, const void *w, int N, int IC, int OC) {
    if (N <= 0 || IC <= 0) return; /* nothing to write, nothing to add */
    GT_NVTX_PUSH("matmul_bwd");
    if (dx) {
        if (OC > 0) {
            gemm_args g = dgrad_args(dx, dy, w, N, IC, OC);
            gemm_run(be, &g);
        } else
            CUDA_CHECK(cudaMemsetAsync(dx, 0, (size_t)N * IC * sizeof(__nv_bfloat16), be->stream));
    }
    if (dw && OC > 0) {
        gemm_args g = wgrad_args(be, dw, dy, x, N, IC, OC);
        gemm_run(be, &g);
    }
    GT_NVTX_POP();
}

extern "C" void gt_cuda_set_dw_accumulate(gt_backend *be, int accumulate) { be->dw_overwrite = !accumulate; }

extern "C" void gt_cuda_set_grad_bf16(gt_backend *be, int on) { be->grad_bf16 = on; }

/* Test-only (lt_bench.h): the descriptor matmul_fwd / matmul_bwd would cache for this GEMM, built
 * anew (the cache is left alone), and the heuristic's candidates for it. */
extern "C" gt_lt_bench *gt_cuda_bf16_lt_bench(gt_backend *be, gt_lt_role role, void *out,
                                              const void *p, const void *q, int N, int IC, int OC,
                                              int max_algos) {
    GT_ASSERT(N > 0 && IC > 0 && OC > 0, "gt_cuda_bf16_lt_bench: empty GEMM N=%d IC=%d OC=%d", N,
              IC, OC);
    gemm_args g = role == GT_LT_FPROP   ? fwd_args(out, p, q, N, IC, OC)
                  : role == GT_LT_DGRAD ? dgrad_args(out, p, q, N, IC, OC)
                                        : wgrad_args(be, out, p, q, N, IC, OC);
    gemm_key key = make_key(&g);
    gemm_plan plan;
    init_plan(be, &plan, &g, &key);
    gt_lt_bench *r = gt_lt_bench_make(be, plan.desc, plan.la, plan.lb, plan.lc, plan.ld, key.align,
                                      plan.algo, max_algos);
    r->a = g.a, r->b = g.b, r->c = g.c, r->d = g.d;
    r->alpha = g.alpha, r->beta = g.beta;
    return r;
}
