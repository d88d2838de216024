/* Generation with a KV cache: a static cache for B sequences of at most Tmax positions, filled by
 * a prefill of each prompt through the training path's forward (model/gemma.c) and extended one
 * token per sequence by decode steps that attend over it (ops kv_write, attention_decode).
 *
 * Each sequence has its own length and positions, so prompts of different lengths batch together:
 * sequence b is prefilled alone (positions 0..n-1, exactly the full forward), then every decode
 * step feeds each sequence's last token at its own position. At tp > 1 each rank caches its KV
 * heads (replicas where the model has fewer KV heads than ranks, as in training), and the lm_head's
 * vocab-parallel logits are gathered into full rows on every rank, so that every rank picks the
 * same next tokens.
 *
 * On a backend with graphs (ops graph_begin..), the decode step of each batch bucket (1, 2, 4, ..
 * up to B) is captured once and replayed; gt_decoder_graphs(d, 0) runs the ops directly.
 *
 * With the model's FP8 on (a calibrated directory's state, train/ckpt/calibrated.h), init puts it
 * in inference mode (gt_model_fp8_inference: the loaded scales, never updated) and every GEMM whose
 * shape FP8 takes runs in FP8. FP8 GEMMs need multiples of 16 rows (model/linear.c), so the decoder
 * pads them: a decode step's GEMMs run on its rows rounded up to 16 (the other ops on its rows
 * alone; the padding rows' results are never read), a prefill of n tokens runs round16(n) tokens
 * (the padding after the prompt, which causal attention keeps out of the prompt's rows), and the
 * prefill's lm_head one row padded to 16. GEMM rows are independent and the scales fixed, so a
 * sequence's logits do not depend on the padding or on the other sequences of the batch. */
#ifndef GT_DECODER_H
#define GT_DECODER_H

#include "model.h"

#define GT_DECODER_BUCKETS 16

typedef struct {
    gt_model *m; /* borrowed */
    int B, Tmax; /* sequences and positions the cache holds */
    int fp8;     /* the model's GEMMs in FP8 (inference mode): their rows padded to 16 */
    int V;       /* this rank's lm_head rows (lay.V) */
    void **kc, **vc;              /* [L] each [B, Hkv, Tmax, D] ACT */
    int32_t *inputs;              /* [4, B] device, one upload per step: */
    int32_t *tok, *pos, *dst, *len; /* its rows: token, position, cache slot b*Tmax+pos, keys to attend */
    void *best_val;               /* [B] STAT: the largest logit of this rank's columns */
    int32_t *best_idx;            /* [B] device: its column */
    void *gathered_best;          /* [tp, B] STAT, [tp, B] int32 at tp > 1 */
    int32_t *gathered_idx;
    int32_t *prefill_dst;         /* [Tmax] device */
    void *x, *xmid, *ln, *qkv, *att, *tmp, *fc1, *h, *rstd; /* step activations of B rows (FP8: B rounded up to 16) */
    void *logits;                 /* [rows as above, V] ACT, this rank's vocabulary columns */
    void *gathered;               /* [tp, B, V] ACT at tp > 1 */
    float *host;                  /* [tp * B * V] host */
    int graphs;                   /* capture and replay decode steps (where the backend can) */
    void *graph[GT_DECODER_BUCKETS]; /* instantiated graph of bucket 2^i, or NULL */
} gt_decoder;

/* Allocates the cache and buffers for B sequences of at most Tmax positions (prompt and new
 * tokens), and with the model's FP8 on, puts it in inference mode. Fails when Tmax exceeds the
 * model's context. */
int gt_decoder_init(gt_decoder *d, gt_model *m, int B, int Tmax, gt_err *err);
void gt_decoder_free(gt_decoder *d);
void gt_decoder_graphs(gt_decoder *d, int on);

/* Runs the prompt ids[n] (1 <= n <= Tmax) of sequence b through the model, stores its K/V at
 * positions 0..n-1 and writes the logits of its last position to logits[vocab_size] (float), and
 * the greedy next token (the first largest logit) to *next; either may be NULL. Greedy decoding
 * with logits NULL moves only the B picks, not the logits, to the host. */
void gt_decoder_prefill(gt_decoder *d, int b, const int32_t *ids, int n, float *logits, int32_t *next);

/* One decode step of sequences 0..B-1 (B <= d->B): tok[b] at position pos[b] (the number of
 * tokens of sequence b already cached; pos[b] < Tmax) is appended to the cache;
 * logits[B, vocab_size] (float, may be NULL) receives the next-token logits and next[B] (may be
 * NULL) the greedy next tokens. */
void gt_decoder_step(gt_decoder *d, int B, const int32_t *tok, const int32_t *pos, float *logits, int32_t *next);

#endif
