/* gemmatron: fine-tunes Gemma models. One process per GPU; subcommands below, each with its own
 * option table (train/cmd/cli.h), so `gemmatron help CMD` and `gemmatron CMD --help` print the same. */
#include <stdio.h>
#include <string.h>

#include "bench_cmd.h"
#include "calibrate_cmd.h"
#include "eval_cmd.h"
#include "export_cmd.h"
#include "generate_cmd.h"
#include "inspect_cmd.h"
#include "train_cmd.h"
#include "version.h"

typedef struct {
    const gt_cli_cmd *cli;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {&gt_train_cli, gt_cmd_train},     {&gt_eval_cli, gt_cmd_eval},       {&gt_generate_cli, gt_cmd_generate}, {&gt_bench_cli, gt_cmd_bench},
    {&gt_export_cli, gt_cmd_export},   {&gt_inspect_cli, gt_cmd_inspect}, {&gt_version_cli, gt_cmd_version},
    {&gt_calibrate_cli, gt_cmd_calibrate},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static const command *find_command(const char *name) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].cli->name, name)) return &commands[i];
    return NULL;
}

static void usage(FILE *f) {
    fputs("usage: gemmatron <command> [options]\n\ncommands:\n", f);
    for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-9s %s\n", commands[i].cli->name, commands[i].cli->summary);
    fputs("  help      this list; `gemmatron help COMMAND` (or `gemmatron COMMAND --help`): the command's\n"
          "            options, their defaults and examples\n\n"
          "gemmatron --version: the version, git commit, build type and CUDA/NCCL versions compiled in.\n"
          "Multi-GPU: mpirun -np N gemmatron train|eval|generate|bench|calibrate ... (one process per GPU).\n",
          f);
}

static int unknown_command(const char *name) {
    fprintf(stderr, "gemmatron: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}

/* gemmatron help [COMMAND] */
static int help(int argc, char **argv) {
    if (argc == 0) {
        usage(stdout);
        return 0;
    }
    const command *c = find_command(argv[0]);
    if (!c) return unknown_command(argv[0]);
    gt_cli_help(c->cli, stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return help(argc - 2, argv + 2);
    if (!strcmp(cmd, "--version")) return gt_cmd_version(argc - 2, argv + 2);
    const command *c = find_command(cmd);
    return c ? c->run(argc - 2, argv + 2) : unknown_command(cmd);
}
