#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

int gt_check_true(gt_check *c, int ok, const char *fmt, ...) {
    if (ok) {
        c->passed++;
        return 1;
    }
    c->failed++;
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    return 0;
}

double gt_rel_err_f(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (!isfinite(num)) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double gt_rel_err_d(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    if (!isfinite(num)) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

int gt_check_rel(gt_check *c, double err, double tol, const char *what) {
    int ok = err <= tol; /* NaN fails */
    printf("%-4s %-48s rel_err %.3e (tol %.1e)\n", ok ? "ok" : "FAIL", what, err, tol);
    if (ok) c->passed++;
    else c->failed++;
    return ok;
}

int gt_check_done(gt_check *c, const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, c->passed, c->failed);
    return c->failed ? 1 : 0;
}

double gt_max_abs_diff_f(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - (double)b[i]));
    return e;
}

int gt_argmax_f(const float *x, size_t n) {
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[k]) k = i;
    return (int)k;
}
