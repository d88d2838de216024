/* Causal self-attention over B sequences of T tokens, straight from the definition (the HF eager
 * path): S = (q . k) * scale, masked to keys j <= i of the query's segment, P = softmax(S),
 * out = P V. Query head h reads KV group h / G (G = Hq / Hkv: MHA G=1, GQA, MQA Hkv=1).
 *
 * qkv[N, W], W = (Hq + 2 Hkv) D, per row grouped by KV group g: [q_{gG} .. q_{gG+G-1}, k_g, v_g].
 * out[N, Hq D] with head h at columns h D; lse[B, Hq, T]. */
#include "cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int B, T, Hq, Hkv, D, G;
    size_t W; /* elements in one qkv row */
    const int32_t *seg;
} attn_dims;

static attn_dims make_dims(const int32_t *seg, int B, int T, int Hq, int Hkv, int D) {
    GT_ASSERT(Hkv > 0 && Hq % Hkv == 0 && D > 0, "attention: bad heads Hq=%d Hkv=%d D=%d", Hq, Hkv,
              D);
    attn_dims a = {B, T, Hq, Hkv, D, Hq / Hkv, (size_t)(Hq + 2 * Hkv) * D, seg};
    return a;
}

/* Column offsets inside a qkv row. */
static size_t q_col(const attn_dims *a, int h) {
    return ((size_t)(h / a->G) * (a->G + 2) + h % a->G) * a->D;
}
static size_t k_col(const attn_dims *a, int g) { return ((size_t)g * (a->G + 2) + a->G) * a->D; }
static size_t v_col(const attn_dims *a, int g) { return k_col(a, g) + a->D; }

/* Whether key j (<= i) of batch row b is in query i's segment. */
static int visible(const attn_dims *a, int b, int i, int j) {
    if (!a->seg) return 1;
    const size_t r = (size_t)b * a->T;
    return a->seg[r + i] == a->seg[r + j];
}

static acc dot(const real *x, const real *y, int n) {
    acc s = 0;
    for (int k = 0; k < n; k++) s += (acc)x[k] * y[k];
    return s;
}

/* s[j] = (q_i . k_j) * scale for visible j <= i, -INFINITY for masked j; returns the row max.
 * The product is rounded to `real` before scaling, as HF's (q @ k^T) * scaling does. */
static real scores(const attn_dims *a, real *s, const real *qkv, int b, int h, int i, real scale) {
    const real *q = qkv + ((size_t)b * a->T + i) * a->W + q_col(a, h);
    const size_t kc = k_col(a, h / a->G);
    real m = -INFINITY;
    for (int j = 0; j <= i; j++) {
        if (!visible(a, b, i, j)) {
            s[j] = -INFINITY;
            continue;
        }
        const real *k = qkv + ((size_t)b * a->T + j) * a->W + kc;
        s[j] = (real)dot(q, k, a->D) * scale;
        if (s[j] > m) m = s[j];
    }
    return m;
}

/* One query row: softmax over s[0..i], out_i = sum_j p_j v_j, returns lse. */
static real attend_row(const attn_dims *a, real *o, real *s, acc *oacc, const real *qkv, int b,
                       int h, int i, real scale) {
    const real m = scores(a, s, qkv, b, h, i, scale);
    acc sum = 0;
    for (int j = 0; j <= i; j++) {
        s[j] = r_exp(s[j] - m); /* masked: exp(-inf) = 0 */
        sum += s[j];
    }
    const real rsum = (real)sum;
    const size_t vc = v_col(a, h / a->G);
    memset(oacc, 0, (size_t)a->D * sizeof(acc));
    for (int j = 0; j <= i; j++) {
        const real p = s[j] / rsum;
        if (p == 0) continue;
        const real *v = qkv + ((size_t)b * a->T + j) * a->W + vc;
        for (int d = 0; d < a->D; d++) oacc[d] += (acc)p * v[d];
    }
    for (int d = 0; d < a->D; d++) o[d] = (real)oacc[d];
    return m + r_log(rsum);
}

void CPU_FN(cpu_attention_fwd)(gt_backend *be, void *out, void *lse, const void *qkv,
                               const int32_t *seg, float scale, int B, int T, int Hq, int Hkv,
                               int D) {
    const attn_dims a = make_dims(seg, B, T, Hq, Hkv, D);
    real *os = out, *ls = lse;
    real *s = gt_malloc((size_t)T * sizeof(real));
    acc *oacc = gt_malloc((size_t)D * sizeof(acc));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hq; h++)
            for (int i = 0; i < T; i++) {
                real *o = os + ((size_t)b * T + i) * Hq * D + (size_t)h * D;
                ls[((size_t)b * Hq + h) * T + i] =
                    attend_row(&a, o, s, oacc, qkv, b, h, i, (real)scale);
            }
    free(oacc);
    free(s);
}

