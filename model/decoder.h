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
 * up to B) is captured once and replayed; gt_decoder_graphs(d, 0) runs the ops directly. */
#ifndef GT_DECODER_H
#define GT_DECODER_H

#include "model.h"

#define GT_DECODER_BUCKETS 16

typedef struct {
    gt_model *m; /* borrowed */
    int B, Tmax; /* sequences and positions the cache holds */
    int V;       /* this rank's lm_head rows (lay.V) */
    void **kc, **vc;              /* [L] each [B, Hkv, Tmax, D] ACT */
    int32_t *tok, *dst, *len;     /* [B] device: token, cache slot b*Tmax+pos, keys to attend */
    int32_t *pos;                 /* [B] device: each token's position */
    int32_t *prefill_dst;         /* [Tmax] device */
    void *x, *xmid, *ln, *qkv, *att, *tmp, *fc1, *h, *rstd; /* step activations of B rows */
    void *logits;                 /* [B, V] ACT, this rank's vocabulary columns */
    void *gathered;               /* [tp, B, V] ACT at tp > 1 */
    float *host;                  /* [tp * B * V] host */
    int graphs;                   /* capture and replay decode steps (where the backend can) */
    void *graph[GT_DECODER_BUCKETS]; /* instantiated graph of bucket 2^i, or NULL */
} gt_decoder;

/* Allocates the cache and buffers for B sequences of at most Tmax positions (prompt and new
 * tokens). Fails when Tmax exceeds the model's context. */
int gt_decoder_init(gt_decoder *d, gt_model *m, int B, int Tmax, gt_err *err);
void gt_decoder_free(gt_decoder *d);
void gt_decoder_graphs(gt_decoder *d, int on);

/* Runs the prompt ids[n] (1 <= n <= Tmax) of sequence b through the model, stores its K/V at
 * positions 0..n-1 and writes the logits of its last position to logits[vocab_size] (float). */
void gt_decoder_prefill(gt_decoder *d, int b, const int32_t *ids, int n, float *logits);

/* One decode step of sequences 0..B-1 (B <= d->B): tok[b] at position pos[b] (the number of
 * tokens of sequence b already cached; pos[b] < Tmax) is appended to the cache, and
 * logits[B, vocab_size] (float) receives its next-token logits. */
void gt_decoder_step(gt_decoder *d, int B, const int32_t *tok, const int32_t *pos, float *logits);

#endif
