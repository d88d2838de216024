#include "lr_schedule.h"

#include <math.h>
#include <string.h>

int gt_lr_kind_parse(const char *name, gt_lr_kind *out) {
    static const char *names[] = {"cosine", "linear", "constant"};
    for (int i = 0; i < 3; i++) {
        if (!strcmp(name, names[i])) {
            *out = (gt_lr_kind)i;
            return 0;
        }
    }
    return -1;
}

double gt_lr_at(const gt_lr_schedule *s, long long step) {
    if (step <= s->warmup) return s->lr * (double)step / (double)s->warmup;
    double lo = s->lr * s->min_lr_ratio;
    long long decay = s->steps - s->warmup;
    double p = decay > 0 ? (double)(step - s->warmup) / (double)decay : 1.0;
    if (p > 1.0) p = 1.0;
    switch (s->kind) {
    case GT_LR_COSINE: return lo + (s->lr - lo) * 0.5 * (1.0 + cos(M_PI * p));
    case GT_LR_LINEAR: return s->lr - (s->lr - lo) * p;
    default: return s->lr;
    }
}
