/* LR schedule (train/lr_schedule.h) against values worked out by hand: peak 1.0, 10 warmup steps,
 * 110 steps, floor ratio 0.1, so decay progress p = (step - 10) / 100. */
#include <math.h>
#include <stdio.h>

#include "../../train/lr_schedule.h"
#include "check.h"

static void expect(gt_check *c, const char *name, gt_lr_kind kind, long long step, double want) {
    gt_lr_schedule s = {kind, 1.0, 0.1, 10, 110};
    double got = gt_lr_at(&s, step);
    gt_check_true(c, fabs(got - want) < 1e-12, "%s step %lld: lr %.15f, expected %.15f", name, step, got, want);
}

int main(void) {
    gt_check c = {0};
    gt_lr_kind k;
    gt_check_true(&c, gt_lr_kind_parse("linear", &k) == 0 && k == GT_LR_LINEAR, "parse linear");
    gt_check_true(&c, gt_lr_kind_parse("cosine", &k) == 0 && k == GT_LR_COSINE, "parse cosine");
    gt_check_true(&c, gt_lr_kind_parse("exp", &k) == -1, "parse rejects 'exp'");
    const gt_lr_kind kinds[] = {GT_LR_COSINE, GT_LR_LINEAR, GT_LR_CONSTANT};
    const char *names[] = {"cosine", "linear", "constant"};
    for (int i = 0; i < 3; i++) {
        expect(&c, names[i], kinds[i], 1, 0.1);  /* warmup: 1/10 */
        expect(&c, names[i], kinds[i], 5, 0.5);
        expect(&c, names[i], kinds[i], 10, 1.0); /* peak at the end of warmup */
    }
    /* p = 0.25: cosine 0.1 + 0.9 * (1 + cos(pi/4)) / 2 = 0.1 + 0.9 * 0.8535533905932737 */
    expect(&c, "cosine", GT_LR_COSINE, 35, 0.8681980515339464);
    expect(&c, "cosine", GT_LR_COSINE, 60, 0.55);
    expect(&c, "cosine", GT_LR_COSINE, 110, 0.1);
    expect(&c, "linear", GT_LR_LINEAR, 35, 0.775);
    expect(&c, "linear", GT_LR_LINEAR, 60, 0.55);
    expect(&c, "linear", GT_LR_LINEAR, 110, 0.1);
    expect(&c, "constant", GT_LR_CONSTANT, 60, 1.0);
    expect(&c, "constant", GT_LR_CONSTANT, 110, 1.0);
    /* No warmup: the first step already decays a little. p = 1/100 */
    gt_lr_schedule s = {GT_LR_LINEAR, 2.0, 0.0, 0, 100};
    gt_check_true(&c, fabs(gt_lr_at(&s, 1) - 1.98) < 1e-12, "linear without warmup, step 1: %g", gt_lr_at(&s, 1));
    return gt_check_done(&c, "lr_schedule");
}
