/* gemmatron generate --model DIR (--prompt TEXT | --prompt-ids IDS | --prompts FILE.jsonl) ...
 *
 * Prompts are batched (--batch-size at a time); each is prefilled alone through the training
 * forward, then the batch decodes together, one token per sequence per step, with the KV cache of
 * model/decoder.h, until every sequence has met EOS, a stop string, --max-new-tokens or the
 * model's context. Under mpirun every rank runs the same prompts on its tp slice (each caches its
 * KV heads) and rank 0 prints. Output: each completion's text followed by a newline, or with
 * --jsonl one JSON object a line: {"index", "prompt_ids", "ids", "text", "finish"}. --bench runs the
 * first batch once untimed (warm-up), then prints time to first token and decode tokens/s on stderr;
 * --profile then times one decode step op by op (generate_profile.h).
 * --fp8 runs the GEMMs in FP8 with the scales of DIR/fp8_state.safetensors (`gemmatron calibrate`),
 * as they are in the file: generation records no amax and updates no scale (model/decoder.h). */
#define _POSIX_C_SOURCE 200809L
#include "generate_cmd.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../comm/grid.h"
#include "../../comm/watchdog.h"
#include "../../core/clock.h"
#include "../../model/decoder.h"
#include "../../model/linear.h"
#include "../ckpt/calibrated.h"
#include "../sampler.h"
#include "../session.h"
#include "generate_profile.h"
#include "generate_prompts.h"

typedef struct {
    const char *model, *prompt, *prompt_ids, *prompts, *tokenizer, *device, *temperature, *top_p;
    gt_cli_list stop; /* --stop, each occurrence */
    int max_new, top_k, seed, batch, tp, jsonl, no_graphs, bench, profile, ignore_eos, random_init, fp8;
} gen_args;

static const gt_opt gen_opts[] = {
    {.name = "--model", .kind = GT_OPT_STRING, .offset = offsetof(gen_args, model), .meta = "DIR", .required = 1,
     .help = "an HF Gemma directory (config.json, safetensors) or a gemmatron checkpoint"},
    {.name = "--prompt", .kind = GT_OPT_STRING, .offset = offsetof(gen_args, prompt), .meta = "TEXT",
     .help = "one plain-text prompt ([bos] + its tokens)"},
    {.name = "--prompt-ids", .kind = GT_OPT_STRING, .offset = offsetof(gen_args, prompt_ids), .meta = "IDS",
     .help = "one prompt as token ids, separated by spaces or commas (taken as they are)"},
    {.name = "--prompts", .kind = GT_OPT_STRING, .offset = offsetof(gen_args, prompts), .meta = "FILE",
     .help = "a JSONL file of prompts, one a line: {\"prompt\": TEXT}, {\"messages\": [...]} (a chat, rendered in "
             "Gemma's turn format, ending with the model's turn) or {\"ids\": [...]}"},
    {.name = "--tokenizer", .kind = GT_OPT_STRING, .offset = offsetof(gen_args, tokenizer), .meta = "PATH",
     .def_help = "DIR/tokenizer.json when it exists, else byte for a model of 259 tokens",
     .help = "a tokenizer.json (through the Python tokenizers package) or 'byte' (the demo's byte vocabulary)"},
    {.name = "--max-new-tokens", .kind = GT_OPT_INT, .offset = offsetof(gen_args, max_new), .meta = "N", .def = "64",
     .min = 1, .help = "tokens to generate at most per prompt"},
    {.name = "--stop", .kind = GT_OPT_LIST, .offset = offsetof(gen_args, stop), .meta = "TEXT",
     .help = "also stop a sequence where its text contains TEXT (the text is cut before it); may be given more than once"},
    {.name = "--temperature", .kind = GT_OPT_STRING, .offset = offsetof(gen_args, temperature), .meta = "T",
     .def = "0", .help = "0: greedy (the most likely token); > 0: sample from softmax(logits / T)"},
    {.name = "--top-k", .kind = GT_OPT_INT, .offset = offsetof(gen_args, top_k), .meta = "K", .def = "0", .min = 0,
     .help = "sample only from the K most likely tokens (0: all)"},
    {.name = "--top-p", .kind = GT_OPT_STRING, .offset = offsetof(gen_args, top_p), .meta = "P", .def = "1",
     .help = "sample only from the smallest set of most likely tokens whose probability reaches P"},
    {.name = "--seed", .kind = GT_OPT_INT, .offset = offsetof(gen_args, seed), .meta = "S", .def = "0", .min = 0,
     .help = "seed of the sampling (the same seed gives the same tokens)"},
    {.name = "--batch-size", .kind = GT_OPT_INT, .offset = offsetof(gen_args, batch), .meta = "B", .def = "64",
     .min = 1, .help = "prompts decoded together"},
    {.name = "--tp", .kind = GT_OPT_INT, .offset = offsetof(gen_args, tp), .meta = "N", .def = "1", .min = 1,
     .help = "tensor-parallel ranks (under mpirun)"},
    {.name = "--device", .kind = GT_OPT_STRING, .offset = offsetof(gen_args, device), .meta = "D", .def = "auto",
     .help = "auto (cuda when a GPU is visible), cpu, cpu64 or cuda"},
    {.name = "--jsonl", .kind = GT_OPT_FLAG, .offset = offsetof(gen_args, jsonl), .flag = 1,
     .help = "print one JSON object per prompt: index, prompt_ids, ids, text, finish (eos, stop, length)"},
    {.name = "--no-cuda-graphs", .kind = GT_OPT_FLAG, .offset = offsetof(gen_args, no_graphs), .flag = 1,
     .help = "run each decode step's kernels directly instead of replaying a captured CUDA graph"},
    {.name = "--bench", .kind = GT_OPT_FLAG, .offset = offsetof(gen_args, bench), .flag = 1,
     .help = "print time to first token and decode tokens/s on stderr"},
    {.name = "--profile", .kind = GT_OPT_FLAG, .offset = offsetof(gen_args, profile), .flag = 1,
     .help = "after generating, time one decode step op by op (batch of --batch-size at the cache's last "
             "position) and print the op classes on stderr"},
    {.name = "--ignore-eos", .kind = GT_OPT_FLAG, .offset = offsetof(gen_args, ignore_eos), .flag = 1,
     .help = "do not stop at EOS (benchmarks: exactly --max-new-tokens per prompt)"},
    {.name = "--fp8", .kind = GT_OPT_FLAG, .offset = offsetof(gen_args, fp8), .flag = 1,
     .help = "every layer GEMM (and the lm_head where the state has it) in FP8 with the calibrated scales of "
             "DIR/fp8_state.safetensors, written by `gemmatron calibrate` (or an FP8 training checkpoint's), never "
             "updated while generating"},
    {.name = "--random-init", .kind = GT_OPT_FLAG, .offset = offsetof(gen_args, random_init), .flag = 1,
     .help = "HF's random initialization from DIR's config.json instead of its weights (benchmarks)"},
};

