/* Minimal assertion helpers for the CPU tests. A test binary prints one line per failed check and
 * a summary "N passed, M failed", and exits non-zero if any check failed. */
#ifndef GT_TEST_CHECK_H
#define GT_TEST_CHECK_H

#include <stddef.h>

typedef struct {
    int passed, failed;
} gt_check;

/* Records one check; prints the message when it fails. Returns ok. */
int gt_check_true(gt_check *c, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* ||a - b|| / ||b|| <= tol, over n doubles or floats. Prints the error either way when verbose. */
double gt_rel_err_f(const float *a, const float *b, size_t n);
double gt_rel_err_d(const double *a, const double *b, size_t n);
int gt_check_rel(gt_check *c, double err, double tol, const char *what);
/* max |a - b| over n floats; the index of the first largest of n floats. */
double gt_max_abs_diff_f(const float *a, const float *b, size_t n);
int gt_argmax_f(const float *x, size_t n);
/* Prints the summary line and returns the exit status. */
int gt_check_done(gt_check *c, const char *suite);

#endif
