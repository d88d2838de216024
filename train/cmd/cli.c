/* The table-driven command-line parser and help printer of every subcommand (train/cmd/cli.h). */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Commands have a handful of options; a fixed bound keeps "which were given" on the stack. */
#define MAX_OPTS 32
/* Help text is wrapped to this width (and indented under its option). */
#define HELP_WIDTH 100
#define HELP_COLUMN 24

static void *field_of(void *args, const gt_opt *o) { return (char *)args + o->offset; }

/* Formats "CMD: <what> (see gemmatron CMD --help)" into err: every parser error points at the help. */
__attribute__((format(printf, 3, 4))) static int refuse(gt_err *err, const gt_cli_cmd *cmd, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gt_fail(err, "%s: %s (see gemmatron %s --help)", cmd->name, what, cmd->name);
}

static int is_option(const char *arg) { return arg[0] == '-' && arg[1] != 0; }
static int is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

static const gt_opt *find_option(const gt_cli_cmd *cmd, const char *name) {
    for (int k = 0; k < cmd->nopts; k++)
        if (cmd->opts[k].kind != GT_OPT_OPERAND && !strcmp(cmd->opts[k].name, name)) return &cmd->opts[k];
    return NULL;
}

/* The spec of the n-th operand (0-based), or NULL when the command takes fewer. */
static const gt_opt *nth_operand(const gt_cli_cmd *cmd, int n) {
    for (int k = 0; k < cmd->nopts; k++)
        if (cmd->opts[k].kind == GT_OPT_OPERAND && n-- == 0) return &cmd->opts[k];
    return NULL;
}

/* Decimal integer in [min, GT_OPT_INT_MAX]; the error names the option and the value. */
static int parse_int(const gt_cli_cmd *cmd, const gt_opt *o, const char *v, int *out, gt_err *err) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < o->min)
        return refuse(err, cmd, "%s must be an integer >= %d, got '%s'", o->name, o->min, v);
    if (x > GT_OPT_INT_MAX) return refuse(err, cmd, "%s must be at most %d, got '%s'", o->name, GT_OPT_INT_MAX, v);
    *out = (int)x;
    return 0;
}

/* Start values: the table's defaults, so that the help and the behaviour cannot disagree. */
static void apply_defaults(const gt_cli_cmd *cmd, void *args) {
    for (int k = 0; k < cmd->nopts; k++) {
        const gt_opt *o = &cmd->opts[k];
        void *f = field_of(args, o);
        if (o->kind == GT_OPT_FLAG) *(int *)f = !o->flag;
        else if (o->kind == GT_OPT_INT && o->def) *(int *)f = (int)strtol(o->def, NULL, 10);
        else if (o->kind == GT_OPT_STRING && o->def) *(const char **)f = o->def;
    }
}

/* Appends (name, value) to the list; its arrays are sized for the whole command line at the first
 * push, as no command line holds more values than arguments. */
static void list_push(gt_cli_list *l, int argc, const char *name, const char *value) {
    if (!l->opt) {
        l->opt = gt_calloc((size_t)argc, sizeof *l->opt);
        l->value = gt_calloc((size_t)argc, sizeof *l->value);
    }
    l->opt[l->n] = name;
    l->value[l->n++] = value;
}

static int store_value(const gt_cli_cmd *cmd, const gt_opt *o, const char *v, void *args, int argc, gt_err *err) {
    void *f = field_of(args, o);
    switch (o->kind) {
    case GT_OPT_INT: return parse_int(cmd, o, v, f, err);
    case GT_OPT_LIST: list_push(f, argc, o->name, v); return 0;
    case GT_OPT_CUSTOM:
        if (o->parse(v, f)) return refuse(err, cmd, "%s %s: expected %s", o->name, v, o->expect);
        return 0;
    default: *(const char **)f = v; return 0;
    }
}

/* One option at argv[*i] (already known to be one); advances *i past its value. */
static int take_option(const gt_cli_cmd *cmd, int argc, char **argv, int *i, void *args, unsigned char *seen,
                       gt_err *err) {
    const char *name = argv[*i];
    const gt_opt *o = find_option(cmd, name);
    if (!o) return refuse(err, cmd, "unknown option '%s'", name);
    seen[o - cmd->opts] = 1;
    if (o->kind == GT_OPT_FLAG) {
        *(int *)field_of(args, o) = o->flag;
        return 0;
    }
    /* "--set --run-dir X": the next option is not --set's value. */
    if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2)) return refuse(err, cmd, "option %s needs a value", name);
    return store_value(cmd, o, argv[++*i], args, argc, err);
}

static int check_required(const gt_cli_cmd *cmd, const unsigned char *seen, gt_err *err) {
    for (int k = 0; k < cmd->nopts; k++) {
        const gt_opt *o = &cmd->opts[k];
        if (!o->required || seen[k]) continue;
        if (o->kind == GT_OPT_OPERAND) return refuse(err, cmd, "%s is required", o->name);
        return refuse(err, cmd, "%s %s is required", o->name, o->meta);
    }
    return 0;
}

