/* Writing the resolved run config as commented YAML that gt_run_config_load_file reads back to the
 * same values: strings double-quoted with escapes, reals with the fewest digits that read back
 * exactly, every key with its meaning as a comment. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "run_config_schema.h"

typedef struct {
    char *buf;
    size_t len, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) GT_DIE("cannot format the run config");
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = 2 * t->cap + (size_t)n + 1;
        char *b = realloc(t->buf, t->cap);
        if (!b) GT_DIE("out of host memory writing the run config");
        t->buf = b;
    }
}

static void put_quoted(text *t, const char *s) {
    put(t, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') put(t, "\\%c", *p);
        else if (*p < 0x20) put(t, "\\x%02x", *p);
        else put(t, "%c", *p);
    }
    put(t, "\"");
}

/* The shortest %g form that parses back to exactly x. */
static void put_real(text *t, double x) {
    char b[40];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(b, sizeof b, "%.*g", digits, x);
        if (strtod(b, NULL) == x) break;
    }
    /* "1" would read back as a real anyway; a dot keeps the type visible to a reader. */
    if (!strpbrk(b, ".eE")) strcat(b, ".0");
    put(t, "%s", b);
}

static void put_value(text *t, const gt_run_config *rc, const rc_field *f) {
    const void *p = (const char *)rc + f->off;
    switch (f->type) {
    case RC_INT: put(t, "%lld", *(const long long *)p); break;
    case RC_REAL: put_real(t, *(const double *)p); break;
    case RC_BOOL: put(t, "%s", *(const int *)p ? "true" : "false"); break;
    case RC_LIST: {
        const gt_strlist *l = p;
        put(t, "[");
        for (int i = 0; i < l->n; i++) {
            if (i) put(t, ", ");
            put_quoted(t, l->v[i]);
        }
        put(t, "]");
        break;
    }
    default: {
        const char *s = *(char *const *)p;
        if (s) put_quoted(t, s);
        else put(t, "null");
    }
    }
}

char *gt_run_config_yaml(const gt_run_config *rc) {
    text t = {gt_malloc(4096), 0, 4096};
    t.buf[0] = 0;
    put(&t, "# gemmatron run config, resolved: defaults filled in, --set overrides applied.\n");
    int n;
    const rc_field *fields = gt_rc_fields(&n);
    char section[64] = "";
    for (int i = 0; i < n; i++) {
        const rc_field *f = &fields[i];
        const char *dot = strchr(f->key, '.');
        size_t slen = dot ? (size_t)(dot - f->key) : 0;
        if (slen != strlen(section) || strncmp(section, f->key, slen)) {
            snprintf(section, sizeof section, "%.*s", (int)slen, f->key);
            if (slen) put(&t, "%s:\n", section);
        }
        const char *indent = slen ? "  " : "";
        put(&t, "%s# %s\n%s%s: ", indent, f->help, indent, dot ? dot + 1 : f->key);
        put_value(&t, rc, f);
        put(&t, "\n");
    }
    return t.buf;
}

int gt_run_config_save(const gt_run_config *rc, const char *path, gt_err *err) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        return gt_fail(err, "%s: path too long", path);
    }
    char *y = gt_run_config_yaml(rc);
    FILE *f = fopen(tmp, "wb");
    int rc_ = 0;
    if (!f) rc_ = gt_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    else {
        size_t len = strlen(y);
        if (fwrite(y, 1, len, f) != len) rc_ = gt_fail(err, "%s: write failed: %s", tmp, strerror(errno));
        if (fclose(f) != 0 && rc_ == 0) rc_ = gt_fail(err, "%s: write failed: %s", tmp, strerror(errno));
        if (rc_ == 0 && rename(tmp, path) != 0) {
            rc_ = gt_fail(err, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        }
        if (rc_ != 0) unlink(tmp);
    }
    free(y);
    return rc_;
}
