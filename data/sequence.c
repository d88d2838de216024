#include "sequence.h"

static uint8_t attr_at(const gt_tokens *tk, int64_t i) {
    return tk->attr ? tk->attr[i] : (uint8_t)GT_TOK_TARGET;
}

int64_t gt_fill_sequence(const gt_tokens *tk, int64_t t0, int T, int doc_mask, int32_t *tok,
                         int32_t *tgt, int32_t *pos, int32_t *seg) {
    int64_t targets = 0;
    int32_t s = 0, p = 0;
    for (int t = 0; t < T; t++) {
        int64_t i = t0 + t;
        if (doc_mask && t > 0 && (attr_at(tk, i) & GT_TOK_DOC_START)) s++, p = 0;
        tok[t] = (int32_t)tk->tokens[i];
        pos[t] = p++;
        seg[t] = s;
        tgt[t] = -1;
        if (t + 1 == T) continue;
        uint8_t nx = attr_at(tk, i + 1);
        /* A document's first token is never predicted across documents when they are masked. */
        if ((nx & GT_TOK_TARGET) && !(doc_mask && (nx & GT_TOK_DOC_START))) {
            tgt[t] = (int32_t)tk->tokens[i + 1];
            targets++;
        }
    }
    return targets;
}
