#define _POSIX_C_SOURCE 200809L
#include "tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define BYTE_VOCAB 259
#define BYTE_OFFSET 3

#ifndef GT_SOURCE_DIR
#define GT_SOURCE_DIR "."
#endif

static const char *python(void) {
    const char *p = getenv("GEMMATRON_PYTHON");
    return p && *p ? p : "python3";
}

static void script_path(char *buf, size_t len) {
    const char *p = getenv("GEMMATRON_TOKENIZER_IO");
    if (p && *p) snprintf(buf, len, "%s", p);
    else snprintf(buf, len, "%s/scripts/tokenizer_io.py", GT_SOURCE_DIR);
}

/* Runs python tokenizer_io.py CMD PATH [IN OUT], stdout to out_path when given; 0 on exit 0. */
static int run_helper(const gt_tokenizer *t, const char *cmd, const char *in, const char *out, const char *stdout_to,
                      gt_err *err) {
    char script[4096];
    script_path(script, sizeof script);
    char *argv[] = {(char *)python(), script, (char *)cmd, (char *)t->path, (char *)in, (char *)out, NULL};
    if (!in) argv[4] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (stdout_to) posix_spawn_file_actions_addopen(&fa, 1, stdout_to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) return gt_fail(err, "tokenizer: cannot run %s %s: %s", argv[0], script, strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return gt_fail(err, "tokenizer: waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        return gt_fail(err, "tokenizer: %s %s %s %s failed (status %d; its message is above)", argv[0], script, cmd,
                       t->path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

/* A fresh temporary directory with the paths of its files in, out, aux. */
typedef struct {
    char dir[64], in[96], out[96], aux[96];
} tmp_files;

static int tmp_open(tmp_files *f, gt_err *err) {
    const char *base = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/gt-tok-XXXXXX", base && strlen(base) < 40 ? base : "/tmp");
    if (!mkdtemp(f->dir)) return gt_fail(err, "tokenizer: mkdtemp %s: %s", f->dir, strerror(errno));
    snprintf(f->in, sizeof f->in, "%s/in.jsonl", f->dir);
    snprintf(f->out, sizeof f->out, "%s/out.jsonl", f->dir);
    snprintf(f->aux, sizeof f->aux, "%s/aux.txt", f->dir);
    return 0;
}

static void tmp_close(tmp_files *f) {
    remove(f->in);
    remove(f->out);
    remove(f->aux);
    rmdir(f->dir);
}

int gt_tokenizer_open(gt_tokenizer *t, const char *path, int model_vocab, gt_err *err) {
    memset(t, 0, sizeof *t);
    if (path && !strcmp(path, "byte")) {
        t->byte = 1;
        t->vocab = BYTE_VOCAB;
    } else {
        if (!path) return gt_fail(err, "generate: no tokenizer: pass --tokenizer tokenizer.json (or byte), or prompts as ids");
        FILE *f = fopen(path, "rb");
        if (!f) return gt_fail(err, "generate: --tokenizer %s: %s", path, strerror(errno));
        fclose(f);
        t->path = path;
        tmp_files tf;
        if (tmp_open(&tf, err)) return -1;
        int rc = run_helper(t, "vocab", NULL, NULL, tf.aux, err);
        FILE *a = rc ? NULL : fopen(tf.aux, "r");
        if (!rc && (!a || fscanf(a, "%d", &t->vocab) != 1)) rc = gt_fail(err, "tokenizer: %s: no vocabulary size", path);
        if (a) fclose(a);
        tmp_close(&tf);
        if (rc) return -1;
    }
    if (t->vocab > model_vocab)
        return gt_fail(err, "generate: the tokenizer (%s) has %d tokens but the model's vocabulary has %d: they do not "
                            "belong together", t->byte ? "byte" : path, t->vocab, model_vocab);
    return 0;
}

static int encode_bytes(const gt_text *texts, int count, int32_t **ids, int *n) {
    for (int i = 0; i < count; i++) {
        size_t len = 0;
        for (int k = 0; k < texts[i].n; k++) len += strlen(texts[i].piece[k]);
        ids[i] = gt_malloc((len + 1) * sizeof(int32_t));
        n[i] = 0;
        for (int k = 0; k < texts[i].n; k++)
            for (const unsigned char *c = (const unsigned char *)texts[i].piece[k]; *c; c++)
                ids[i][n[i]++] = *c + BYTE_OFFSET;
    }
    return 0;
}

static int write_lines(const char *path, json_t **lines, int count, gt_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return gt_fail(err, "tokenizer: %s: %s", path, strerror(errno));
    for (int i = 0; i < count; i++) {
        char *s = json_dumps(lines[i], JSON_COMPACT | JSON_ENSURE_ASCII);
        fprintf(f, "%s\n", s);
        free(s);
        json_decref(lines[i]);
    }
    if (fclose(f)) return gt_fail(err, "tokenizer: %s: write failed", path);
    return 0;
}

/* Reads count JSON lines of out into vals (caller decrefs). */
static int read_lines(const char *path, json_t **vals, int count, gt_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return gt_fail(err, "tokenizer: %s: %s", path, strerror(errno));
    int i = 0;
    for (; i < count; i++) {
        json_error_t je;
        vals[i] = json_loadf(f, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
        if (!vals[i]) break;
    }
    fclose(f);
    if (i < count) {
        for (int k = 0; k < i; k++) json_decref(vals[k]);
        return gt_fail(err, "tokenizer: %s: %d of %d answers", path, i, count);
    }
    return 0;
}

int gt_tokenizer_encode(const gt_tokenizer *t, const gt_text *texts, int count, int32_t ***ids_out, int **n_out,
                        gt_err *err) {
    int32_t **ids = gt_calloc((size_t)count, sizeof *ids);
    int *n = gt_calloc((size_t)count, sizeof *n);
    *ids_out = ids;
    *n_out = n;
    if (t->byte) return encode_bytes(texts, count, ids, n);
    tmp_files tf;
    if (tmp_open(&tf, err)) return -1;
    json_t **lines = gt_calloc((size_t)count, sizeof *lines);
    for (int i = 0; i < count; i++) {
        lines[i] = json_array();
        for (int k = 0; k < texts[i].n; k++) json_array_append_new(lines[i], json_string(texts[i].piece[k]));
    }
    int rc = write_lines(tf.in, lines, count, err);
    if (!rc) rc = run_helper(t, "encode", tf.in, tf.out, NULL, err);
    if (!rc) rc = read_lines(tf.out, lines, count, err);
    for (int i = 0; !rc && i < count; i++) {
        size_t len = json_array_size(lines[i]);
        ids[i] = gt_malloc((len + 1) * sizeof(int32_t));
        for (size_t k = 0; k < len; k++) ids[i][k] = (int32_t)json_integer_value(json_array_get(lines[i], k));
        n[i] = (int)len;
    }
    for (int i = 0; !rc && i < count; i++) json_decref(lines[i]);
    free(lines);
    tmp_close(&tf);
    return rc;
}

int gt_tokenizer_decode(const gt_tokenizer *t, int32_t *const *ids, const int *n, int count, char ***text_out,
                        gt_err *err) {
    char **text = gt_calloc((size_t)count, sizeof *text);
    *text_out = text;
    if (t->byte) { /* specials and ids outside the bytes have no text */
        for (int i = 0; i < count; i++) {
            text[i] = gt_malloc((size_t)n[i] + 1);
            int k = 0;
            for (int j = 0; j < n[i]; j++)
                if (ids[i][j] >= BYTE_OFFSET && ids[i][j] < BYTE_VOCAB) text[i][k++] = (char)(ids[i][j] - BYTE_OFFSET);
            text[i][k] = 0;
        }
        return 0;
    }
    tmp_files tf;
    if (tmp_open(&tf, err)) return -1;
    json_t **lines = gt_calloc((size_t)count, sizeof *lines);
    for (int i = 0; i < count; i++) {
        lines[i] = json_array();
        for (int j = 0; j < n[i]; j++) json_array_append_new(lines[i], json_integer(ids[i][j]));
    }
    int rc = write_lines(tf.in, lines, count, err);
    if (!rc) rc = run_helper(t, "decode", tf.in, tf.out, NULL, err);
    if (!rc) rc = read_lines(tf.out, lines, count, err);
    for (int i = 0; !rc && i < count; i++) {
        text[i] = strdup(json_string_value(lines[i]) ? json_string_value(lines[i]) : "");
        json_decref(lines[i]);
    }
    free(lines);
    tmp_close(&tf);
    return rc;
}