const gt_cli_cmd gt_generate_cli = {
    .name = "generate",
    .summary = "text from a model: greedy or sampled, with a KV cache",
    .about = "Generates a completion for each prompt with a KV cache (prefill, then one token per step), stopping "
             "at EOS, at --stop or after --max-new-tokens. Prints each completion followed by a newline, or JSONL "
             "with token ids (--jsonl).",
    .examples = "gemmatron generate --model runs/tiny-cpu/final --prompt 'The ' --max-new-tokens 40\n"
                "gemmatron generate --model gemma-2b --prompts chat.jsonl --temperature 0.7 --top-p 0.9 --seed 1\n"
                "gemmatron generate --model tests/fixtures/gqa --prompt-ids '2 17 40' --jsonl --device cpu\n"
                "gemmatron generate --model gemma-2b-fp8 --fp8 --prompt 'Hello' (a `gemmatron calibrate` output)\n"
                "mpirun -np 2 gemmatron generate --model gemma-7b --tp 2 --prompt 'Hello'",
    GT_CLI_OPTS(gen_opts),
};

static int parse_real(const char *s, const char *opt, double lo, double hi, double *out, gt_err *err) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (end == s || *end || errno || !(*out >= lo && *out <= hi))
        return gt_fail(err, "generate: %s %s: expected a number in [%g, %g]", opt, s, lo, hi);
    return 0;
}

/* The tokenizer: --tokenizer, else DIR/tokenizer.json, else the byte vocabulary for a model of 259
 * tokens; *have = 0 when there is none (prompts and output as ids only). */
static int open_tokenizer(gt_tokenizer *t, const gen_args *a, int vocab, char *path, size_t len, int *have,
                          gt_err *err) {
    const char *p = a->tokenizer;
    if (!p) {
        snprintf(path, len, "%s/tokenizer.json", a->model);
        if (access(path, R_OK) == 0) p = path;
        else if (vocab == 259) p = "byte";
    }
    *have = p != NULL;
    return p ? gt_tokenizer_open(t, p, vocab, err) : 0;
}

typedef struct {
    int32_t *ids; /* [max_new] generated */
    int n;
    const char *finish;
    char *text;
} completion;

