/* The one clock of the program: monotonic seconds, for step times, timeouts and profiles (never
 * for dates: its origin is arbitrary). */
#ifndef GT_CLOCK_H
#define GT_CLOCK_H

double gt_now(void);

#endif
