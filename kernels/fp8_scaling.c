#include "fp8_scaling.h"

#include <float.h>
#include <math.h>

static void update_one(float *history, float *scale, float *scale_inv, float fp8_max, float reduced,
                       int t, int count, int len, gt_amax_algo algo, float margin) {
    float *h0 = history + t; /* slot i of tensor t is h0[i * count] */
    float last = reduced != 0.0f ? reduced : h0[0];
    if (last == 0.0f) return;
    float amax = 0.0f;
    for (int i = 0; i < len; i++) {
        float a = i < len - 1 ? h0[(size_t)(i + 1) * (size_t)count] : last;
        amax = fmaxf(amax, a);
        h0[(size_t)i * (size_t)count] = i > 0 ? a : 0.0f;
    }
    if (algo == GT_AMAX_MOST_RECENT) amax = last;
    float scaled_max = fp8_max * powf(2.0f, -margin);
    float s = (isfinite(amax) && amax > 0.0f) ? scaled_max / amax : scale[t];
    if (isinf(s)) s = FLT_MAX;
    scale[t] = s;
    scale_inv[t] = 1.0f / s;
}

void gt_fp8_update_arrays(float *history, float *scale, float *scale_inv, const float *fp8_max,
                          const float *reduced, int first, int n, int count, int len,
                          gt_amax_algo algo, float margin) {
    for (int t = first; t < first + n; t++)
        update_one(history, scale, scale_inv, fp8_max[t], reduced ? reduced[t] : 0.0f, t, count, len,
                   algo, margin);
}
