/* Vocab-parallel cross-entropy (Megatron style): each tp rank reduces its own vocab columns to a
 * triple per token, the triples of all ranks are combined, and the gradient stays local.
 *   part[n] = (m, s, t): m = max_v l[n, v], s = sum_v exp(l[n, v] - m), t = l[n, target] or 0
 *   combine: M = max_r m_r, S = sum_r s_r exp(m_r - M), lse = M + log S, tgt = sum_r t_r
 *   loss_sum += sum over tokens with target >= 0 of (lse - tgt)
 * target < 0 (HF's -100) marks a token that is not predicted. */
#include "cpu_kernels.h"

#include <string.h>

/* Column of token id t in this rank's logits, or -1 if t is not in [vstart, vstart + V). */
static int64_t local_col(int32_t t, int64_t vstart, int V) {
    const int64_t c = (int64_t)t - vstart;
    return (t >= 0 && c >= 0 && c < V) ? c : -1;
}

/* part[N, 3], logits[N, V]. */
void CPU_FN(cpu_ce_partial)(gt_backend *be, void *part, const void *logits, const int32_t *target,
                            int64_t vstart, int V, int N) {
    real *p = part;
    const real *ls = logits;
    for (int n = 0; n < N; n++) {
        const real *l = ls + (size_t)n * V;
        real m = -INFINITY;
        for (int v = 0; v < V; v++)
            if (l[v] > m) m = l[v];
        acc s = 0;
        for (int v = 0; v < V; v++) s += r_exp(l[v] - m);
        const int64_t c = local_col(target[n], vstart, V);
        p[3 * (size_t)n] = m;
        p[3 * (size_t)n + 1] = (real)s;
        p[3 * (size_t)n + 2] = c >= 0 ? l[c] : (real)0;
    }
}

/* parts[tp, N, 3] -> lse[N]; loss_sum[0] += sum of the per-token losses (summed in double). */
void CPU_FN(cpu_ce_finish)(gt_backend *be, void *lse, void *loss_sum, const void *parts,
                           const int32_t *target, int tp, int N) {
    real *lses = lse, *loss = loss_sum;
    const real *ps = parts;
    acc total = 0;
    for (int n = 0; n < N; n++) {
        real m = -INFINITY;
        for (int r = 0; r < tp; r++) {
            const real mr = ps[((size_t)r * N + n) * 3];
            if (mr > m) m = mr;
        }
        acc s = 0, tgt = 0;
        for (int r = 0; r < tp; r++) {
            const real *pr = ps + ((size_t)r * N + n) * 3;
            s += (acc)pr[1] * r_exp(pr[0] - m);
            tgt += pr[2];
        }
        const real l = m + r_log((real)s);
        lses[n] = l;
        if (target[n] >= 0) total += (acc)l - tgt;
    }
    loss[0] = (real)((acc)loss[0] + total);
}

/* dlogits[N, V] = (exp(l - lse) - onehot(target)) * dscale; zero rows where target < 0.
 * Each element is read before it is written, so dlogits may alias logits. */
void CPU_FN(cpu_ce_backward)(gt_backend *be, void *dlogits, const void *logits,
                             const int32_t *target, const void *lse, float dscale, int64_t vstart,
                             int V, int N) {
    real *ds = dlogits;
    const real *ls = logits, *lses = lse;
    const real scale = (real)dscale;
    for (int n = 0; n < N; n++) {
        real *d = ds + (size_t)n * V;
        const real *l = ls + (size_t)n * V;
        if (target[n] < 0) {
            memset(d, 0, (size_t)V * sizeof(real));
            continue;
        }
        const real lse_n = lses[n];
        const int64_t c = local_col(target[n], vstart, V);
        const real lc = c >= 0 ? l[c] : (real)0; /* read before an aliased d overwrites it */
        for (int v = 0; v < V; v++) d[v] = r_exp(l[v] - lse_n) * scale;
        if (c >= 0) d[c] = (r_exp(lc - lse_n) - (real)1) * scale;
    }
}
