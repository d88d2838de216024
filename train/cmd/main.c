/* gemmatron: fine-tunes Gemma models. One process per GPU; subcommands below. */
#include <stdio.h>
#include <string.h>

#include "bench_cmd.h"
#include "eval_cmd.h"
#include "export_cmd.h"
#include "inspect_cmd.h"
#include "train_cmd.h"

static void usage(FILE *f) {
    fputs("usage: gemmatron <command> [options]\n"
          "commands:\n"
          "  eval --model HF_DIR --data FILE [--seq-len T] [--tp N] [--device auto|cpu|cuda] [--logits OUT]\n"
          "      mean next-token loss of an HF Gemma checkpoint on a token file\n"
          "      (a gemmatron token shard, or whitespace-separated token ids)\n"
          "  bench --model DIR [--batch B] [--seq T] [--steps S] [--warmup W] [--tp N] [--accum K] [--fp8] [--fp8-lm-head] [--profile]\n"
          "      times full training steps (random init when DIR holds only config.json)\n"
          "  train --config FILE [--set key=value ...] [--run-dir DIR]\n"
          "      fine-tunes a Gemma model as the YAML run config says (see configs/)\n"
          "  export --checkpoint DIR --out HF_DIR [--dtype bf16|fp32] [--max-shard-size 5GB]\n"
          "      a checkpoint (or HF directory) as a plain HF model directory for transformers\n"
          "  inspect DIR\n"
          "      summary of a checkpoint, HF model or run directory, and whether it is complete\n"
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
    if (!strcmp(cmd, "train")) return gt_cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "export")) return gt_cmd_export(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return gt_cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "gemmatron: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
