/* The learning rate of each optimizer step: linear warmup, then cosine, linear or constant decay.
 *
 * For step s = 1..steps (the step about to be applied), peak lr, W warmup steps and floor
 * min = lr * min_lr_ratio:
 *   s <= W        lr * s / W            (the first step already moves; HF's schedules start at 0)
 *   s >  W        p = (s - W) / (steps - W) in (0, 1]
 *                 cosine:   min + (lr - min) * (1 + cos(pi p)) / 2
 *                 linear:   lr - (lr - min) * p
 *                 constant: lr
 * so the last step runs at min (cosine, linear). */
#ifndef GT_LR_SCHEDULE_H
#define GT_LR_SCHEDULE_H

typedef enum { GT_LR_COSINE = 0, GT_LR_LINEAR, GT_LR_CONSTANT } gt_lr_kind;

typedef struct {
    gt_lr_kind kind;
    double lr, min_lr_ratio;
    long long warmup, steps;
} gt_lr_schedule;

/* Parses "cosine", "linear" or "constant"; -1 if unknown. */
int gt_lr_kind_parse(const char *name, gt_lr_kind *out);
double gt_lr_at(const gt_lr_schedule *s, long long step);

#endif