/* Whether the byte text of ids[0..n) ends with one of the stop strings: the sequence is done. Only
 * the byte vocabulary is checked while decoding; other tokenizers' texts are cut after decoding. */
static int byte_stop_hit(const int32_t *ids, int n, const gt_cli_list *stop) {
    for (int i = 0; i < stop->n; i++) {
        size_t sl = strlen(stop->value[i]), k = 0;
        if (!sl || (size_t)n < sl) continue;
        while (k < sl && ids[n - sl + k] == (unsigned char)stop->value[i][k] + 3) k++;
        if (k == sl) return 1;
    }
    return 0;
}

typedef struct {
    double prefill_s, decode_s, first_token_s;
    long decode_tokens, steps;
} gen_timing;

/* Generates for prompts [i0, i0 + B) with the decoder (sized for at least B sequences). */
static void generate_batch(gt_decoder *d, const gt_prompts *p, int i0, int B, const gen_args *a,
                           gt_sampler *smp, int byte_vocab, completion *out, gen_timing *tm) {
    gt_model *m = d->m;
    int vocab = m->cfg.vocab_size, eos = m->cfg.eos_token_id;
    /* greedy: only the picks come to the host (ops argmax_rows); sampling needs the logits */
    int greedy = smp->temperature <= 0;
    float *logits = greedy ? NULL : gt_malloc((size_t)B * vocab * sizeof(float));
    int32_t *next = gt_malloc((size_t)B * sizeof(int32_t));
    int32_t *tok = gt_malloc((size_t)B * sizeof(int32_t)), *pos = gt_malloc((size_t)B * sizeof(int32_t));
    int32_t *step_pos = gt_malloc((size_t)B * sizeof(int32_t));
    uint64_t *rng = gt_malloc((size_t)B * sizeof(uint64_t));
    int *done = gt_calloc((size_t)B, sizeof(int));
    double t0 = gt_now();
    for (int b = 0; b < B; b++) {
        gt_decoder_prefill(d, b, p->ids[i0 + b], p->n[i0 + b], greedy ? NULL : logits + (size_t)b * vocab, next + b);
        rng[b] = gt_sampler_stream((uint64_t)a->seed, (uint64_t)(i0 + b));
        out[b].ids = gt_malloc((size_t)a->max_new * sizeof(int32_t));
        out[b].n = 0;
        out[b].finish = "length";
        pos[b] = p->n[i0 + b];
        if (b == 0) tm->first_token_s += gt_now() - t0;
    }
    tm->prefill_s += gt_now() - t0;
    int active = B;
    double t1 = gt_now();
    for (int step = 0; active > 0; step++) {
        for (int b = 0; b < B; b++) {
            if (done[b]) continue;
            int32_t t = greedy ? next[b] : gt_sampler_next(smp, logits + (size_t)b * vocab, &rng[b]);
            out[b].ids[out[b].n++] = t;
            tok[b] = t;
            if (!a->ignore_eos && t == eos) done[b] = 1, out[b].finish = "eos";
            else if (byte_vocab && byte_stop_hit(out[b].ids, out[b].n, &a->stop))
                done[b] = 1, out[b].finish = "stop";
            else if (out[b].n >= a->max_new || pos[b] >= d->Tmax) done[b] = 1;
            active -= done[b];
        }
        if (active == 0) break;
        /* Finished sequences keep stepping (their tokens are dropped): the batch keeps its shape,
         * so one captured graph serves the whole batch. */
        for (int b = 0; b < B; b++) step_pos[b] = done[b] ? 0 : pos[b];
        gt_decoder_step(d, B, tok, step_pos, logits, greedy ? next : NULL);
        for (int b = 0; b < B; b++) pos[b] += !done[b];
        tm->decode_tokens += active;
        tm->steps++;
    }
    tm->decode_s += gt_now() - t1;
    free(done);
    free(rng);
    free(next);
    free(step_pos);
    free(pos);
    free(tok);
    free(logits);
}

/* The completion's text, cut before the first stop string in it. */
static void cut_at_stop(completion *c, const gt_cli_list *stop) {
    char *hit = NULL;
    for (int i = 0; i < stop->n; i++) {
        char *h = *stop->value[i] ? strstr(c->text, stop->value[i]) : NULL;
        if (h && (!hit || h < hit)) hit = h;
    }
    if (hit) {
        *hit = 0;
        c->finish = "stop";
    }
}

