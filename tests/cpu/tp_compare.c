#include "tp_compare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static int find(const gt_test_grads *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) return i;
    return -1;
}

void gt_test_grads_gather(gt_test_grads *s, gt_model *m, gt_group *tp) {
    int np;
    gt_piece *pc = gt_layout_pieces(&m->lay, &m->cfg, &np);
    s->n = 0;
    s->name = gt_calloc((size_t)np, sizeof *s->name);
    s->g = gt_calloc((size_t)np, sizeof *s->g);
    s->len = gt_calloc((size_t)np, sizeof *s->len);
    for (int i = 0; i < np; i++) {
        if (find(s, pc[i].name) >= 0) continue; /* a tensor in several pieces */
        int64_t r, c;
        int nd;
        gt_hf_tensor_dims(&m->cfg, pc[i].name, &r, &c, &nd);
        size_t n = (size_t)(r * c);
        float *got = gt_calloc(n, 4), *cover = gt_calloc(n, 4);
        gt_model_export_tensor(m, 1, pc[i].name, got);
        if (tp && tp->size > 1) {
            for (size_t k = 0; k < n; k++) cover[k] = got[k] != 0.0f;
            gt_allreduce_host(tp, got, n, GT_F32, GT_RED_SUM);
            gt_allreduce_host(tp, cover, n, GT_F32, GT_RED_SUM);
            for (size_t k = 0; k < n; k++) got[k] /= cover[k] > 0 ? cover[k] : 1.0f;
        }
        free(cover);
        snprintf(s->name[s->n], sizeof s->name[s->n], "%s", pc[i].name);
        s->g[s->n] = got;
        s->len[s->n++] = n;
    }
    free(pc);
}

void gt_test_grads_free(gt_test_grads *s) {
    for (int i = 0; i < s->n; i++) free(s->g[i]);
    free(s->g);
    free(s->len);
    free(s->name);
    s->n = 0;
}

double gt_test_grads_error(const gt_test_grads *got, const gt_test_grads *want, int i) {
    int j = find(got, want->name[i]);
    GT_ASSERT(j >= 0 && got->len[j] == want->len[i], "%s: no gradient of its shape to compare", want->name[i]);
    return gt_rel_err_f(got->g[j], want->g[i], want->len[i]);
}

double gt_test_tp_grad_error(gt_model *ref, gt_model *m, gt_group *tp, char *worst, size_t len) {
    gt_test_grads a, b;
    gt_test_grads_gather(&a, ref, NULL);
    gt_test_grads_gather(&b, m, tp);
    double w = 0;
    for (int i = 0; i < a.n; i++) {
        double e = gt_test_grads_error(&b, &a, i); /* tensor i of a */
        if (!(e <= w)) w = e, snprintf(worst, len, "%s", a.name[i]);
    }
    gt_test_grads_free(&a);
    gt_test_grads_free(&b);
    return w;
}
