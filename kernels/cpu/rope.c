/* Rotary position embedding on the q and k heads of fused qkv rows (layout in kernels/ops.h: per
 * KV group g, [G q heads, k_g, v_g], each D wide, G = Hq / Hkv). Non-interleaved halves: element d
 * pairs with d + D/2, both rotated by angle pos * inv_freq[d], d < D/2.
 *
 * In the float build the angle is computed exactly as HF GemmaRotaryEmbedding does in float32:
 *   inv_freq[i] = 1 / theta^((float)(2i) / D)   (torch: base ** (arange(0, D, 2).float() / D))
 *   angle       = (float)pos * inv_freq[i]       (one float product)
 * then cos/sin of the float angle. The double build does the same in double. */
#include "cpu_kernels.h"

#include <stdlib.h>

/* cs[D]: cos of the D/2 angles of position pos in cs[0..D/2), sin in cs[D/2..D). */
static void angles(real *cs, const real *inv_freq, int32_t pos, int D) {
    const int half = D / 2;
    for (int i = 0; i < half; i++) {
        real a = (real)pos * inv_freq[i];
        cs[i] = r_cos(a);
        cs[half + i] = r_sin(a);
    }
}

/* Rotates one head x[D] in place by the angles in cs; sign = +1 forward, -1 inverse (transpose):
 *   x'[d]       = x[d] c - sign x[d+D/2] s
 *   x'[d + D/2] = x[d+D/2] c + sign x[d] s */
static void rotate(real *x, const real *cs, int D, real sign) {
    const int half = D / 2;
    for (int d = 0; d < half; d++) {
        const real c = cs[d], s = sign * cs[half + d];
        const real x1 = x[d], x2 = x[half + d];
        x[d] = x1 * c - x2 * s;
        x[half + d] = x2 * c + x1 * s;
    }
}

/* Applies the rotation (sign +1) or its inverse (sign -1) to every q and k head of every row. */
static void rope_apply(real *qkv, const int32_t *pos, float theta, int N, int Hq, int Hkv, int D,
                       real sign) {
    GT_ASSERT(D % 2 == 0 && Hkv > 0 && Hq % Hkv == 0, "rope: bad shape Hq=%d Hkv=%d D=%d", Hq, Hkv,
              D);
    const int half = D / 2, G = Hq / Hkv;
    const size_t width = (size_t)(Hq + 2 * Hkv) * D;
    real *inv_freq = gt_malloc((size_t)half * sizeof(real));
    real *cs = gt_malloc((size_t)D * sizeof(real));
    for (int i = 0; i < half; i++)
        inv_freq[i] = (real)1 / r_pow((real)theta, (real)(2 * i) / (real)D);
    for (int n = 0; n < N; n++) {
        angles(cs, inv_freq, pos[n], D);
        real *row = qkv + (size_t)n * width;
        for (int g = 0; g < Hkv; g++) {
            real *group = row + (size_t)g * (G + 2) * D;
            for (int j = 0; j <= G; j++) rotate(group + (size_t)j * D, cs, D, sign); /* G q + k */
        }
    }
    free(cs);
    free(inv_freq);
}

void CPU_FN(cpu_rope_fwd)(gt_backend *be, void *qkv, const int32_t *pos, float theta, int N, int Hq,
                          int Hkv, int D) {
    rope_apply(qkv, pos, theta, N, Hq, Hkv, D, (real)1);
}

/* The rotation is orthogonal, so its backward is the inverse rotation; dv is left as it is. */
void CPU_FN(cpu_rope_bwd)(gt_backend *be, void *dqkv, const int32_t *pos, float theta, int N,
                          int Hq, int Hkv, int D) {
    rope_apply(dqkv, pos, theta, N, Hq, Hkv, D, (real)-1);
}