static void print_completion(const gen_args *a, const gt_prompts *p, int i, const completion *c) {
    if (!a->jsonl) {
        if (c->text) printf("%s\n", c->text);
        else {
            for (int k = 0; k < c->n; k++) printf(k ? " %d" : "%d", c->ids[k]);
            printf("\n");
        }
        return;
    }
    json_t *o = json_object(), *pi = json_array(), *ids = json_array();
    for (int k = 0; k < p->n[i]; k++) json_array_append_new(pi, json_integer(p->ids[i][k]));
    for (int k = 0; k < c->n; k++) json_array_append_new(ids, json_integer(c->ids[k]));
    json_object_set_new(o, "index", json_integer(i));
    json_object_set_new(o, "prompt_ids", pi);
    json_object_set_new(o, "ids", ids);
    json_object_set_new(o, "text", c->text ? json_string(c->text) : json_null());
    json_object_set_new(o, "finish", json_string(c->finish));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* The text of each completion (without its EOS), through the tokenizer. */
static int decode_texts(const gt_tokenizer *t, completion *c, int B, int eos, const gt_cli_list *stop, gt_err *err) {
    int32_t **ids = gt_malloc((size_t)B * sizeof *ids);
    int *n = gt_malloc((size_t)B * sizeof *n);
    for (int b = 0; b < B; b++) {
        ids[b] = c[b].ids;
        n[b] = c[b].n - (c[b].n > 0 && !strcmp(c[b].finish, "eos") && c[b].ids[c[b].n - 1] == eos);
    }
    char **text;
    int rc = gt_tokenizer_decode(t, ids, n, B, &text, err);
    for (int b = 0; b < B; b++) {
        c[b].text = text[b];
        if (!rc) cut_at_stop(&c[b], stop);
    }
    free(text);
    free(n);
    free(ids);
    return rc;
}

static int check_lengths(const gt_prompts *p, const gt_config *cfg, int *longest, gt_err *err) {
    *longest = 0;
    for (int i = 0; i < p->count; i++) {
        if (p->n[i] > cfg->max_position_embeddings)
            return gt_fail(err, "generate: prompt %d has %d tokens, longer than the model's context of %d", i + 1,
                           p->n[i], cfg->max_position_embeddings);
        if (p->n[i] > *longest) *longest = p->n[i];
    }
    return 0;
}

/* FP8 on with the state of the model directory (every rank reads it whole; the state does not
 * depend on tp). No amax group: inference updates no scale, so nothing is ever reduced. */
static int enable_fp8(gt_model *m, const char *dir, gt_err *err) {
    int r = gt_fp8_state_enable(m, dir, NULL, err);
    if (r < 0) return -1;
    if (r == 0)
        return gt_fail(err, "generate --fp8: %s has no fp8_state.safetensors (the FP8 scales): make an FP8-calibrated "
                            "directory with `gemmatron calibrate --model %s --data FILE --out DIR`, then generate "
                            "--model DIR --fp8",
                       dir, dir);
    return 0;
}

/* The banner's FP8 part: the GEMMs in FP8 (the others' shapes run BF16) and their scales' file. */
static void fp8_banner(const gt_model *m, const char *dir, char *out, size_t len) {
    if (!m->fp8) {
        out[0] = 0;
        return;
    }
    int layers = GT_GEMMS * m->lay.L, fp8 = 0;
    for (int s = 0; s < layers; s++) fp8 += gt_linear_fp8_shape(m, s);
    int head = m->fp8->recipe.lm_head && gt_linear_fp8_shape(m, layers);
    snprintf(out, len, ", FP8 GEMMs (%d of %d layer GEMMs%s, scales of %s/fp8_state.safetensors)", fp8, layers,
             head ? " + lm_head" : ", lm_head BF16", dir);
}

static int run_generate(const gen_args *a, gt_grid *g, gt_err *err) {
    double temperature, top_p;
    if (parse_real(a->temperature, "--temperature", 0, 1e6, &temperature, err) ||
        parse_real(a->top_p, "--top-p", 1e-9, 1, &top_p, err))
        return -1;
    gt_prompts p;
    if (gt_prompts_read(&p, a->prompt, a->prompt_ids, a->prompts, err)) {
        gt_prompts_free(&p);
        return -1;
    }
    gt_session_spec spec = {.device = a->device, .config = a->model, .weights = a->random_init ? NULL : a->model,
                            .forward_only = 1};
    gt_session s;
    if (gt_session_open(&s, &spec, g, err)) {
        gt_prompts_free(&p);
        return -1;
    }
    gt_model *m = &s.model;
    const gt_config *cfg = &m->cfg;
    gt_tokenizer tok;
    char tpath[4096], fp8_note[4200];
    int have_tok = 0, longest = 0, rc = -1;
    gt_decoder d = {0};
    gt_sampler smp;
    gt_sampler_init(&smp, cfg->vocab_size, temperature, a->top_k, top_p);
    if (a->fp8 && enable_fp8(m, a->model, err)) goto out;
    /* The tokenizer runs Python on every rank, for as long as it takes: not a collective to watch. */
    int armed = gt_watchdog_arm(g->wd, 0);
    int bad = open_tokenizer(&tok, a, cfg->vocab_size, tpath, sizeof tpath, &have_tok, err) ||
              gt_prompts_encode(&p, have_tok ? &tok : NULL, cfg->bos_token_id, cfg->vocab_size, err) ||
              check_lengths(&p, cfg, &longest, err);
    gt_watchdog_arm(g->wd, armed);
    if (bad) goto out;
    int B = a->batch < p.count ? a->batch : p.count;
    int64_t tmax = (int64_t)longest + a->max_new;
    if (tmax > cfg->max_position_embeddings) tmax = cfg->max_position_embeddings;
    if (gt_decoder_init(&d, m, B, (int)tmax, err)) goto out;
    gt_decoder_graphs(&d, !a->no_graphs);
    fp8_banner(m, a->model, fp8_note, sizeof fp8_note);
    if (g->world_rank == 0)
        fprintf(stderr, "gemmatron generate: %s on %s (tp=%d), %d prompts, batch %d, cache %d positions%s%s\n",
                a->model, s.compute.ops->name, g->tp, p.count, B, (int)tmax,
                d.graphs ? ", CUDA graphs" : "", fp8_note);
    gen_timing tm = {0};
    completion *c = gt_calloc((size_t)B, sizeof *c);
    if (a->bench) { /* a warm-up of the first batch, untimed: GEMM plans, attention plans, graph capture */
        gen_timing warm = {0};
        generate_batch(&d, &p, 0, B, a, &smp, have_tok && tok.byte, c, &warm);
        for (int b = 0; b < B; b++) free(c[b].ids), c[b].ids = NULL;
    }
    rc = 0;
    for (int i0 = 0; i0 < p.count && !rc; i0 += B) {
        int nb = p.count - i0 < B ? p.count - i0 : B;
        generate_batch(&d, &p, i0, nb, a, &smp, have_tok && tok.byte, c, &tm);
        if (have_tok && g->world_rank == 0) { /* rank 0 alone (Python start-up and decode) */
            armed = gt_watchdog_arm(g->wd, 0);
            rc = decode_texts(&tok, c, nb, cfg->eos_token_id, &a->stop, err);
            gt_watchdog_arm(g->wd, armed);
        }
        for (int b = 0; b < nb; b++) {
            if (!rc && g->world_rank == 0) print_completion(a, &p, i0 + b, &c[b]);
            free(c[b].ids);
            free(c[b].text);
            memset(&c[b], 0, sizeof c[b]);
        }
    }
    fflush(stdout);
    free(c);
    if (!rc && a->bench && g->world_rank == 0)
        fprintf(stderr, "gemmatron generate: bench: time to first token %.2f ms, prefill %.3f s, decode %ld tokens "
                        "in %ld steps, %.3f s, %.1f tokens/s (%.2f ms/step), CUDA graphs %s, GEMMs %s\n",
                tm.first_token_s * 1e3, tm.prefill_s, tm.decode_tokens, tm.steps, tm.decode_s,
                tm.decode_s > 0 ? tm.decode_tokens / tm.decode_s : 0.0,
                tm.steps ? tm.decode_s * 1e3 / tm.steps : 0.0, d.graphs ? "on" : "off", m->fp8 ? "FP8" : "BF16");
    if (!rc && a->profile)
        gt_generate_profile(&d, B, tm.steps ? tm.decode_s * 1e3 / tm.steps : 0.0, g->world_rank == 0);
out:
    gt_decoder_free(&d);
    gt_sampler_free(&smp);
    gt_session_close(&s);
    gt_prompts_free(&p);
    return rc;
}

int gt_cmd_generate(int argc, char **argv) {
    gen_args a = {0};
    gt_err err;
    gt_grid g;
    int code = gt_cli_args(&gt_generate_cli, argc, argv, &a);
    if (code != GT_CLI_GO) {
        gt_cli_list_free(&a.stop);
        return code;
    }
    if (gt_grid_init(&g, &argc, &argv, a.tp, &err)) {
        gt_cli_list_free(&a.stop);
        fprintf(stderr, "gemmatron: %s\n", err.msg);
        return 1;
    }
    int rc = run_generate(&a, &g, &err);
    gt_cli_list_free(&a.stop);
    if (rc) fprintf(stderr, "gemmatron: %s\n", err.msg);
    gt_grid_free(&g);
    return rc ? 1 : 0;
}
