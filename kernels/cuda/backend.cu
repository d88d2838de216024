/* The CUDA backend: device setup, memory ops, and the op table named "cuda".
 *
 * Storage kinds (kernels/ops.h): ACT is bf16, GRAD and STAT are fp32 (parameter gradients bf16 after
 * set_grad_bf16). All device work of the
 * backend is queued on one non-blocking stream (be->stream); only transfers to or from host memory
 * and sync() wait for it. */
#include <stdlib.h>
#include <string.h>

#include "attention_cudnn.h"
#include "cuda_ops.cuh"
#include "cuda_stream.h"
#include "fp8_cuda.h"

/* cuBLASLt workspace; also lent, between GEMMs, as scratch to reduction kernels on the same stream.
 */
#define GT_WORKSPACE_BYTES ((size_t)32 << 20)
/* Elements converted per host staging round in upload()/download(): bounds the extra host memory
 * to 16 MiB even for the 256000 x 3072 embedding. */
#define GT_STAGE_ELEMS ((size_t)1 << 22)

extern "C" int gt_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver or no device: clear the sticky error, report none */
        return 0;
    }
    return n;
}

extern "C" gt_backend *gt_cuda_backend_create(int device) {
    int count = gt_cuda_device_count();
    GT_ASSERT(device >= 0 && device < count, "CUDA device %d requested but %d present", device,
              count);
    gt_backend *be = (gt_backend *)gt_calloc(1, sizeof *be);
    be->device = device;
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaDeviceGetAttribute(&be->num_sms, cudaDevAttrMultiProcessorCount, device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&be->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasLtCreate(&be->lt));
    be->workspace_bytes = GT_WORKSPACE_BYTES;
    const char *tune = getenv("GT_FP8_AUTOTUNE");
    be->fp8_autotune = !(tune && strcmp(tune, "0") == 0);
    CUDA_CHECK(cudaMalloc(&be->workspace, be->workspace_bytes));
    be->gemm = gt_gemm_cache_create();
    be->cudnn = gt_cudnn_attn_create(be->stream);
    return be;
}

extern "C" void gt_cuda_backend_destroy(gt_backend *be) {
    if (!be) return;
    CUDA_CHECK(cudaStreamSynchronize(be->stream));
    gt_cudnn_attn_destroy(be->cudnn);
    gt_gemm_cache_destroy(be->gemm);
    gt_cuda_fp8_release(be);
    if (be->decode_ws) CUDA_CHECK(cudaFree(be->decode_ws));
    CUDA_CHECK(cudaFree(be->workspace));
    CUBLAS_CHECK(cublasLtDestroy(be->lt));
    CUDA_CHECK(cudaStreamDestroy(be->stream));
    free(be);
}

extern "C" cudaStream_t gt_cuda_stream(gt_backend *be) { return be->stream; }

static void *cuda_stream_handle(gt_backend *be) { return (void *)be->stream; }

/* ---- memory ---- */

static void *cuda_alloc(gt_backend *be, size_t bytes) {
    void *p = NULL;
    if (bytes == 0) return NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess)
        GT_DIE("cudaMalloc of %zu bytes (%.2f GiB) on device %d: %s", bytes,
               (double)bytes / (1 << 30), be->device, cudaGetErrorString(e));
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, be->stream));
    return p;
}

static void cuda_release(gt_backend *be, void *p) {
    (void)be;
    if (p) CUDA_CHECK(cudaFree(p)); /* cudaFree waits for queued work that may still use p */
}

static void cuda_zero(gt_backend *be, void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, be->stream));
}

static void cuda_copy(gt_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, be->stream));
}

/* Returns once the host buffer may be reused or read. */
static void cuda_upload_raw(gt_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, be->stream));
    CUDA_CHECK(cudaStreamSynchronize(be->stream));
}

static void cuda_download_raw(gt_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, be->stream));
    CUDA_CHECK(cudaStreamSynchronize(be->stream));
}

/* ACT: host floats are rounded to bf16 (nearest even) in bounded chunks; GRAD/STAT are fp32. */
static void cuda_upload(gt_backend *be, gt_kind kind, void *dst, const float *src, size_t n) {
    if (kind != GT_ACT) {
        cuda_upload_raw(be, dst, src, n * sizeof(float));
        return;
    }
    size_t chunk = n < GT_STAGE_ELEMS ? n : GT_STAGE_ELEMS;
    uint16_t *stage = (uint16_t *)gt_malloc(chunk * sizeof(uint16_t));
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        for (size_t i = 0; i < len; i++) stage[i] = gt_f32_to_bf16(src[off + i]);
        cuda_upload_raw(be, (uint16_t *)dst + off, stage, len * sizeof(uint16_t));
    }
    free(stage);
}

