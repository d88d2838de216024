/* The command line of every subcommand: one table of option specs per command, one parser and one
 * help printer for all of them, so that every command answers --help and -h, and every bad command
 * line is refused with a message that names the option and the value.
 *
 * A command describes its options as a const array of gt_opt, each naming the field of the
 * command's own argument struct it fills (offsetof), and calls gt_cli_args() first thing. Rules:
 * - "--name VALUE": a value that starts with "--" is taken for the next option, not for a value
 *   (so "--set --run-dir X" says that --set needs a value, not that X is unknown);
 * - a string option given twice keeps the last value; list options keep every occurrence in order;
 * - "-h" or "--help" in the place of an option prints the help on stdout and ends with status 0;
 * - any error prints one line on stderr ("gemmatron: CMD: ... (see gemmatron CMD --help)") and
 *   ends with status 2 (GT_EXIT_USAGE), the usual status of a command line that cannot run. */
#ifndef GT_TRAIN_CLI_H
#define GT_TRAIN_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "../../core/base.h"

#define GT_EXIT_USAGE 2
/* gt_cli_args: go on with the command (any other value is the exit status to return). */
#define GT_CLI_GO (-1)
/* The largest value an integer option takes (larger ones are typing errors, not sizes). */
#define GT_OPT_INT_MAX (1 << 30)

typedef enum {
    GT_OPT_FLAG,    /* no value: stores .flag into an int field, which starts as !.flag */
    GT_OPT_INT,     /* an integer >= .min into an int field; .def, when set, is its start value */
    GT_OPT_STRING,  /* the value (argv's own string) into a const char * field; .def: start value */
    GT_OPT_LIST,    /* every occurrence, in order, into a gt_cli_list; options may share one list */
    GT_OPT_CUSTOM,  /* the value converted by .parse (no start value); a failure says what .expect says */
    GT_OPT_OPERAND, /* a positional argument (not "--..."), the n-th operand spec for the n-th one */
} gt_opt_kind;

typedef struct {
    const char *name; /* "--seq-len", or for an operand its placeholder ("DIR") */
    gt_opt_kind kind;
    size_t offset;    /* of the field in the command's argument struct */
    const char *meta; /* the value's placeholder in the help ("T"); unused by flags and operands */
    const char *def;  /* the default, shown by the help; applied as the start value (see kinds) */
    const char *def_help; /* instead, the default in words where it is no value ("the context length") */
    const char *help; /* one sentence or more; wrapped by the help printer */
    int min;          /* GT_OPT_INT: the smallest value */
    int flag;         /* GT_OPT_FLAG: the value stored when the flag is given */
    int required;     /* a command line without it is refused */
    int (*parse)(const char *value, void *field); /* GT_OPT_CUSTOM: 0, or -1 for a bad value */
    const char *expect; /* GT_OPT_CUSTOM: what a good value looks like ("bf16 or fp32") */
} gt_opt;

typedef struct {
    const char *name;     /* "eval" */
    const char *summary;  /* one line for `gemmatron help` */
    const char *about;    /* what the command does, shown by its help after the usage line */
    const char *examples; /* command lines, one per line, shown last */
    const gt_opt *opts;
    int nopts;
} gt_cli_cmd;

/* In a gt_cli_cmd initializer: its option table, counted. */
#define GT_CLI_OPTS(table) .opts = (table), .nopts = (int)(sizeof(table) / sizeof(table)[0])

/* What a GT_OPT_LIST field holds: the options given (by name) and their values, in command-line
 * order. Filled by the parser; the command frees it with gt_cli_list_free. */
typedef struct {
    int n;
    const char **opt, **value;
} gt_cli_list;

/* Fills args from argv (the command's arguments, without its name): start values first, then
 * every argument. Returns 0 to go on, 1 when help was asked for, -1 with err naming the bad
 * option or value. args must be zeroed (or hold the command's own start values of CUSTOM fields). */
int gt_cli_parse(const gt_cli_cmd *cmd, int argc, char **argv, void *args, gt_err *err);
/* gt_cli_parse, then the help on stdout (returns 0) or the error on stderr (returns
 * GT_EXIT_USAGE); GT_CLI_GO when the command should run. */
int gt_cli_args(const gt_cli_cmd *cmd, int argc, char **argv, void *args);
/* Usage line, about, every option with its default, examples. */
void gt_cli_help(const gt_cli_cmd *cmd, FILE *f);
void gt_cli_list_free(gt_cli_list *l);

#endif
