/* The full-forward reference of the generation tests (tests/cpu/test_generate.c,
 * test_generate_fp8.c): what a decode step's logits must equal. Header-only (static functions): each
 * test is one source file. */
#ifndef GT_TEST_DECODE_HARNESS_H
#define GT_TEST_DECODE_HARNESS_H

#include <string.h>

#include "../../model/model.h"

/* out[vocab] = the last row of the full forward's logits over seq[0..n), its tokens padded to
 * padded (>= n) after the prefix with token 0 (FP8 GEMMs run on multiples of 16 rows; causal
 * attention keeps the padding out of row n - 1). */
static void full_last_logits(gt_model *m, const int32_t *seq, int n, int padded, float *out) {
    int V = m->cfg.vocab_size;
    int32_t *tok = gt_malloc((size_t)padded * sizeof *tok), *tgt = gt_malloc((size_t)padded * sizeof *tgt);
    int32_t *pos = gt_malloc((size_t)padded * sizeof *pos);
    float *all = gt_malloc((size_t)padded * V * sizeof *all);
    for (int t = 0; t < padded; t++) tok[t] = t < n ? seq[t] : 0, tgt[t] = -1, pos[t] = t;
    gt_model_alloc_batch(m, 1, padded);
    gt_model_set_batch(m, tok, tgt, pos, NULL);
    gt_model_forward(m, 0, 0.0f, all);
    memcpy(out, all + (size_t)(n - 1) * V, (size_t)V * sizeof *out);
    free(all);
    free(pos);
    free(tgt);
    free(tok);
}

#endif
