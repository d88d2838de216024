/* The data loader: token shards -> packed sequences for one data-parallel rank, in a deterministic
 * shuffled order, with an exact resumable position.
 *
 * Packing: the shards (files and globs, in the order given, each glob's matches sorted) are
 * concatenated into one token stream; every shard starts a new document. Sequence k is tokens
 * [k*T, (k+1)*T) of the stream (the tail shorter than T is not used), filled by gt_fill_sequence
 * (data/sequence.h): documents are packed side by side, and with doc masking attention does not
 * cross a document start, positions restart there and a document's first token is not a target.
 *
 * Order: epoch e visits all nseq sequences in order_e, a permutation drawn from (seed, e) (the
 * identity without shuffling). The data-parallel group reads one stream of slots: the epochs' orders
 * one after another. A position {epoch, index} names the group's next slot; rank r of dp takes slot
 * index + r, and every sequence advances the position by dp, so across the ranks each slot is read
 * exactly once (every sequence once per epoch), a rank's slot may already lie in the next epoch, and
 * all ranks always hold the same position: it is what a checkpoint stores, and it stays valid when
 * a run resumes with another dp. */
#ifndef GT_LOADER_H
#define GT_LOADER_H

#include "shard.h"

typedef struct {
    int64_t epoch; /* epochs the group's stream has completed */
    int64_t index; /* next slot of epoch `epoch`'s order, 0 <= index < nseq */
} gt_loader_pos;

typedef struct {
    const char *what;              /* names the data in messages, e.g. the config key "data.train" */
    const char *const *patterns;   /* file paths or glob patterns */
    int npatterns;
    uint32_t vocab_size;           /* the model's; a shard made for another vocabulary is refused */
    int seq_len;                   /* T >= 2 */
    int dp_rank, dp_size;
    int doc_mask;                  /* attention stays inside documents */
    int shuffle;                   /* 0: sequences in stream order every epoch */
    uint64_t seed;
} gt_loader_config;

typedef struct {
    gt_loader_config cfg;          /* patterns not kept: only valid during gt_loader_open */
    gt_tokens tk;                  /* the concatenated stream, attributes always present */
    int nfiles;
    int64_t nseq;                  /* sequences per epoch */
    gt_loader_pos pos;
    int64_t *order[2];             /* cached orders of two epochs (a rank's slot may be one ahead) */
    int64_t order_epoch[2];
} gt_loader;

/* Reads every shard. Fails, naming cfg->what and the file, when a pattern matches nothing, a shard
 * is unreadable or made for another vocabulary, or there are fewer than dp_size sequences. */
int gt_loader_open(gt_loader *ld, const gt_loader_config *cfg, gt_err *err);
void gt_loader_close(gt_loader *ld);

/* Fills this rank's next sequence (tok/tgt/pos/seg of T elements each) and advances the position by
 * dp. Returns its number of targets; *seq (if not NULL) receives the sequence's index in the stream. */
int64_t gt_loader_next(gt_loader *ld, int32_t *tok, int32_t *tgt, int32_t *pos, int32_t *seg,
                       int64_t *seq);

gt_loader_pos gt_loader_tell(const gt_loader *ld);
/* Restores a position from gt_loader_tell (of any rank, any dp); fails when index is outside
 * [0, nseq) (the data changed since it was saved) or epoch is negative. */
int gt_loader_seek(gt_loader *ld, gt_loader_pos pos, gt_err *err);

#endif
