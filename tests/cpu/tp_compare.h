/* For tests of tensor parallelism: gathers a tp model's gradients into full HF tensors over its
 * tp group and compares them with a one-process reference model, or with a snapshot of gradients
 * taken earlier (gt_test_grads). */
#ifndef GT_TEST_TP_COMPARE_H
#define GT_TEST_TP_COMPARE_H

#include <stddef.h>

#include "../../model/model.h"

/* Every gradient of a model as full HF tensors, one per HF name, in the layout's piece order. */
typedef struct {
    int n;           /* tensors */
    char (*name)[96];
    float **g;       /* g[i]: len[i] floats */
    size_t *len;
} gt_test_grads;

/* Gathers m's gradients over tp (NULL or a 1-rank group: m is a one-process model). Replicated
 * elements (norms, shared K/V heads) are held, equal, by several ranks: the sum over ranks divided
 * by the number of non-zero holders gathers every tensor. Collective over tp. */
void gt_test_grads_gather(gt_test_grads *s, gt_model *m, gt_group *tp);
void gt_test_grads_free(gt_test_grads *s);

/* Relative-norm error of got's tensor of the name of want's tensor i against that tensor. */
double gt_test_grads_error(const gt_test_grads *got, const gt_test_grads *want, int i);

/* Worst relative-norm error over every HF tensor of m's gathered gradients against ref's; its name
 * goes to worst[len]. */
double gt_test_tp_grad_error(gt_model *ref, gt_model *m, gt_group *tp, char *worst, size_t len);

#endif
