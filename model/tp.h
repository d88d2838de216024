/* Tensor-parallel communication inside the model (DESIGN.md §3), used by model/gemma.c. */
#ifndef GT_MODEL_TP_H
#define GT_MODEL_TP_H

#include "model.h"

/* The dtype of a backend's elements of one kind. */
gt_dtype gt_kind_dtype(const gt_model *m, gt_kind kind);
/* Sum of buf[n] over the tp group (row-parallel outputs, column-parallel input gradients). */
void gt_model_tp_sum(gt_model *m, void *buf, size_t n, gt_kind kind);
/* The same, started: with m->tp_overlap it runs on the group's communication stream until
 * gt_model_tp_sum_wait, so that independent work (the weight gradient's GEMM) overlaps it; without,
 * or while the backward also overlaps dp reductions (two communicators busy at once could order
 * their kernels differently on different GPUs), it completes here. buf must not be touched until
 * the wait. */
void gt_model_tp_sum_start(gt_model *m, void *buf, size_t n, gt_kind kind);
void gt_model_tp_sum_wait(gt_model *m);
/* Cross-entropy partials of the current chunk of n tokens: computes this rank's part and gathers
 * every rank's into m->ce_parts [tp, n, 3]. */
/* Overlapped backward: starts the dp sum of gradient elements [off, off + n) (no-op otherwise). */
void gt_model_dp_start(gt_model *m, size_t off, size_t n);
/* Waits for dp sums an overlapped backward started and nobody reduced yet: before the gradients
 * are written again they must be done with them. */
void gt_model_dp_finish(gt_model *m);
/* Sharded over dp: the reduce-scatter of the whole gradient buffer (model/dp_shard.c). */
void gt_model_dp_reduce_shards(gt_model *m);
void gt_model_ce_parts(gt_model *m, const void *logits, const int32_t *target, int n, int V);

/* Bytes of the buffer that sums replicated K/V heads' gradients over tp (0 where none is
 * replicated), as sum_replicated_kv allocates it, for gradient elements of grad_size bytes. */
size_t gt_model_kv_sum_bytes(const gt_config *c, const gt_layout *L, size_t grad_size);

#endif
