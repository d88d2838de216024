/* Decode attention over a KV cache, straight from the definition, with attention.c's arithmetic
 * (product rounded to `real` before scaling, exp(s - max), sum in `acc`, p = e / sum): a decode
 * row equals the full causal forward's row over the same prefix.
 *
 * qkv[N, W], W = (Hq + 2 Hkv) D, grouped by KV group g: [q_{gG} .. q_{gG+G-1}, k_g, v_g].
 * kc, vc [B, Hkv, Tmax, D]; out[B, Hq D]. Also the greedy pick of a row of logits (argmax_rows). */
#include "cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

void CPU_FN(cpu_kv_write)(gt_backend *be, void *kc, void *vc, const void *qkv, const int32_t *dst,
                          int N, int Hq, int Hkv, int D, int Tmax) {
    (void)be;
    GT_ASSERT(Hkv > 0 && Hq % Hkv == 0, "kv_write: bad heads Hq=%d Hkv=%d", Hq, Hkv);
    const int G = Hq / Hkv;
    const size_t W = (size_t)(Hq + 2 * Hkv) * D;
    const real *x = qkv;
    real *k = kc, *v = vc;
    for (int i = 0; i < N; i++) {
        const int b = dst[i] / Tmax, t = dst[i] % Tmax;
        for (int g = 0; g < Hkv; g++) {
            const real *src = x + (size_t)i * W + ((size_t)g * (G + 2) + G) * D;
            size_t off = (((size_t)b * Hkv + g) * Tmax + t) * D;
            memcpy(k + off, src, (size_t)D * sizeof(real));
            memcpy(v + off, src + D, (size_t)D * sizeof(real));
        }
    }
}

void CPU_FN(cpu_attention_decode)(gt_backend *be, void *out, const void *qkv, const void *kc,
                                  const void *vc, const int32_t *len, float scale, int B, int Hq,
                                  int Hkv, int D, int Tmax) {
    (void)be;
    GT_ASSERT(Hkv > 0 && Hq % Hkv == 0, "attention_decode: bad heads Hq=%d Hkv=%d", Hq, Hkv);
    const int G = Hq / Hkv;
    const size_t W = (size_t)(Hq + 2 * Hkv) * D;
    const real *x = qkv, *K = kc, *V = vc;
    real *o = out;
    real *s = gt_malloc((size_t)Tmax * sizeof(real));
    acc *oacc = gt_malloc((size_t)D * sizeof(acc));
    for (int b = 0; b < B; b++) {
        const int n = len[b];
        GT_ASSERT(n >= 1 && n <= Tmax, "attention_decode: len[%d] = %d outside 1..%d", b, n, Tmax);
        for (int h = 0; h < Hq; h++) {
            const int g = h / G;
            const real *q = x + (size_t)b * W + ((size_t)g * (G + 2) + h % G) * D;
            const real *kb = K + ((size_t)b * Hkv + g) * Tmax * D;
            const real *vb = V + ((size_t)b * Hkv + g) * Tmax * D;
            real m = -INFINITY;
            for (int j = 0; j < n; j++) {
                acc d = 0;
                for (int c = 0; c < D; c++) d += (acc)q[c] * kb[(size_t)j * D + c];
                s[j] = (real)d * (real)scale;
                if (s[j] > m) m = s[j];
            }
            acc sum = 0;
            for (int j = 0; j < n; j++) {
                s[j] = r_exp(s[j] - m);
                sum += s[j];
            }
            const real rsum = (real)sum;
            memset(oacc, 0, (size_t)D * sizeof(acc));
            for (int j = 0; j < n; j++) {
                const real p = s[j] / rsum;
                if (p == 0) continue;
                for (int c = 0; c < D; c++) oacc[c] += (acc)p * vb[(size_t)j * D + c];
            }
            real *ob = o + (size_t)b * Hq * D + (size_t)h * D;
            for (int c = 0; c < D; c++) ob[c] = (real)oacc[c];
        }
    }
    free(oacc);
    free(s);
}

void CPU_FN(cpu_argmax_rows)(gt_backend *be, void *val, int32_t *idx, const void *x, int N, int V) {
    (void)be;
    const real *in = x;
    real *v = val;
    for (int n = 0; n < N; n++) {
        const real *row = in + (size_t)n * V;
        int32_t best = 0;
        for (int c = 1; c < V; c++)
            if (row[c] > row[best]) best = c;
        idx[n] = best;
        v[n] = row[best];
    }
}
