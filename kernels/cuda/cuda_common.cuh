/* Shared by the CUDA kernels: the backend state and checked-call macros. */
#ifndef GT_CUDA_COMMON_CUH
#define GT_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../../core/base.h"
#include "cuda_backend.h"

#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) gt_die(__FILE__, __LINE__, "%s: %s", #call, cudaGetErrorString(e_)); \
    } while (0)
/* After every kernel launch: launch-configuration errors surface here, at the launch site. */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                           \
            gt_die(__FILE__, __LINE__, "%s: cuBLAS status %d (%s)", #call, (int)s_,               \
                   cublasLtGetStatusString(s_));                                                   \
    } while (0)

typedef struct gt_gemm_cache gt_gemm_cache; /* kernels/cuda/gemm.cu */
typedef struct gt_fp8_gemm_cache gt_fp8_gemm_cache; /* kernels/cuda/fp8_gemm.cu */
typedef struct gt_cudnn_attn gt_cudnn_attn;         /* kernels/cuda/attention_cudnn.h */

struct gt_backend {
    int device;
    int num_sms;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace; /* cuBLASLt workspace */
    size_t workspace_bytes;
    gt_gemm_cache *gemm; /* descriptors and heuristic results per GEMM shape */
    int dw_overwrite;    /* weight gradients overwritten instead of accumulated (set_dw_accumulate) */
    int grad_bf16;       /* parameter gradients are bf16, not fp32 (set_grad_bf16) */
    float *fp8_sinv;     /* [2 x 4] 16-byte aligned slots for FP8 GEMM scale inverses */
    gt_fp8_gemm_cache *fp8_gemm; /* the same for FP8 GEMMs: made on first use, freed by
                                    gt_cuda_fp8_release() (kernels/cuda/fp8_cuda.h) */
    int fp8_autotune;    /* new FP8 GEMM plans time cuBLASLt's candidates (GT_FP8_AUTOTUNE=0: off) */
    gt_cudnn_attn *cudnn; /* cuDNN's fused attention, or NULL: the built-in kernels run */
    void *decode_ws;      /* attention_decode's split and argmax_rows' slice partials (attention_decode.cu) */
    size_t decode_bytes;
};

/* Attention (kernels/cuda/attention_fwd.cu, attention_bwd.cu), with the signatures of gt_ops.attention_fwd/bwd. */
extern "C" void gt_cuda_attention_fwd(gt_backend *be, void *out, void *lse, const void *qkv,
                                      const int32_t *seg, float scale, int B, int T, int Hq,
                                      int Hkv, int D);
extern "C" void gt_cuda_attention_bwd(gt_backend *be, void *dqkv, const void *dout, const void *qkv,
                                      const void *out, const void *lse, const int32_t *seg,
                                      float scale, int B, int T, int Hq, int Hkv, int D);
extern "C" void gt_cuda_attention_segments(gt_backend *be, const int32_t *seg,
                                           const int32_t *seg_host, int B, int T);

#endif
