/* `gemmatron eval --logits FILE` end to end: the logits it writes for the first sequence of a token
 * file (a fixture's HF input_ids, both rows, scored with --seq-len T, so the first sequence is row 0)
 * must be HF's float32 logits of that row (tests/fixtures/NAME/expected.safetensors "logits" [B, T,
 * V]) within the HF parity tolerance (test_hf_parity.c: 1e-4 relative norm error), as raw
 * little-endian float32 (exactly T * V * 4 bytes) and as .npy (header naming '<f4' and (T, V)).
 * --logits with --tp 2, and a path that cannot be created, fail with one line and exit 1 and leave
 * no file. argv[1] is the gemmatron binary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../model/safetensors.h"
#include "check.h"

static const char *const fixtures[] = {"mha", "gqa", "bf16", "f16"};

/* Runs cmd with stderr into errfile; returns the exit status (-1: killed by a signal). */
static int run(const char *cmd, const char *errfile, char *err, size_t errlen) {
    char full[4096];
    snprintf(full, sizeof full, "%s >/dev/null 2>%s", cmd, errfile);
    int st = system(full);
    FILE *e = fopen(errfile, "r");
    size_t n = e ? fread(err, 1, errlen - 1, e) : 0;
    err[n] = 0;
    if (e) fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The whole file; *len its size. */
static char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = gt_malloc((size_t)*len + 1);
    size_t got = fread(buf, 1, (size_t)*len, f);
    fclose(f);
    buf[got] = 0;
    return (long)got == *len ? buf : (free(buf), NULL);
}

static void check_fixture(gt_check *c, const char *bin, const char *tmp, const char *name) {
    char dir[256], path[512], ids_path[512], cmd[1536], err[1024], errfile[512];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", tmp);
    gt_st st;
    gt_err e;
    GT_ASSERT(gt_st_open(&st, path, &e) == 0, "%s", e.msg);
    const gt_st_tensor *ti = gt_st_find(&st, "input_ids"), *tl = gt_st_find(&st, "logits");
    GT_ASSERT(ti && tl && ti->ndim == 2 && tl->ndim == 3, "%s: no input_ids [B, T] / logits [B, T, V]", path);
    int B = (int)ti->shape[0], T = (int)ti->shape[1], V = (int)tl->shape[2];
    int64_t *ids = gt_malloc((size_t)B * T * sizeof *ids);
    GT_ASSERT(gt_st_read_raw(&st, ti, ids, &e) == 0, "%s", e.msg);
    float *ref = gt_malloc((size_t)T * V * sizeof *ref); /* row 0 of [B, T * V] */
    GT_ASSERT(gt_st_read_f32(&st, tl, 0, 1, 0, (int64_t)T * V, ref, &e) == 0, "%s", e.msg);

    snprintf(ids_path, sizeof ids_path, "%s/%s.ids", tmp, name);
    FILE *f = fopen(ids_path, "w");
    GT_ASSERT(f, "cannot write %s", ids_path);
    for (int i = 0; i < B * T; i++) fprintf(f, "%lld%c", (long long)ids[i], (i + 1) % T ? ' ' : '\n');
    fclose(f);

    const char *suffixes[] = {".bin", ".npy"};
    for (int k = 0; k < 2; k++) {
        char out[512], what[160];
        snprintf(out, sizeof out, "%s/%s_logits%s", tmp, name, suffixes[k]);
        snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --seq-len %d --device cpu --logits %s", bin, dir,
                 ids_path, T, out);
        int rc = run(cmd, errfile, err, sizeof err);
        long len = 0;
        char *buf = rc == 0 ? slurp(out, &len) : NULL;
        if (!gt_check_true(c, buf != NULL, "%s: exit %d, stderr %s", cmd, rc, err)) continue;
        long off = 0;
        if (k == 1) { /* .npy 1.0: magic, version, u16 header length, the header dict */
            char shape[64];
            snprintf(shape, sizeof shape, "'shape': (%d, %d)", T, V);
            off = len >= 10 ? 10 + ((unsigned char)buf[8] | (unsigned char)buf[9] << 8) : 0;
            gt_check_true(c, len >= 10 && !memcmp(buf, "\x93NUMPY\x01\x00", 8) && off % 64 == 0 &&
                                 strstr(buf + 10, "'descr': '<f4'") && strstr(buf + 10, shape) && buf[off - 1] == '\n',
                          "%s: .npy header (want %s, '<f4', 64-byte aligned)", out, shape);
        }
        int size_ok = gt_check_true(c, len - off == (long)T * V * 4, "%s: %ld data bytes, want %d x %d x 4", out,
                                    len - off, T, V);
        if (size_ok) {
            float *got = gt_malloc((size_t)T * V * sizeof *got);
            memcpy(got, buf + off, (size_t)T * V * sizeof *got); /* little-endian host (eval.c checks) */
            snprintf(what, sizeof what, "%s eval --logits%s: first sequence vs HF logits of row 0", name, suffixes[k]);
            gt_check_rel(c, gt_rel_err_f(got, ref, (size_t)T * V), 1e-4, what);
            free(got);
        }
        free(buf);
    }
    free(ids);
    free(ref);
    gt_st_close(&st);
}

/* A command that must fail: exit 1, one stderr line containing want, and no file at out. */
static void check_refused(gt_check *c, const char *bin, const char *tmp, const char *args, const char *out,
                          const char *want) {
    char cmd[1536], err[1024], errfile[512];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", tmp);
    snprintf(cmd, sizeof cmd, "%s %s", bin, args);
    int rc = run(cmd, errfile, err, sizeof err);
    int lines = 0;
    for (const char *p = err; *p; p++) lines += *p == '\n';
    gt_check_true(c, rc == 1 && lines == 1 && strstr(err, want) && access(out, F_OK) != 0,
                  "'%s': exit %d, stderr (%d lines) '%s', wanted '%s' and no %s", args, rc, lines, err, want, out);
}

int main(int argc, char **argv) {
    GT_ASSERT(argc > 1, "usage: test_cli_logits GEMMATRON");
    const char *bin = argv[1];
    char tmp[] = "/tmp/gt_cli_logits_XXXXXX";
    GT_ASSERT(mkdtemp(tmp), "mkdtemp failed");
    gt_check c = {0};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) check_fixture(&c, bin, tmp, fixtures[i]);

    char args[1024], out[512];
    snprintf(out, sizeof out, "%s/tp2.npy", tmp);
    snprintf(args, sizeof args, "eval --model tests/fixtures/mha --data %s/mha.ids --tp 2 --logits %s", tmp, out);
    check_refused(&c, bin, tmp, args, out, "--logits needs --tp 1");
    snprintf(out, sizeof out, "%s/no_such_dir/x.npy", tmp);
    snprintf(args, sizeof args, "eval --model tests/fixtures/mha --data %s/mha.ids --device cpu --logits %s", tmp, out);
    check_refused(&c, bin, tmp, args, out, "no_such_dir/x.npy");

    int rc = gt_check_done(&c, "cli_logits");
    if (rc == 0) {
        char rm[600];
        snprintf(rm, sizeof rm, "rm -rf %s", tmp);
        (void)!system(rm);
    }
    return rc;
}
