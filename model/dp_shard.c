/* The model's side of a data-parallel sharded optimizer (ZeRO-1, DESIGN.md §3): the flat parameter
 * and gradient buffers of a tp rank, seen as dp equal blocks of `shard` elements (the last padded),
 * block r owned by dp rank r. Its gradients are reduced onto their owner only; after the owner's
 * update its parameters are gathered to every dp rank. */
#include "model.h"
#include "tp.h"

/* A copy of buf (n of whose elements of `size` bytes are valid) with room for total elements, the
 * rest zero. */
static void *grow(gt_model *m, void *buf, size_t n, size_t total, size_t size) {
    void *to = m->ops->alloc(m->be, total * size);
    m->ops->copy(m->be, to, buf, n * size);
    m->ops->release(m->be, buf);
    return to;
}

void gt_model_shard_dp(gt_model *m, gt_group *dp) {
    if (!dp || dp->size <= 1) return;
    GT_ASSERT(!m->dp_shard_group, "the model is already sharded over dp");
    size_t count = m->lay.count, n = (size_t)dp->size;
    m->dp_shard = (count + n - 1) / n;
    m->params = grow(m, m->params, count, n * m->dp_shard, m->ops->size[GT_ACT]);
    m->grads = grow(m, m->grads, count, n * m->dp_shard, gt_model_grad_size(m));
    m->dp_shard_group = dp;
}

void gt_model_shard_range(const gt_model *m, size_t *lo, size_t *hi) {
    size_t count = m->lay.count;
    if (!m->dp_shard_group) {
        *lo = 0, *hi = count;
        return;
    }
    size_t a = (size_t)m->dp_shard_group->rank * m->dp_shard, b = a + m->dp_shard;
    *lo = a < count ? a : count;
    *hi = b < count ? b : count;
}

void gt_model_dp_reduce_shards(gt_model *m) {
    gt_group *g = m->dp_shard_group;
    size_t gs = gt_model_grad_size(m);
    /* in place: the rank's block receives the sum of everyone's */
    gt_reduce_scatter(g, m->grads, (char *)m->grads + (size_t)g->rank * m->dp_shard * gs, m->dp_shard,
                      gt_kind_dtype(m, m->grad_kind), GT_RED_SUM);
}

void gt_model_dp_gather_params(gt_model *m) {
    gt_group *g = m->dp_shard_group;
    if (!g) return;
    size_t as = m->ops->size[GT_ACT];
    gt_allgather(g, (char *)m->params + (size_t)g->rank * m->dp_shard * as, m->params, m->dp_shard,
                 gt_kind_dtype(m, GT_ACT));
}
