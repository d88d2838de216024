/* GeGLU of Gemma's MLP: h[N,F] = gelu(a[:, 0:F]) * a[:, F:2F], a = fc1 output [N, 2F] = [gate; up].
 * The element math (PyTorch's two GELUs in fp32, one bf16 rounding per output element) is in
 * gelu.cuh, shared with the fused GeGLU + FP8 casts of geglu_fp8.cu, which must match these
 * kernels bit for bit. */
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"
#include "gelu.cuh"

/* W (8 or 1) consecutive bf16 as floats / from floats. */
template <int W> static __device__ __forceinline__ void load_w(const bf16 *p, float *f) {
    if (W == GT_VEC)
        gt_load8(p, f);
    else
        f[0] = __bfloat162float(p[0]);
}

/* Grid-stride over the N * F / W groups of W columns; group v is row v / (F/W). */
template <int W>
static __global__ void geglu_fwd_kernel(bf16 *h, const bf16 *a, gt_gelu kind, int N, int F) {
    size_t per_row = (size_t)F / W, total = (size_t)N * per_row;
    for (size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x; v < total;
         v += (size_t)gridDim.x * blockDim.x) {
        size_t n = v / per_row, f = (v % per_row) * W;
        const bf16 *gate = a + n * 2 * F + f, *up = gate + F;
        float g[W], u[W];
        load_w<W>(gate, g);
        load_w<W>(up, u);
#pragma unroll
        for (int j = 0; j < W; j++) g[j] = gt_geglu_fwd1(g[j], u[j], kind);
        gt_store_w<W>(h + n * F + f, g);
    }
}

/* da may alias a: each thread reads its gate/up elements before writing the same elements. */
template <int W>
static __global__ void geglu_bwd_kernel(bf16 *da, const bf16 *dh, const bf16 *a, gt_gelu kind,
                                        int N, int F) {
    size_t per_row = (size_t)F / W, total = (size_t)N * per_row;
    for (size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x; v < total;
         v += (size_t)gridDim.x * blockDim.x) {
        size_t n = v / per_row, f = (v % per_row) * W;
        const bf16 *gate = a + n * 2 * F + f, *up = gate + F;
        float g[W], u[W], d[W];
        load_w<W>(gate, g);
        load_w<W>(up, u);
        load_w<W>(dh + n * F + f, d);
#pragma unroll
        for (int j = 0; j < W; j++) gt_geglu_bwd1(g[j], u[j], d[j], kind, &g[j], &u[j]);
        gt_store_w<W>(da + n * 2 * F + f, g);
        gt_store_w<W>(da + n * 2 * F + F + f, u);
    }
}

extern "C" void gt_cuda_geglu_fwd(gt_backend *be, void *h, const void *a, gt_gelu kind, int N,
                                  int F) {
    if (N <= 0 || F <= 0) return;
    GT_NVTX_PUSH("geglu_fwd");
    int vec = F % GT_VEC == 0 && gt_aligned16(h) && gt_aligned16(a);
    const int threads = 256;
    size_t work = (size_t)N * F / (vec ? GT_VEC : 1);
    unsigned blocks = gt_grid_stride_blocks(be, work, threads);
    if (vec)
        geglu_fwd_kernel<GT_VEC>
            <<<blocks, threads, 0, be->stream>>>((bf16 *)h, (const bf16 *)a, kind, N, F);
    else
        geglu_fwd_kernel<1>
            <<<blocks, threads, 0, be->stream>>>((bf16 *)h, (const bf16 *)a, kind, N, F);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

extern "C" void gt_cuda_geglu_bwd(gt_backend *be, void *da, const void *dh, const void *a,
                                  gt_gelu kind, int N, int F) {
    if (N <= 0 || F <= 0) return;
    GT_NVTX_PUSH("geglu_bwd");
    int vec = F % GT_VEC == 0 && gt_aligned16(da) && gt_aligned16(dh) && gt_aligned16(a);
    const int threads = 256;
    size_t work = (size_t)N * F / (vec ? GT_VEC : 1);
    unsigned blocks = gt_grid_stride_blocks(be, work, threads);
    if (vec)
        geglu_bwd_kernel<GT_VEC><<<blocks, threads, 0, be->stream>>>((bf16 *)da, (const bf16 *)dh,
                                                                     (const bf16 *)a, kind, N, F);
    else
        geglu_bwd_kernel<1><<<blocks, threads, 0, be->stream>>>((bf16 *)da, (const bf16 *)dh,
                                                                (const bf16 *)a, kind, N, F);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}
