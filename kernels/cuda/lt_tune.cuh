/* Timing cuBLASLt's heuristic candidates for one GEMM (the FP8 plans' autotune, fp8_gemm.cu; kept
 * apart from it for any plan cache that tunes). The caller says which candidates may run (ok[i]) and
 * how to run one on the call's own operands (it must overwrite its output: trial runs leave it
 * garbage, which the real call then replaces).
 *
 * One untimed run each (a candidate cuBLASLt refuses is dropped), then GT_TUNE_ROUNDS rounds that
 * time every candidate once, in an order rotated from round to round (so clock drift hits all
 * alike), each measurement `reps` back-to-back runs between two events on the stream (enough for
 * GT_TUNE_MEASURE_MS: one 30 us GEMM alone is too noisy), the median per candidate. The fastest
 * replaces the first only when it is more than `margin` faster, so near-ties keep the heuristic's
 * choice instead of flipping with timing noise. Never while the stream is being captured into a
 * CUDA graph (the timing synchronizes): the heuristic's first is kept then. */
#ifndef GT_LT_TUNE_CUH
#define GT_LT_TUNE_CUH

#include <stdlib.h>

#include "cuda_ops.cuh"

#define GT_TUNE_MAX 16
#define GT_TUNE_ROUNDS 5
#define GT_TUNE_MEASURE_MS 0.5f
#define GT_TUNE_MAX_REPS 64

typedef cublasStatus_t (*gt_lt_run_fn)(void *ctx, const cublasLtMatmulAlgo_t *algo);

static inline int gt_lt_splitk_of(const cublasLtMatmulAlgo_t *algo) {
    int32_t v = 1;
    size_t written = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &v,
                                                      sizeof v, &written));
    return v;
}

static inline int gt_lt_cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* Milliseconds per run of `reps` back-to-back runs of one candidate. */
static inline float gt_lt_time(gt_backend *be, gt_lt_run_fn run, void *ctx, const cublasLtMatmulAlgo_t *algo,
                               int reps, cudaEvent_t e0, cudaEvent_t e1) {
    CUDA_CHECK(cudaEventRecord(e0, be->stream));
    for (int r = 0; r < reps; r++) CUBLAS_CHECK(run(ctx, algo));
    CUDA_CHECK(cudaEventRecord(e1, be->stream));
    CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    return ms / (float)reps;
}

/* The index of the candidate to use among cand[0..n) (n <= GT_TUNE_MAX; ok[0] set), 0 when none
 * is more than `margin` faster than the first. ok[] is updated: refused candidates are cleared. */
static inline int gt_lt_fastest(gt_backend *be, gt_lt_run_fn run, void *ctx, const cublasLtMatmulHeuristicResult_t *cand,
                                int n, int *ok, float margin) {
    cudaStreamCaptureStatus cap;
    CUDA_CHECK(cudaStreamIsCapturing(be->stream, &cap));
    if (n < 2 || cap != cudaStreamCaptureStatusNone) return 0;
    for (int i = 0; i < n; i++) /* the warm-up run; a candidate cuBLASLt refuses is left out */
        if (ok[i] && run(ctx, &cand[i].algo) != CUBLAS_STATUS_SUCCESS) {
            ok[i] = 0;
            (void)cudaGetLastError(); /* a refused launch leaves no error for the next check */
        }
    CUDA_CHECK(cudaStreamSynchronize(be->stream));
    if (!ok[0]) return 0; /* the call itself reports it */
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    float one = gt_lt_time(be, run, ctx, &cand[0].algo, 1, e0, e1);
    int reps = one * GT_TUNE_MAX_REPS < GT_TUNE_MEASURE_MS ? GT_TUNE_MAX_REPS : 1 + (int)(GT_TUNE_MEASURE_MS / one);
    float ms[GT_TUNE_MAX][GT_TUNE_ROUNDS];
    for (int r = 0; r < GT_TUNE_ROUNDS; r++)
        for (int k = 0; k < n; k++) {
            int i = (k + r) % n;
            if (ok[i]) ms[i][r] = gt_lt_time(be, run, ctx, &cand[i].algo, reps, e0, e1);
        }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    int best = 0;
    float med[GT_TUNE_MAX];
    for (int i = 0; i < n; i++) {
        if (!ok[i]) continue;
        qsort(ms[i], GT_TUNE_ROUNDS, sizeof ms[i][0], gt_lt_cmp_float);
        med[i] = ms[i][GT_TUNE_ROUNDS / 2];
        if (med[i] < med[best]) best = i;
    }
    return best != 0 && med[best] < (1.0f - margin) * med[0] ? best : 0;
}

#endif
