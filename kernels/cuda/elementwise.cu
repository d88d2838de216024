/* Elementwise bf16 ops: add (residual connections) and accumulate (summing two gradient paths).
 * fp32 math, one rounding to bf16 per output element. */
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

/* out[n] = a[n] + b[n]. With vec, the first n/8*8 elements go 16 bytes at a time (all three
 * pointers 16-byte aligned), the rest one by one. out may alias a or b: each element is read
 * by the thread that writes it, before it writes it. */
__global__ void add_kernel(bf16 *out, const bf16 *a, const bf16 *b, size_t n, int vec) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t nvec = vec ? n / GT_VEC : 0;
    for (size_t i = first; i < nvec; i += stride) {
        float fa[GT_VEC], fb[GT_VEC];
        gt_load8(a + i * GT_VEC, fa);
        gt_load8(b + i * GT_VEC, fb);
#pragma unroll
        for (int j = 0; j < GT_VEC; j++) fa[j] += fb[j];
        gt_store8(out + i * GT_VEC, fa);
    }
    for (size_t i = nvec * GT_VEC + first; i < n; i += stride)
        out[i] = __float2bfloat16_rn(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

static void launch_add(gt_backend *be, void *out, const void *a, const void *b, size_t n) {
    if (n == 0) return;
    int vec = gt_aligned16(out) && gt_aligned16(a) && gt_aligned16(b);
    const int threads = 256;
    unsigned blocks = gt_grid_stride_blocks(be, vec ? n / GT_VEC + GT_VEC : n, threads);
    add_kernel<<<blocks, threads, 0, be->stream>>>((bf16 *)out, (const bf16 *)a, (const bf16 *)b, n,
                                                   vec);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_add(gt_backend *be, void *out, const void *a, const void *b, size_t n) {
    GT_NVTX_PUSH("add");
    launch_add(be, out, a, b, n);
    GT_NVTX_POP();
}

extern "C" void gt_cuda_accumulate(gt_backend *be, void *dst, const void *src, size_t n) {
    GT_NVTX_PUSH("accumulate");
    launch_add(be, dst, dst, src, n);
    GT_NVTX_POP();
}
