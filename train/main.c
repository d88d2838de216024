/* gemmatron: fine-tunes Gemma models. One process per GPU; subcommands below. */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "eval.h"

static void usage(FILE *f) {
    fputs("usage: gemmatron <command> [options]\n"
          "commands:\n"
          "  eval --model HF_DIR --data FILE [--seq-len T] [--device auto|cpu|cuda]\n"
          "      mean next-token loss of an HF Gemma checkpoint on a token file\n"
          "      (a gemmatron token shard, or whitespace-separated token ids)\n"
          "  bench --model DIR [--batch B] [--seq T] [--steps S] [--warmup W] [--profile]\n"
          "      times full training steps (random init when DIR holds only config.json)\n"
          "  help\n",
          f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "eval")) return gt_cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return gt_cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "gemmatron: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
