/* Vocab-parallel token embedding: this rank holds rows [vstart, vstart + V) of wte[V, C].
 * HF GemmaModel multiplies the looked-up rows by sqrt(hidden_size) rounded to the activation dtype
 * (the caller passes it rounded); nn.Embedding(padding_idx=pad) gives the padding row no gradient.
 */
#include "cpu_kernels.h"

#include <string.h>

/* Row of wte that token t maps to on this rank, or -1 when another rank holds it. */
static int64_t local_row(int32_t t, int64_t vstart, int V) {
    int64_t r = (int64_t)t - vstart;
    return (r >= 0 && r < V) ? r : -1;
}

/* out[N, C] = wte[tok - vstart] * scale, zero rows for tokens of other ranks. */
void CPU_FN(cpu_embed_fwd)(gt_backend *be, void *out, const int32_t *tok, const void *wte,
                           float scale, int64_t vstart, int V, int N, int C) {
    real *o = out;
    const real *w = wte;
    const real s = (real)scale;
    for (int n = 0; n < N; n++) {
        real *row = o + (size_t)n * C;
        int64_t r = local_row(tok[n], vstart, V);
        if (r < 0) {
            memset(row, 0, (size_t)C * sizeof(real));
            continue;
        }
        const real *src = w + (size_t)r * C;
        for (int c = 0; c < C; c++) row[c] = src[c] * s;
    }
}

/* dwte[tok - vstart, C] += dout[n, C] * scale for every token n of this rank except pad_id
 * (a global token id; < 0 means no padding row). With bf16 gradients each touched row is rounded
 * once after all its tokens are added, as the CUDA kernel adds a row's sum once. */
void CPU_FN(cpu_embed_bwd)(gt_backend *be, void *dwte, const void *dout, const int32_t *tok,
                           float scale, int64_t vstart, int V, int N, int C, int pad_id) {
    real *dw = dwte;
    const real *g = dout;
    const real s = (real)scale;
    for (int n = 0; n < N; n++) {
        int64_t r = local_row(tok[n], vstart, V);
        if (r < 0 || (pad_id >= 0 && tok[n] == pad_id)) continue;
        real *dst = dw + (size_t)r * C;
        const real *src = g + (size_t)n * C;
        for (int c = 0; c < C; c++) dst[c] += src[c] * s;
    }
    for (int n = 0; be->grad_bf16 && n < N; n++) { /* rounding twice is rounding once */
        int64_t r = local_row(tok[n], vstart, V);
        if (r < 0 || (pad_id >= 0 && tok[n] == pad_id)) continue;
        real *dst = dw + (size_t)r * C;
        for (int c = 0; c < C; c++) dst[c] = cpu_grad_store(be, dst[c]);
    }
}
