/* One training or evaluation sequence cut from a token stream: the model inputs of T consecutive
 * tokens, shared by the loader (training, validation) and `gemmatron eval`.
 *
 * For tokens [t0, t0+T) of a stream with attributes (data/shard.h):
 *   tok[t]  the token id
 *   tgt[t]  the next token's id when the next token is inside the sequence, has the target bit and
 *           (with doc masking) does not begin a document; else -1. The last token has no target.
 *   pos[t]  position: 0 at the sequence start and, with doc masking, 0 again at each document start
 *   seg[t]  segment (document) id, 0 at the sequence start, +1 at each document start (doc masking
 *           on); all 0 with doc masking off, so attention then crosses documents
 * A stream without attributes is all targets and one document. */
#ifndef GT_SEQUENCE_H
#define GT_SEQUENCE_H

#include "shard.h"

/* Fills tok/tgt/pos/seg[T] from tokens [t0, t0+T) of tk (t0 + T <= tk->count); returns the number of
 * targets. */
int64_t gt_fill_sequence(const gt_tokens *tk, int64_t t0, int T, int doc_mask, int32_t *tok,
                         int32_t *tgt, int32_t *pos, int32_t *seg);

#endif
