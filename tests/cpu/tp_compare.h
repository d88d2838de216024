/* For tests of tensor parallelism: gathers a tp model's gradients into full HF tensors over its
 * tp group and compares them with a one-process reference model. */
#ifndef GT_TEST_TP_COMPARE_H
#define GT_TEST_TP_COMPARE_H

#include <stddef.h>

#include "../../model/model.h"

/* Worst relative-norm error over every HF tensor; its name goes to worst[len]. Replicated elements
 * (norms, shared K/V heads) are held, equal, by several ranks: the sum over ranks divided by the
 * number of non-zero holders gathers every tensor. */
double gt_test_tp_grad_error(gt_model *ref, gt_model *m, gt_group *tp, char *worst, size_t len);

#endif