int gt_cli_parse(const gt_cli_cmd *cmd, int argc, char **argv, void *args, gt_err *err) {
    unsigned char seen[MAX_OPTS] = {0};
    GT_ASSERT(cmd->nopts <= MAX_OPTS, "%s: %d options, at most %d", cmd->name, cmd->nopts, MAX_OPTS);
    apply_defaults(cmd, args);
    /* Help first, wherever it stands, so that "train --config x --help" helps instead of running. */
    for (int i = 0; i < argc; i++) {
        const gt_opt *o = find_option(cmd, argv[i]);
        if (is_help(argv[i])) return 1;
        /* skip its value: in "--set -h", -h is a value */
        if (o && o->kind != GT_OPT_FLAG && i + 1 < argc && strncmp(argv[i + 1], "--", 2)) i++;
    }
    int operands = 0;
    for (int i = 0; i < argc; i++) {
        if (is_option(argv[i])) {
            if (take_option(cmd, argc, argv, &i, args, seen, err)) return -1;
            continue;
        }
        const gt_opt *o = nth_operand(cmd, operands++);
        if (!o) return refuse(err, cmd, "unexpected argument '%s'", argv[i]);
        seen[o - cmd->opts] = 1;
        *(const char **)field_of(args, o) = argv[i];
    }
    return check_required(cmd, seen, err);
}

int gt_cli_args(const gt_cli_cmd *cmd, int argc, char **argv, void *args) {
    gt_err err;
    int r = gt_cli_parse(cmd, argc, argv, args, &err);
    if (r == 0) return GT_CLI_GO;
    if (r > 0) {
        gt_cli_help(cmd, stdout);
        return 0;
    }
    fprintf(stderr, "gemmatron: %s\n", err.msg);
    return GT_EXIT_USAGE;
}

void gt_cli_list_free(gt_cli_list *l) {
    free(l->opt);
    free(l->value);
    *l = (gt_cli_list){0};
}

/* ---- help ---- */

/* Writes word at *col, first breaking the line (to column indent) when it would pass the width. */
static void put_word(FILE *f, const char *word, size_t len, int indent, int *col) {
    if (*col > indent && *col + 1 + (int)len > HELP_WIDTH) {
        fprintf(f, "\n%*s", indent, "");
        *col = indent;
    } else if (*col > indent) {
        fputc(' ', f);
        (*col)++;
    }
    fwrite(word, 1, len, f);
    *col += (int)len;
}

/* Text wrapped to the width, continuation lines at column indent; '\n' starts a new line. */
static void put_text(FILE *f, const char *text, int indent, int *col) {
    for (const char *p = text; *p;) {
        if (*p == '\n') {
            fprintf(f, "\n%*s", indent, "");
            *col = indent;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t len = strcspn(p, " \n");
        put_word(f, p, len, indent, col);
        p += len;
    }
}

/* "--seq-len T", "--set KEY=VALUE ...", "--fp8", "DIR": how the option is written. */
static void synopsis(const gt_opt *o, char *buf, size_t len) {
    if (o->kind == GT_OPT_OPERAND || o->kind == GT_OPT_FLAG) snprintf(buf, len, "%s", o->name);
    else snprintf(buf, len, "%s %s%s", o->name, o->meta, o->kind == GT_OPT_LIST ? " ..." : "");
}

static void usage_line(const gt_cli_cmd *cmd, FILE *f) {
    int col = fprintf(f, "usage: gemmatron %s", cmd->name);
    for (int k = 0; k < cmd->nopts; k++) {
        char syn[128], word[136];
        synopsis(&cmd->opts[k], syn, sizeof syn);
        snprintf(word, sizeof word, cmd->opts[k].required ? "%s" : "[%s]", syn);
        put_word(f, word, strlen(word), 8, &col);
    }
    fputc('\n', f);
}

static void print_option(const gt_opt *o, FILE *f) {
    char syn[128], tail[256] = "";
    synopsis(o, syn, sizeof syn);
    int col = fprintf(f, "  %-*s ", HELP_COLUMN - 3, syn);
    if (col > HELP_COLUMN) fprintf(f, "\n%*s", HELP_COLUMN, ""); /* a long name: its help on the next line */
    col = HELP_COLUMN;
    put_text(f, o->help, HELP_COLUMN, &col);
    const char *def = o->def_help ? o->def_help : o->def ? o->def : o->kind == GT_OPT_FLAG ? "off" : "none";
    if (o->required) snprintf(tail, sizeof tail, "(required)");
    else snprintf(tail, sizeof tail, "(default: %s)", def);
    put_text(f, tail, HELP_COLUMN, &col);
    fputc('\n', f);
}

static void print_section(const gt_cli_cmd *cmd, FILE *f, int operands) {
    int any = 0;
    for (int k = 0; k < cmd->nopts; k++) {
        if ((cmd->opts[k].kind == GT_OPT_OPERAND) != operands) continue;
        if (!any++) fprintf(f, "\n%s:\n", operands ? "arguments" : "options");
        print_option(&cmd->opts[k], f);
    }
    if (!operands) {
        if (!any) fprintf(f, "\noptions:\n");
        fprintf(f, "  %-*s %s\n", HELP_COLUMN - 3, "-h, --help", "prints this help and exits");
    }
}

void gt_cli_help(const gt_cli_cmd *cmd, FILE *f) {
    usage_line(cmd, f);
    if (cmd->about) {
        int col = 0;
        fputc('\n', f);
        put_text(f, cmd->about, 0, &col);
        fputc('\n', f);
    }
    print_section(cmd, f, 1);
    print_section(cmd, f, 0);
    if (cmd->examples) {
        fprintf(f, "\nexamples:\n");
        for (const char *p = cmd->examples; *p;) {
            size_t len = strcspn(p, "\n");
            fprintf(f, "  %.*s\n", (int)len, p);
            p += len + (p[len] == '\n');
        }
    }
}
