/* HF-style random initialization: weights ~ normal(0, initializer_range) (sample std within 3%
 * and mean near 0), norms and the padding row zero, and the same model at every tp layout: the
 * slices of tp=2 ranks 0 and 1 together equal the tp=1 tensors exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../model/model.h"
#include "check.h"

int main(void) {
    gt_check c = {0};
    gt_err e;
    gt_config cfg;
    GT_ASSERT(!gt_config_load(&cfg, "tests/fixtures/gqa", &e), "%s", e.msg);
    gt_backend *be = gt_cpu_backend_create();
    gt_model a, r0, r1;
    GT_ASSERT(!gt_model_init(&a, &cfg, gt_cpu_ops(), be, 0, 1, &e) && !gt_model_init(&r0, &cfg, gt_cpu_ops(), be, 0, 2, &e) &&
                  !gt_model_init(&r1, &cfg, gt_cpu_ops(), be, 1, 2, &e),
              "%s", e.msg);
    gt_model_init_random(&a, 5);
    gt_model_init_random(&r0, 5);
    gt_model_init_random(&r1, 5);
    int np;
    gt_piece *pc = gt_layout_pieces(&a.lay, &cfg, &np);
    for (int i = 0; i < np; i++) {
        if (i > 0 && !strcmp(pc[i].name, pc[i - 1].name)) continue;
        int64_t rows, cols;
        int nd;
        gt_hf_tensor_dims(&cfg, pc[i].name, &rows, &cols, &nd);
        size_t n = (size_t)(rows * cols);
        float *x = gt_calloc(n, 4), *y = gt_calloc(n, 4);
        gt_model_export_tensor(&a, 0, pc[i].name, x);
        gt_model_export_tensor(&r0, 0, pc[i].name, y);
        gt_model_export_tensor(&r1, 0, pc[i].name, y);
        int same = !memcmp(x, y, n * 4);
        double s = 0, s2 = 0;
        for (size_t k = 0; k < n; k++) s += x[k], s2 += (double)x[k] * x[k];
        double mean = s / n, std = sqrt(s2 / n - mean * mean);
        if (strstr(pc[i].name, "norm")) {
            gt_check_true(&c, s2 == 0, "%s: norm weights not zero", pc[i].name);
        } else {
            double want = cfg.initializer_range;
            gt_check_true(&c, fabs(std - want) < 0.03 * want + 3 * want / sqrt((double)n) && fabs(mean) < 4 * want / sqrt((double)n),
                          "%s: mean %.4f std %.4f, want 0 and %.4f", pc[i].name, mean, std, want);
        }
        if (!strcmp(pc[i].name, "model.embed_tokens.weight")) {
            double pad = 0;
            for (int64_t k = 0; k < cols; k++) pad += fabs(x[cfg.pad_token_id * cols + k]);
            gt_check_true(&c, pad == 0, "padding row %d not zero", cfg.pad_token_id);
        }
        gt_check_true(&c, same, "%s: tp=2 slices differ from tp=1", pc[i].name);
        free(x);
        free(y);
    }
    free(pc);
    gt_model_free(&a);
    gt_model_free(&r0);
    gt_model_free(&r1);
    gt_cpu_backend_destroy(be);
    return gt_check_done(&c, "model_init");
}
