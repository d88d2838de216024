#include "sampler.h"

#include <math.h>
#include <stdlib.h>

#include "../core/base.h"

void gt_sampler_init(gt_sampler *s, int vocab, double temperature, int top_k, double top_p) {
    s->temperature = temperature;
    s->top_k = top_k;
    s->top_p = top_p;
    s->vocab = vocab;
    s->q = gt_malloc((size_t)vocab * sizeof *s->q);
}

void gt_sampler_free(gt_sampler *s) {
    free(s->q);
}

/* splitmix64: a small, well-mixed generator whose state is one word per sequence. */
static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t gt_sampler_stream(uint64_t seed, uint64_t index) {
    uint64_t x = seed ^ (index * 0xd1b54a32d192ed03ull);
    return splitmix(&x);
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Descending by probability, then ascending by id (a total order: reproducible). */
static int cmp_desc(const void *a, const void *b) {
    const struct gt_prob *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int32_t gt_sampler_next(gt_sampler *s, const float *logits, uint64_t *rng) {
    int V = s->vocab;
    if (s->temperature <= 0) return argmax(logits, V);
    double m = logits[argmax(logits, V)], sum = 0;
    for (int i = 0; i < V; i++) {
        s->q[i].p = exp(((double)logits[i] - m) / s->temperature);
        s->q[i].id = i;
        sum += s->q[i].p;
    }
    int n = V;
    if (s->top_k > 0 || s->top_p < 1) {
        qsort(s->q, (size_t)V, sizeof *s->q, cmp_desc);
        if (s->top_k > 0 && s->top_k < n) n = s->top_k;
        double kept = 0;
        for (int i = 0; i < n; i++) kept += s->q[i].p;
        if (s->top_p < 1) {
            double c = 0;
            for (int i = 0; i < n; i++) {
                c += s->q[i].p;
                if (c >= s->top_p * kept) {
                    n = i + 1;
                    break;
                }
            }
        }
        sum = 0;
        for (int i = 0; i < n; i++) sum += s->q[i].p;
    }
    double u = (double)(splitmix(rng) >> 11) * 0x1.0p-53 * sum, c = 0;
    for (int i = 0; i < n; i++) {
        c += s->q[i].p;
        if (u < c) return s->q[i].id;
    }
    return s->q[n - 1].id;
}
