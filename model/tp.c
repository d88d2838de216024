#include "tp.h"

#include <stdlib.h>

gt_dtype gt_kind_dtype(const gt_model *m, gt_kind kind) {
    switch (m->ops->size[kind]) {
    case 2: return GT_BF16;
    case 4: return GT_F32;
    case 8: return GT_F64;
    default: GT_DIE("backend %s: no dtype of %zu bytes", m->ops->name, m->ops->size[kind]);
    }
}

static int tp_active(const gt_model *m) { return m->tp && m->tp->size > 1; }

void gt_model_set_tp(gt_model *m, gt_group *tp) {
    GT_ASSERT(tp->size == m->lay.tp_size && tp->rank == m->lay.tp_rank,
              "tp group (rank %d of %d) does not match the model layout (rank %d of %d)", tp->rank,
              tp->size, m->lay.tp_rank, m->lay.tp_size);
    m->tp = tp;
}

void gt_model_tp_sum(gt_model *m, void *buf, size_t n, gt_kind kind) {
    if (tp_active(m)) gt_allreduce(m->tp, buf, n, gt_kind_dtype(m, kind), GT_RED_SUM);
}

void gt_model_tp_sum_start(gt_model *m, void *buf, size_t n, gt_kind kind) {
    if (!tp_active(m)) return;
    if (!m->tp_overlap || m->dp_overlap) {
        gt_model_tp_sum(m, buf, n, kind);
        return;
    }
    gt_allreduce_start(m->tp, buf, n, gt_kind_dtype(m, kind));
    m->tp_started = 1;
}

void gt_model_tp_sum_wait(gt_model *m) {
    if (!m->tp_started) return;
    gt_group_wait(m->tp);
    m->tp_started = 0;
}

void gt_model_ce_parts(gt_model *m, const void *logits, const int32_t *target, int n, int V) {
    const gt_layout *L = &m->lay;
    if (!tp_active(m)) {
        m->ops->ce_partial(m->be, m->ce_parts, logits, target, L->vstart, V, n);
        return;
    }
    if (!m->ce_part_local) {
        gt_batch_bytes z;
        gt_model_batch_bytes(L, m->ops->size, m->ce_chunk_cap, m->B, m->T, &z);
        m->ce_part_local = m->ops->alloc(m->be, z.ce_part_local);
    }
    m->ops->ce_partial(m->be, m->ce_part_local, logits, target, L->vstart, V, n);
    gt_allgather(m->tp, m->ce_part_local, m->ce_parts, (size_t)n * 3, gt_kind_dtype(m, GT_STAT));
}

/* With fewer KV heads than tp ranks, the ranks sharing a KV head each hold a replica of its K/V
 * weights and computed part of its gradient: sum them. Each rank puts its K/V gradient rows into
 * the slot of its KV head in a zeroed [kv_heads, 2, D, C] buffer; one sum over tp fills every slot. */
size_t gt_model_kv_sum_bytes(const gt_config *c, const gt_layout *L, size_t grad_size) {
    if (L->tp_size <= 1 || c->num_key_value_heads >= L->tp_size) return 0;
    return (size_t)c->num_key_value_heads * 2 * (size_t)L->D * L->C * grad_size;
}

static void sum_replicated_kv(gt_model *m) {
    const gt_layout *L = &m->lay;
    const gt_config *c = &m->cfg;
    if (!tp_active(m) || c->num_key_value_heads >= L->tp_size) return;
    size_t slot = 2 * (size_t)L->D * L->C, gsz = gt_model_grad_size(m);
    size_t total = (size_t)c->num_key_value_heads * slot;
    if (!m->kv_sum) m->kv_sum = m->ops->alloc(m->be, gt_model_kv_sum_bytes(c, L, gsz));
    int kvh = (L->tp_rank * L->Hq) / (c->num_attention_heads / c->num_key_value_heads);
    for (int l = 0; l < L->L; l++) {
        /* one local KV group: rows [G*D, (G+2)*D) of the fused qkv are k then v */
        char *kv = (char *)m->grads + (L->layer[l].qkv + (size_t)L->G * L->D * L->C) * gsz;
        char *mine = (char *)m->kv_sum + (size_t)kvh * slot * gsz;
        m->ops->zero(m->be, m->kv_sum, total * gsz);
        m->ops->copy(m->be, mine, kv, slot * gsz);
        gt_allreduce(m->tp, m->kv_sum, total, gt_kind_dtype(m, m->grad_kind), GT_RED_SUM);
        m->ops->copy(m->be, kv, mine, slot * gsz);
    }
}

