/* train/cmd/cli.c's option parser on a table with every kind of option: start values from the table,
 * flags, integers and their range, the last string winning, two options sharing one list in
 * command-line order, a custom conversion, operands, help wherever it stands (but not as a value),
 * and each error naming the option and the value. The gemmatron binary's commands are tested end
 * to end by test_cli_help.py. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../train/cmd/cli.h"
#include "check.h"

typedef struct {
    const char *name, *dir;
    int count, verbose, color, parity;
    gt_cli_list edits;
} args;

static int parse_parity(const char *v, void *field) {
    if (strcmp(v, "odd") && strcmp(v, "even")) return -1;
    *(int *)field = !strcmp(v, "odd");
    return 0;
}

static const gt_opt opts[] = {
    {.name = "--name", .kind = GT_OPT_STRING, .offset = offsetof(args, name), .meta = "N", .def = "anon", .help = "h"},
    {.name = "--count", .kind = GT_OPT_INT, .offset = offsetof(args, count), .meta = "C", .def = "3", .min = 1,
     .help = "h"},
    {.name = "--verbose", .kind = GT_OPT_FLAG, .offset = offsetof(args, verbose), .flag = 1, .help = "h"},
    {.name = "--no-color", .kind = GT_OPT_FLAG, .offset = offsetof(args, color), .flag = 0, .help = "h"},
    {.name = "--add", .kind = GT_OPT_LIST, .offset = offsetof(args, edits), .meta = "X", .help = "h"},
    {.name = "--del", .kind = GT_OPT_LIST, .offset = offsetof(args, edits), .meta = "X", .help = "h"},
    {.name = "--parity", .kind = GT_OPT_CUSTOM, .offset = offsetof(args, parity), .meta = "P", .parse = parse_parity,
     .expect = "odd or even", .help = "h"},
    {.name = "DIR", .kind = GT_OPT_OPERAND, .offset = offsetof(args, dir), .required = 1, .help = "h"},
};
static const gt_cli_cmd cmd = {.name = "demo", .summary = "s", GT_CLI_OPTS(opts)};

/* Parses the space-separated words of line into a (zeroed first; parity starts at -1). */
static int parse(const char *line, args *a, gt_err *err) {
    static char buf[512];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " ")) argv[argc++] = w;
    gt_cli_list_free(&a->edits);
    *a = (args){0};
    a->parity = -1;
    err->msg[0] = 0;
    return gt_cli_parse(&cmd, argc, argv, a, err);
}

static void check_error(gt_check *c, const char *line, const char *want) {
    args a = {0};
    gt_err err;
    int r = parse(line, &a, &err);
    gt_check_true(c, r == -1 && strstr(err.msg, want) && strstr(err.msg, "(see gemmatron demo --help)"),
                  "'%s': %d '%s', wanted '%s'", line, r, err.msg, want);
    gt_cli_list_free(&a.edits);
}

int main(void) {
    gt_check c = {0};
    gt_err err;
    args a = {0};
    int r = parse("d", &a, &err);
    gt_check_true(&c, r == 0 && !strcmp(a.name, "anon") && a.count == 3 && !a.verbose && a.color == 1 &&
                          a.parity == -1 && a.edits.n == 0 && !strcmp(a.dir, "d"),
                  "start values from the table: %d %s", r, err.msg);
    r = parse("--name x --verbose --add 1 d --del 2 --count 7 --add -3 --no-color --name y --parity odd", &a, &err);
    gt_check_true(&c, r == 0 && !strcmp(a.name, "y") && a.count == 7 && a.verbose && a.color == 0 && a.parity == 1 &&
                          !strcmp(a.dir, "d"),
                  "every kind, operand between options, the last --name wins: %d %s", r, err.msg);
    gt_check_true(&c, a.edits.n == 3 && !strcmp(a.edits.opt[0], "--add") && !strcmp(a.edits.value[0], "1") &&
                          !strcmp(a.edits.opt[1], "--del") && !strcmp(a.edits.value[1], "2") &&
                          !strcmp(a.edits.value[2], "-3"),
                  "--add and --del share one list in command-line order ('-3' is a value): n=%d", a.edits.n);
    gt_check_true(&c, parse("--count 2 --help", &a, &err) == 1 && parse("-h --bogus", &a, &err) == 1 &&
                          parse("--name -h d", &a, &err) == 0 && !strcmp(a.name, "-h"),
                  "--help and -h anywhere are help, but '--name -h' names '-h'");
    check_error(&c, "--bogus d", "demo: unknown option '--bogus'");
    check_error(&c, "--bogus", "unknown option '--bogus'");
    check_error(&c, "--name --verbose d", "demo: option --name needs a value");
    check_error(&c, "d --add", "demo: option --add needs a value");
    check_error(&c, "--count 0 d", "--count must be an integer >= 1, got '0'");
    check_error(&c, "--count 4x d", "--count must be an integer >= 1, got '4x'");
    check_error(&c, "--count  d", "--count must be an integer >= 1, got 'd'");
    check_error(&c, "--count 2000000000 d", "--count must be at most 1073741824, got '2000000000'");
    check_error(&c, "--parity 3 d", "demo: --parity 3: expected odd or even");
    check_error(&c, "d e", "demo: unexpected argument 'e'");
    check_error(&c, "--verbose", "demo: DIR is required");
    gt_cli_list_free(&a.edits);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    gt_cli_help(&cmd, f);
    fclose(f);
    gt_check_true(&c, strstr(text, "usage: gemmatron demo [--name N] [--count C] [--verbose] [--no-color]") &&
                          strstr(text, "(default: anon)") && strstr(text, "(default: 3)") &&
                          strstr(text, "(default: off)") && strstr(text, "DIR") && strstr(text, "-h, --help"),
                  "help: usage line, defaults, operand, --help:\n%s", text);
    free(text);
    return gt_check_done(&c, "cli_parse");
}