/* Gradient buffers of one (batch row, KV group), in double: dq of the current query row, and dk, dv
 * of all T keys, summed over the G query heads of the group. */
typedef struct {
    acc *dq; /* [D] */
    acc *dk; /* [T, D] */
    acc *dv; /* [T, D] */
    real *s; /* [T] scores, then probabilities */
} attn_grads;

/* Adds query row (b, h, i)'s contributions, with P recomputed from the saved lse:
 *   dV_j += P_ij dO_i;  dS_ij = P_ij (dO_i . V_j - dO_i . O_i);
 *   dQ_i = scale sum_j dS_ij K_j (written to dqkv);  dK_j += scale dS_ij Q_i. */
static void grad_row(const attn_dims *a, attn_grads *gr, real *dqkv, const real *dout,
                     const real *qkv, const real *out, real lse, int b, int h, int i, real scale) {
    const int D = a->D, g = h / a->G;
    const size_t orow = ((size_t)b * a->T + i) * a->Hq * D + (size_t)h * D;
    const real *dO = dout + orow, *q = qkv + ((size_t)b * a->T + i) * a->W + q_col(a, h);
    const acc di = dot(dO, out + orow, D);
    scores(a, gr->s, qkv, b, h, i, scale);
    memset(gr->dq, 0, (size_t)D * sizeof(acc));
    for (int j = 0; j <= i; j++) {
        const real p = r_exp(gr->s[j] - lse);
        if (p == 0) continue;
        const real *k = qkv + ((size_t)b * a->T + j) * a->W + k_col(a, g);
        const real *v = qkv + ((size_t)b * a->T + j) * a->W + v_col(a, g);
        const acc ds = (acc)p * (dot(dO, v, D) - di);
        acc *dk = gr->dk + (size_t)j * D, *dv = gr->dv + (size_t)j * D;
        for (int d = 0; d < D; d++) {
            gr->dq[d] += ds * k[d];
            dk[d] += ds * q[d];
            dv[d] += (acc)p * dO[d];
        }
    }
    real *dq = dqkv + ((size_t)b * a->T + i) * a->W + q_col(a, h);
    for (int d = 0; d < D; d++) dq[d] = (real)(gr->dq[d] * scale);
}

/* All query heads of KV group g in batch row b; then writes dk_g, dv_g of the T rows. */
static void grad_group(const attn_dims *a, attn_grads *gr, real *dqkv, const real *dout,
                       const real *qkv, const real *out, const real *lse, int b, int g,
                       real scale) {
    const int D = a->D, T = a->T;
    memset(gr->dk, 0, (size_t)T * D * sizeof(acc));
    memset(gr->dv, 0, (size_t)T * D * sizeof(acc));
    for (int h = g * a->G; h < (g + 1) * a->G; h++)
        for (int i = 0; i < T; i++)
            grad_row(a, gr, dqkv, dout, qkv, out, lse[((size_t)b * a->Hq + h) * T + i], b, h, i,
                     scale);
    for (int j = 0; j < T; j++) {
        real *row = dqkv + ((size_t)b * T + j) * a->W;
        for (int d = 0; d < D; d++) {
            row[k_col(a, g) + d] = (real)(gr->dk[(size_t)j * D + d] * scale);
            row[v_col(a, g) + d] = (real)gr->dv[(size_t)j * D + d];
        }
    }
}

void CPU_FN(cpu_attention_bwd)(gt_backend *be, void *dqkv, const void *dout, const void *qkv,
                               const void *out, const void *lse, const int32_t *seg, float scale,
                               int B, int T, int Hq, int Hkv, int D) {
    const attn_dims a = make_dims(seg, B, T, Hq, Hkv, D);
    attn_grads gr = {
        gt_malloc((size_t)D * sizeof(acc)),
        gt_malloc((size_t)T * D * sizeof(acc)),
        gt_malloc((size_t)T * D * sizeof(acc)),
        gt_malloc((size_t)T * sizeof(real)),
    };
    for (int b = 0; b < B; b++)
        for (int g = 0; g < Hkv; g++)
            grad_group(&a, &gr, dqkv, dout, qkv, out, lse, b, g, (real)scale);
    free(gr.s);
    free(gr.dv);
    free(gr.dk);
    free(gr.dq);
}