static void cuda_download(gt_backend *be, gt_kind kind, float *dst, const void *src, size_t n) {
    if (kind != GT_ACT) {
        cuda_download_raw(be, dst, src, n * sizeof(float));
        return;
    }
    size_t chunk = n < GT_STAGE_ELEMS ? n : GT_STAGE_ELEMS;
    uint16_t *stage = (uint16_t *)gt_malloc(chunk * sizeof(uint16_t));
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        cuda_download_raw(be, stage, (const uint16_t *)src + off, len * sizeof(uint16_t));
        for (size_t i = 0; i < len; i++) dst[off + i] = gt_bf16_to_f32(stage[i]);
    }
    free(stage);
}

static void cuda_sync(gt_backend *be) { CUDA_CHECK(cudaStreamSynchronize(be->stream)); }

/* ---- the op table ---- */

static gt_ops make_table(void) {
    gt_ops t;
    memset(&t, 0, sizeof t);
    t.name = "cuda";
    t.size[GT_ACT] = 2;  /* bf16 */
    t.size[GT_GRAD] = 4; /* fp32 */
    t.size[GT_STAT] = 4; /* fp32 */
    t.create = gt_cuda_backend_create;
    t.destroy = gt_cuda_backend_destroy;
    t.stream = cuda_stream_handle;
    t.mem_in_use = gt_cuda_mem_in_use;
    t.mem_free = gt_cuda_mem_free;
    t.mem_reserve = gt_cuda_mem_reserve;
    t.device_name = gt_cuda_device_name;
    t.peak = gt_cuda_peak;
    t.alloc = cuda_alloc;
    t.release = cuda_release;
    t.zero = cuda_zero;
    t.copy = cuda_copy;
    t.upload_raw = cuda_upload_raw;
    t.download_raw = cuda_download_raw;
    t.upload = cuda_upload;
    t.download = cuda_download;
    t.sync = cuda_sync;
    t.add = gt_cuda_add;
    t.accumulate = gt_cuda_accumulate;
    t.embed_fwd = gt_cuda_embed_fwd;
    t.embed_bwd = gt_cuda_embed_bwd;
    t.rmsnorm_fwd = gt_cuda_rmsnorm_fwd;
    t.rmsnorm_bwd = gt_cuda_rmsnorm_bwd;
    t.add_rmsnorm_fwd = gt_cuda_add_rmsnorm_fwd;
    t.matmul_fwd = gt_cuda_matmul_fwd;
    t.matmul_bwd = gt_cuda_matmul_bwd;
    t.rope_fwd = gt_cuda_rope_fwd;
    t.rope_bwd = gt_cuda_rope_bwd;
    t.attention_fwd = gt_cuda_attention_fwd;
    t.attention_bwd = gt_cuda_attention_bwd;
    t.attention_segments = gt_cuda_attention_segments;
    t.geglu_fwd = gt_cuda_geglu_fwd;
    t.geglu_bwd = gt_cuda_geglu_bwd;
    t.ce_partial = gt_cuda_ce_partial;
    t.ce_finish = gt_cuda_ce_finish;
    t.ce_backward = gt_cuda_ce_backward;
    t.grad_sumsq = gt_cuda_grad_sumsq;
    t.adamw = gt_cuda_adamw;
    t.set_dw_accumulate = gt_cuda_set_dw_accumulate;
    t.set_grad_bf16 = gt_cuda_set_grad_bf16;
    t.init_normal = gt_cuda_init_normal;
    t.fp8_cast = gt_cuda_fp8_cast;
    t.matmul_fp8 = gt_cuda_matmul_fp8;
    t.fp8_update = gt_cuda_fp8_update;
    t.geglu_fwd_fp8 = gt_cuda_geglu_fwd_fp8;
    t.geglu_bwd_fp8 = gt_cuda_geglu_bwd_fp8;
    t.rmsnorm_fwd_fp8 = gt_cuda_rmsnorm_fwd_fp8;
    t.add_rmsnorm_fwd_fp8 = gt_cuda_add_rmsnorm_fwd_fp8;
    t.kv_write = gt_cuda_kv_write;
    t.rope_kv_write = gt_cuda_rope_kv_write;
    t.attention_decode = gt_cuda_attention_decode;
    t.argmax_rows = gt_cuda_argmax_rows;
    t.graph_begin = gt_cuda_graph_begin;
    t.graph_end = gt_cuda_graph_end;
    t.graph_launch = gt_cuda_graph_launch;
    t.graph_destroy = gt_cuda_graph_destroy;
    return t;
}

extern "C" const gt_ops *gt_cuda_ops(void) {
    static const gt_ops table = make_table(); /* built once, immutable afterwards */
    return &table;
}
