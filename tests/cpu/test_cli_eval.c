/* `gemmatron eval` end to end: a token shard made from a fixture's HF inputs (labels of -100 become
 * non-target tokens) scored with --seq-len T must print HF's loss and the number of HF's targets;
 * the same ids as a text file score as one sequence; and bad inputs give one line naming the
 * file and a non-zero exit, never a crash. argv[1] is the gemmatron binary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../data/shard.h"
#include "../../model/safetensors.h"
#include "check.h"

typedef struct {
    int status;      /* exit status, or -1 when killed by a signal */
    char last[512];  /* last line of stdout */
    char err[1024];  /* all of stderr */
    int err_lines;
} run_result;

static void run(const char *cmd, run_result *r) {
    char full[2048];
    snprintf(full, sizeof full, "%s 2>/tmp/gt_cli_err.txt", cmd);
    FILE *p = popen(full, "r");
    GT_ASSERT(p, "popen failed");
    char line[512];
    r->last[0] = 0;
    while (fgets(line, sizeof line, p)) snprintf(r->last, sizeof r->last, "%s", line);
    int st = pclose(p);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    FILE *e = fopen("/tmp/gt_cli_err.txt", "r");
    size_t n = e ? fread(r->err, 1, sizeof r->err - 1, e) : 0;
    r->err[n] = 0;
    if (e) fclose(e);
    r->err_lines = 0;
    for (size_t i = 0; i < n; i++) r->err_lines += r->err[i] == '\n';
}

static void read_i64(const gt_st *st, const char *name, int64_t *out) {
    gt_err err;
    const gt_st_tensor *t = gt_st_find(st, name);
    GT_ASSERT(t && gt_st_read_raw(st, t, out, &err) == 0, "cannot read %s", name);
}

static void check_hf_loss(gt_check *c, const char *bin) {
    gt_st st;
    gt_err err;
    GT_ASSERT(gt_st_open(&st, "tests/fixtures/gqa/expected.safetensors", &err) == 0, "%s", err.msg);
    const gt_st_tensor *t = gt_st_find(&st, "input_ids");
    int B = (int)t->shape[0], T = (int)t->shape[1], N = B * T, targets = 0;
    int64_t ids[256], labels[256];
    float loss;
    GT_ASSERT(N <= 256, "fixture too large");
    read_i64(&st, "input_ids", ids);
    read_i64(&st, "labels", labels);
    GT_ASSERT(gt_st_read_f32(&st, gt_st_find(&st, "loss"), 0, 1, 0, 1, &loss, &err) == 0, "%s", err.msg);
    uint32_t tok[256];
    uint8_t attr[256];
    for (int i = 0; i < N; i++) {
        tok[i] = (uint32_t)ids[i];
        attr[i] = labels[i] >= 0 ? GT_TOK_TARGET : 0;
        targets += labels[i] >= 0 && i % T != 0;
    }
    GT_ASSERT(gt_shard_write("/tmp/gt_cli_eval.bin", tok, attr, N, 160, &err) == 0, "%s", err.msg);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s eval --model tests/fixtures/gqa --data /tmp/gt_cli_eval.bin --seq-len %d --device cpu", bin, T);
    run_result r;
    run(cmd, &r);
    double got = -1;
    long long count = -1;
    int parsed = sscanf(r.last, "eval_loss=%lf tokens=%lld", &got, &count) == 2;
    gt_check_true(c, r.status == 0 && parsed, "eval exit %d, last line '%s', stderr %s", r.status, r.last, r.err);
    char what[128];
    snprintf(what, sizeof what, "eval loss vs HF (%.6f vs %.6f)", got, loss);
    gt_check_rel(c, got > 0 ? fabs(got - loss) / loss : 1, 2e-6, what);
    gt_check_true(c, count == targets, "eval counted %lld targets, HF %d", count, targets);
    gt_st_close(&st);
}

/* Each case: a command that must fail with exit `status` (1: it cannot be done, 2: a bad command
 * line) and one stderr line containing `want`. */
static void check_error(gt_check *c, const char *bin, const char *args, int status, const char *want) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s", bin, args);
    run_result r;
    run(cmd, &r);
    gt_check_true(c, r.status == status && r.err_lines == 1 && strstr(r.err, want),
                  "'%s': exit %d (%d), stderr (%d lines) '%s', wanted '%s'", args, r.status, status, r.err_lines,
                  r.err, want);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    GT_ASSERT(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
}

int main(int argc, char **argv) {
    GT_ASSERT(argc > 1, "usage: test_cli_eval GEMMATRON");
    const char *bin = argv[1];
    gt_check c = {0};
    check_hf_loss(&c, bin);

    /* The same ids as text, no --seq-len: one sequence of the whole file. */
    write_file("/tmp/gt_cli_ids.txt", "5 17\n 99\t3 42 7\n");
    run_result r;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s eval --model tests/fixtures/mha --data /tmp/gt_cli_ids.txt --device cpu", bin);
    run(cmd, &r);
    gt_check_true(&c, r.status == 0 && strstr(r.last, "tokens=5\n"), "text ids: '%s' %s", r.last, r.err);

    write_file("/tmp/gt_cli_big.txt", "5 17 160 3\n");
    check_error(&c, bin, "eval --model tests/fixtures/mha --data /tmp/gt_cli_big.txt --device cpu", 1, "/tmp/gt_cli_big.txt");
    check_error(&c, bin, "eval --model tests/fixtures/mha --data /tmp/gt_cli_big.txt --device cpu", 1, "160");
    check_error(&c, bin, "eval --model /tmp/gt_no_such_dir --data /tmp/gt_cli_ids.txt --device cpu", 1, "gt_no_such_dir");
    system("rm -rf /tmp/gt_cli_bad && mkdir -p /tmp/gt_cli_bad && cp tests/fixtures/mha/config.json /tmp/gt_cli_bad/"
           " && head -c 1000 tests/fixtures/mha/model.safetensors > /tmp/gt_cli_bad/model.safetensors");
    check_error(&c, bin, "eval --model /tmp/gt_cli_bad --data /tmp/gt_cli_ids.txt --device cpu", 1, "model.safetensors");
    write_file("/tmp/gt_cli_bad/config.json", "{\"hidden_size\": 64,");
    check_error(&c, bin, "eval --model /tmp/gt_cli_bad --data /tmp/gt_cli_ids.txt --device cpu", 1, "config.json");
    check_error(&c, bin, "eval --model tests/fixtures/mha --data /tmp/gt_cli_ids.txt --seq-len 1", 2,
                "--seq-len must be an integer >= 2, got '1'");
    check_error(&c, bin, "eval --data /tmp/gt_cli_ids.txt", 2, "--model HF_DIR is required");
    return gt_check_done(&c, "cli_eval");
}
