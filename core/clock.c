#include "clock.h"

#include <time.h>

#include "base.h"

double gt_now(void) {
    struct timespec ts;
    GT_ASSERT(clock_gettime(CLOCK_MONOTONIC, &ts) == 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
