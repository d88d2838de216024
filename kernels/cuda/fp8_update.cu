/* fp8_update (kernels/ops.h): TransformerEngine's delayed-scaling update of tensors
 * [first, first + n) of a state of `count`, in one launch. The semantics are those of
 * kernels/fp8_scaling.c, exactly (the test compares bit for bit):
 *   last = reduced[t] if reduced and reduced[t] != 0, else history[0][t]; last == 0: skip t
 *   amax = max(old[1..len-1], last) (fmaxf: NaN ignored), or last for most_recent
 *   roll: new[i] = old[i+1], new[len-1] = last, new[0] = 0
 *   scale = fp8_max * 2^-margin / amax when amax is finite and > 0, else the old scale;
 *   inf -> FLT_MAX; scale_inv = 1 / scale.
 *
 * history is [len][count]: slot i of tensor t at history[i * count + t], so for one slot the
 * tensors are contiguous. A block takes 8 consecutive tensors (one 32-byte sector of a slot) with
 * 32 slot lanes each (256 threads), and walks the history in chunks of 256 slots: every thread
 * loads old[i+1] for its 8 slots i of the chunk (all loads in flight together), a barrier, then
 * stores them to slot i. The roll is in place and needs no second buffer: chunk c reads slots up to
 * its end + 1 before the barrier, and slot (end + 1) is only written by chunk c + 1, after the
 * next barrier. Gemma-2B (L = 18): the forward update's 144 tensors -> 18 blocks; len 1024 -> 4
 * chunks. */
#include <float.h>
#include <math.h>

#include "../fp8_scaling.h"
#include "cuda_ops.cuh"

#define UPD_TENSORS 8 /* tensors per block: 8 floats = one sector of a history slot */
#define UPD_LANES 32 /* slot lanes per tensor */
#define UPD_SLOTS 8 /* slots a thread moves per chunk */
#define UPD_THREADS (UPD_TENSORS * UPD_LANES)

static __global__ void __launch_bounds__(UPD_THREADS)
    fp8_update_kernel(float *history, float *scale, float *scale_inv, const float *fp8_max,
                      const float *reduced, int first, int n, int count, int len, int most_recent,
                      float pow2_margin) {
    __shared__ float part[UPD_LANES][UPD_TENSORS];
    const int ti = threadIdx.x % UPD_TENSORS, lane = threadIdx.x / UPD_TENSORS;
    const int idx = blockIdx.x * UPD_TENSORS + ti;
    const int t = first + idx;
    float *h0 = history + t; /* slot i at h0[i * count] */
    float last = 0.0f;
    if (idx < n) {
        float r = reduced ? reduced[t] : 0.0f;
        last = r != 0.0f ? r : h0[0];
    }
    const bool active = idx < n && last != 0.0f; /* NaN != 0: a NaN amax is processed */
    float amax = 0.0f;
    for (int s0 = 0; s0 < len; s0 += UPD_LANES * UPD_SLOTS) { /* uniform: barriers inside */
        float v[UPD_SLOTS];
#pragma unroll
        for (int j = 0; j < UPD_SLOTS; j++) {
            int i = s0 + j * UPD_LANES + lane;
            v[j] = 0.0f;
            if (active && i < len) v[j] = i < len - 1 ? h0[(size_t)(i + 1) * (size_t)count] : last;
            amax = fmaxf(amax, v[j]);
        }
        __syncthreads(); /* every old value of this chunk (and the next chunk's first) is read */
#pragma unroll
        for (int j = 0; j < UPD_SLOTS; j++) {
            int i = s0 + j * UPD_LANES + lane;
            if (active && i < len) h0[(size_t)i * (size_t)count] = i > 0 ? v[j] : 0.0f;
        }
        __syncthreads();
    }
    part[lane][ti] = amax;
    __syncthreads();
    if (lane != 0 || !active) return;
    for (int l = 1; l < UPD_LANES; l++) amax = fmaxf(amax, part[l][ti]);
    if (most_recent) amax = last;
    float s = (isfinite(amax) && amax > 0.0f) ? fp8_max[t] * pow2_margin / amax : scale[t];
    if (isinf(s)) s = FLT_MAX;
    scale[t] = s;
    scale_inv[t] = 1.0f / s;
}

extern "C" void gt_cuda_fp8_update(gt_backend *be, float *history, float *scale, float *scale_inv,
                                   const float *fp8_max, const float *reduced, int first, int n,
                                   int count, int len, int algo, float margin) {
    if (n <= 0 || len <= 0) return;
    GT_ASSERT(first >= 0 && first + n <= count,
              "fp8_update: tensors [%d, %d) outside a state of %d", first, first + n, count);
    GT_NVTX_PUSH("fp8_update");
    /* 2^-margin on the host with the same powf as kernels/fp8_scaling.c: bit-identical scales */
    float pow2_margin = powf(2.0f, -margin);
    unsigned blocks = (unsigned)((n + UPD_TENSORS - 1) / UPD_TENSORS);
    fp8_update_kernel<<<blocks, UPD_THREADS, 0, be->stream>>>(
        history, scale, scale_inv, fp8_max, reduced, first, n, count, len,
        algo == GT_AMAX_MOST_RECENT, pow2_margin);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}