void gt_model_overlap_dp(gt_model *m, gt_group *dp) { m->dp_overlap = dp && dp->size > 1 ? dp : NULL; }

void gt_model_overlap_tp(gt_model *m, int on) { m->tp_overlap = on; }

/* During an overlapped backward: starts the dp sum of gradient elements [off, off + n). */
void gt_model_dp_start(gt_model *m, size_t off, size_t n) {
    if (!m->dp_overlap) return;
    if (m->dp_shard_group == m->dp_overlap)
        gt_reduce_owners_start(m->dp_overlap, m->grads, off, n, m->dp_shard, gt_kind_dtype(m, m->grad_kind));
    else
        gt_allreduce_start(m->dp_overlap, (char *)m->grads + off * gt_model_grad_size(m), n,
                           gt_kind_dtype(m, m->grad_kind));
    m->dp_started = m->dp_overlap;
}

void gt_model_dp_finish(gt_model *m) {
    if (!m->dp_started) return;
    gt_group_wait(m->dp_started);
    m->dp_started = NULL;
}

void gt_model_reduce_grads(gt_model *m, gt_group *dp) {
    GT_ASSERT(!m->dp_shard_group || dp == m->dp_shard_group,
              "the model is sharded over a dp group: its gradients must be reduced over that group");
    if (m->dp_started) {
        gt_model_dp_finish(m);
    } else if (dp && dp->size > 1 && dp == m->dp_shard_group) {
        gt_model_dp_reduce_shards(m);
    } else if (dp && dp->size > 1) {
        gt_allreduce(dp, m->grads, m->lay.count, gt_kind_dtype(m, m->grad_kind), GT_RED_SUM);
    }
    /* A sum too: its order with the dp sum does not matter. Sharded, only the rank's own range holds
     * dp sums, but the tp ranks of one dp rank own the same range (their layouts have the same
     * offsets), so the sum over tp is right there and harmless elsewhere. */
    sum_replicated_kv(m);
}

/* Replication class of a piece: 0 = sharded (counted once), 1 = replicated on every tp rank
 * (norms), 2 = a K/V head replicated on tp / kv_heads ranks. */
static int piece_class(const gt_model *m, const gt_piece *p) {
    if (strstr(p->name, "norm")) return 1;
    if (m->cfg.num_key_value_heads < m->lay.tp_size &&
        (strstr(p->name, "k_proj") || strstr(p->name, "v_proj")))
        return 2;
    return 0;
}

double gt_model_grad_sumsq(gt_model *m) {
    const gt_ops *o = m->ops;
    size_t st = o->size[GT_STAT], gsz = gt_model_grad_size(m);
    if (!m->sumsq) m->sumsq = o->alloc(m->be, 3 * st);
    o->zero(m->be, m->sumsq, 3 * st);
    int np;
    gt_piece *pc = gt_layout_pieces(&m->lay, &m->cfg, &np);
    size_t lo, hi; /* the elements this rank holds the (dp-summed) gradients of */
    gt_model_shard_range(m, &lo, &hi);
    /* merge runs of adjacent pieces of one class into one reduction */
    for (int i = 0; i < np;) {
        int cls = piece_class(m, &pc[i]);
        size_t start = pc[i].dst, end = start + (size_t)(pc[i].nrows * pc[i].ncols);
        int j = i + 1;
        while (j < np && piece_class(m, &pc[j]) == cls && pc[j].dst == end)
            end += (size_t)(pc[j].nrows * pc[j].ncols), j++;
        if (start < lo) start = lo;
        if (end > hi) end = hi;
        if (start < end)
            o->grad_sumsq(m->be, (char *)m->sumsq + (size_t)cls * st, (char *)m->grads + start * gsz, end - start);
        i = j;
    }
    free(pc);
    gt_model_tp_sum(m, m->sumsq, 3, GT_STAT);
    if (m->dp_shard_group) gt_allreduce(m->dp_shard_group, m->sumsq, 3, gt_kind_dtype(m, GT_STAT), GT_RED_SUM);
    double v[3];
    if (st == sizeof(double)) o->download_raw(m->be, v, m->sumsq, sizeof v);
    else {
        float f[3];
        o->download_raw(m->be, f, m->sumsq, sizeof f);
        for (int k = 0; k < 3; k++) v[k] = f[k];
    }
    int tp = m->lay.tp_size, kv = m->cfg.num_key_value_heads;
    double replicas = kv < tp ? (double)tp / kv : 1.0;
    return v[0] + v[1] / tp + v[2] / replicas;
}
