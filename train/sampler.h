/* The next token from a row of logits: greedy (temperature 0: the first largest logit, as
 * torch.argmax) or sampled from softmax(logits / temperature) restricted to the top_k largest
 * (0: all) and to the smallest set of largest whose probability reaches top_p (1: all). Each
 * sequence has its own random stream from (seed, sequence index), so a seeded run is reproducible
 * whatever else is in its batch. */
#ifndef GT_SAMPLER_H
#define GT_SAMPLER_H

#include <stdint.h>

typedef struct {
    double temperature, top_p;
    int top_k;
    int vocab;
    struct gt_prob { double p; int32_t id; } *q; /* [vocab] scratch */
} gt_sampler;

void gt_sampler_init(gt_sampler *s, int vocab, double temperature, int top_k, double top_p);
void gt_sampler_free(gt_sampler *s);
/* The random stream of sequence `index` of a run seeded with seed. */
uint64_t gt_sampler_stream(uint64_t seed, uint64_t index);
/* The next token from logits[vocab]; *rng advances when sampling. */
int32_t gt_sampler_next(gt_sampler *s, const float *logits, uint64_t *rng);

#endif
