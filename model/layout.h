/* The parameters of one tensor-parallel rank, stored in one contiguous buffer (and the gradients
 * in a second one with the same element offsets), and the map between that buffer and the full
 * HF tensors.
 *
 * Per rank, in this order (elements of the ACT kind; l = 0..L-1):
 *   wte        [V, C]            embedding rows vstart..vstart+V-1 (tied lm_head)
 *   layer l:   ln1 [C]           input_layernorm (zero-centered gamma)
 *              qkv [Q, C]        fused, grouped by KV group: [q heads of g, k_g, v_g] per group g;
 *                                Q = (Hq + 2*Hkv) * D
 *              o   [C, Hq*D]     o_proj columns of this rank's heads
 *              ln2 [C]           post_attention_layernorm
 *              fc1 [2F, C]       [gate rows of this rank; up rows of this rank]
 *              fc2 [C, F]        down_proj columns of this rank
 *   lnf        [C]               final norm
 * Hq, Hkv, F and V are this rank's shares; when the model has fewer KV heads than tp ranks each
 * rank holds (a replica of) the one KV head its query heads use. */
#ifndef GT_LAYOUT_H
#define GT_LAYOUT_H

#include "config.h"

typedef struct {
    size_t ln1, qkv, o, ln2, fc1, fc2; /* element offsets */
} gt_layer_offsets;

typedef struct {
    int tp_rank, tp_size;
    int C, L, D;
    int Hq, Hkv, G;  /* this rank's query heads, KV heads, query heads per KV head */
    int F;           /* this rank's ffn width */
    int V;           /* this rank's vocab rows (padded vocab / tp) */
    int64_t vstart;  /* first vocab id of this rank */
    int vocab;       /* the model's real vocab size */
    int Q;           /* fused qkv rows of this rank */
    size_t wte, lnf; /* element offsets */
    gt_layer_offsets *layer; /* [L] */
    size_t count;    /* elements in the parameter buffer */
} gt_layout;

/* One contiguous block of the rank's buffer and where it lives in a full HF tensor: rows
 * [row0, row0+nrows) x columns [col0, col0+ncols) of HF tensor `name` (viewed 2-D; 1-D tensors
 * are [1, n]) are the elements [dst, dst + nrows*ncols) of the buffer, row-major. */
typedef struct {
    char name[96];
    int64_t row0, nrows, col0, ncols;
    size_t dst;
} gt_piece;

/* Computes the layout for tp rank tp_rank of tp_size. Fails (with the reason and the tp values
 * that would work) when the model cannot be split that way. */
int gt_layout_init(gt_layout *lay, const gt_config *cfg, int tp_rank, int tp_size, gt_err *err);
void gt_layout_free(gt_layout *lay);

/* The pieces of this rank, in buffer order; *count receives their number. Caller frees. */
gt_piece *gt_layout_pieces(const gt_layout *lay, const gt_config *cfg, int *count);

/* Full HF shape of a piece's tensor: [rows, cols] (cols = 1-D length for 1-D tensors, rows = 1). */
int gt_hf_tensor_dims(const gt_config *cfg, const char *name, int64_t *rows, int64_t *cols, int *ndim);

#endif
