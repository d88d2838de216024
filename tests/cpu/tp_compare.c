#include "tp_compare.h"

#include <stdio.h>
#include <stdlib.h>

#include "check.h"

double gt_test_tp_grad_error(gt_model *ref, gt_model *m, gt_group *tp, char *worst, size_t len) {
    int np;
    gt_piece *pc = gt_layout_pieces(&ref->lay, &ref->cfg, &np);
    double w = 0;
    for (int i = 0; i < np; i++) {
        if (i > 0 && !strcmp(pc[i].name, pc[i - 1].name)) continue;
        int64_t r, c;
        int nd;
        gt_hf_tensor_dims(&ref->cfg, pc[i].name, &r, &c, &nd);
        size_t n = (size_t)(r * c);
        float *want = gt_calloc(n, 4), *got = gt_calloc(n, 4), *cover = gt_calloc(n, 4);
        gt_model_export_tensor(ref, 1, pc[i].name, want);
        gt_model_export_tensor(m, 1, pc[i].name, got);
        for (size_t k = 0; k < n; k++) cover[k] = got[k] != 0.0f;
        gt_allreduce_host(tp, got, n, GT_F32, GT_RED_SUM);
        gt_allreduce_host(tp, cover, n, GT_F32, GT_RED_SUM);
        for (size_t k = 0; k < n; k++) got[k] /= cover[k] > 0 ? cover[k] : 1.0f;
        double e = gt_rel_err_f(got, want, n);
        if (!(e <= w)) w = e, snprintf(worst, len, "%s", pc[i].name);
        free(want), free(got), free(cover);
    }
    free(pc);
    return w;
}
