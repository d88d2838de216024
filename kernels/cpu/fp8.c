/* FP8 on the CPU: emulation of the GPU's FP8 casts and GEMMs with the host conversions of
 * kernels/fp8.h (bit-identical to CUDA's), and the delayed-scaling update of kernels/fp8_scaling.h.
 * Products are summed in double: the emulation is the exact value of the FP8 operands' product. */
#include <math.h>
#include <stdlib.h>

#include "../fp8.h"
#include "../fp8_scaling.h"
#include "cpu_kernels.h"

static uint8_t encode(float x, gt_dtype fmt) { return fmt == GT_E5M2 ? gt_f32_to_e5m2(x) : gt_f32_to_e4m3(x); }
static float decode(uint8_t v, gt_dtype fmt) { return fmt == GT_E5M2 ? gt_e5m2_to_f32(v) : gt_e4m3_to_f32(v); }

/* One row: also the cast of the fused GeGLU ops (geglu.c), so that they equal geglu + fp8_cast. */
void CPU_FN(cpu_fp8_cast_row)(uint8_t *out, uint8_t *out_t, size_t ld_t, const real *x, int cols,
                              gt_dtype fmt, const float *scale, float *m) {
    for (int c = 0; c < cols; c++) {
        float v = (float)x[c]; /* the GPU casts from fp32 */
        if (fabsf(v) > *m) *m = fabsf(v); /* NaNs ignored, as the GPU's max does */
        if (!out && !out_t) continue;
        uint8_t q = encode(v * scale[0], fmt);
        if (out) out[c] = q;
        if (out_t) out_t[(size_t)c * ld_t] = q;
    }
}

void CPU_FN(cpu_fp8_cast)(gt_backend *be, void *out, void *out_t, const void *in, int rows, int cols,
                          gt_dtype fmt, const float *scale, float *amax) {
    (void)be;
    const real *x = in;
    uint8_t *o = out, *ot = out_t;
    float m = *amax;
    for (int r = 0; r < rows; r++)
        CPU_FN(cpu_fp8_cast_row)(o ? o + (size_t)r * cols : NULL, ot ? ot + r : NULL, (size_t)rows,
                                 x + (size_t)r * cols, cols, fmt, scale, &m);
    *amax = m;
}

void CPU_FN(cpu_matmul_fp8)(gt_backend *be, void *d, int out_grad, const void *a, gt_dtype a_fmt,
                            const float *a_scale_inv, const void *b, gt_dtype b_fmt,
                            const float *b_scale_inv, int M, int N, int K, int fast_accum) {
    (void)fast_accum;
    const uint8_t *A = a, *B = b;
    real *D = d;
    double s = (double)a_scale_inv[0] * (double)b_scale_inv[0];
    float *arow = gt_malloc((size_t)K * sizeof(float)), *bt = gt_malloc((size_t)N * K * sizeof(float));
    for (size_t i = 0; i < (size_t)N * K; i++) bt[i] = decode(B[i], b_fmt);
    for (int m = 0; m < M; m++) {
        for (int k = 0; k < K; k++) arow[k] = decode(A[(size_t)m * K + k], a_fmt);
        for (int n = 0; n < N; n++) {
            const float *brow = bt + (size_t)n * K;
            double sum = 0;
            for (int k = 0; k < K; k++) sum += (double)arow[k] * brow[k];
            real v = (real)(sum * s);
            if (out_grad) D[(size_t)m * N + n] = cpu_grad_store(be, be->dw_overwrite ? v : D[(size_t)m * N + n] + v);
            else D[(size_t)m * N + n] = v;
        }
    }
    free(arow);
    free(bt);
}

void CPU_FN(cpu_fp8_update)(gt_backend *be, float *history, float *scale, float *scale_inv,
                            const float *fp8_max, const float *reduced, int first, int n, int count,
                            int len, int algo, float margin) {
    (void)be;
    gt_fp8_update_arrays(history, scale, scale_inv, fp8_max, reduced, first, n, count, len,
                         (gt_amax_algo)algo, margin);
}
