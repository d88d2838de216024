#include "fp8_scaling.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "../kernels/base.h"

void gt_fp8_state_init(gt_fp8_state *s, int count, int len) {
    s->count = count;
    s->len = len;
    s->history = gt_calloc((size_t)count * (size_t)len, sizeof(float));
    s->scale = gt_malloc((size_t)count * sizeof(float));
    s->scale_inv = gt_malloc((size_t)count * sizeof(float));
    s->fp8_max = gt_malloc((size_t)count * sizeof(float));
    for (int i = 0; i < count; i++) s->scale[i] = s->scale_inv[i] = 1.0f, s->fp8_max[i] = 448.0f;
}

void gt_fp8_state_free(gt_fp8_state *s) {
    free(s->history);
    free(s->scale);
    free(s->scale_inv);
    free(s->fp8_max);
    s->history = s->scale = s->scale_inv = s->fp8_max = NULL;
}

static void update_one(gt_fp8_state *s, const gt_fp8_recipe *r, float reduced, int t) {
    float *h = s->history + (size_t)t * (size_t)s->len;
    float last = reduced != 0.0f ? reduced : h[0];
    if (last == 0.0f) return; /* not cast since the last update */
    float amax = 0.0f;
    for (int i = 0; i < s->len; i++) {
        float a = i < s->len - 1 ? h[i + 1] : last;
        amax = fmaxf(amax, a);
        h[i] = i > 0 ? a : 0.0f;
    }
    if (r->algo == GT_AMAX_MOST_RECENT) amax = last;
    float scaled_max = s->fp8_max[t] * powf(2.0f, -r->margin);
    float scale = (isfinite(amax) && amax > 0.0f) ? scaled_max / amax : s->scale[t];
    if (isinf(scale)) scale = FLT_MAX;
    s->scale[t] = scale;
    s->scale_inv[t] = 1.0f / scale;
}

void gt_fp8_update(gt_fp8_state *s, const gt_fp8_recipe *r, const float *reduced, int first, int n) {
    for (int k = 0; k < n; k++) update_one(s, r, reduced ? reduced[k] : 0.0f, first + k);
}
