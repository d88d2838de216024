/* The run config's schema table, the generic parsing and range checks of each type, defaults,
 * command-line overrides and the checks across keys. */
#include "run_config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "run_config_schema.h"

#define OFF(field) offsetof(gt_run_config, field)
#define BIG 9e15 /* "no upper bound" for integers, still exact in a double */
#define RC_COUNT ((int)(sizeof schema / sizeof schema[0]))

/* Sections in this order are what the written YAML shows; the help text becomes its comments. */
static const rc_field schema[] = {
    {"model.path", RC_STR, OFF(model_path), "null", 0, 0, 0, 0, 1, NULL,
     "HF checkpoint directory (config.json + safetensors) to fine-tune; null: train from scratch"},
    {"model.config", RC_STR, OFF(model_config), "null", 0, 0, 0, 0, 1, NULL,
     "HF config.json (or its directory) of a randomly initialized model (HF's init); used only when "
     "model.path is null"},
    {"data.train", RC_LIST, OFF(data_train), "[]", 0, 0, 0, 0, 0, NULL,
     "training token shards (files or globs) made by scripts/prepare_data.py"},
    {"data.val", RC_LIST, OFF(data_val), "[]", 0, 0, 0, 0, 0, NULL,
     "validation token shards (separate files); empty: no evaluation"},
    {"data.seq_len", RC_INT, OFF(seq_len), "2048", 2, 1 << 20, 0, 0, 0, NULL,
     "tokens per sequence; documents are packed into sequences"},
    {"data.micro_batch", RC_INT, OFF(micro_batch), "1", 1, 1 << 16, 0, 0, 0, NULL,
     "sequences per forward/backward pass on each data-parallel rank"},
    {"data.grad_accum", RC_INT, OFF(grad_accum), "1", 1, 1 << 20, 0, 0, 0, NULL,
     "micro-batches per optimizer step (global batch = micro_batch x grad_accum x dp)"},
    {"data.shuffle", RC_BOOL, OFF(shuffle), "true", 0, 0, 0, 0, 0, NULL,
     "visit the sequences in a new random order each epoch"},
    {"data.shuffle_seed", RC_INT, OFF(shuffle_seed), "1234", 0, BIG, 0, 0, 0, NULL,
     "seed of the sequence order (same seed, same order on every rank and resume)"},
    {"data.doc_masking", RC_BOOL, OFF(doc_masking), "true", 0, 0, 0, 0, 0, NULL,
     "attention stays inside each document; positions restart at each document start"},
    {"optim.lr", RC_REAL, OFF(lr), "1e-5", 0, 10, 0, 0, 0, NULL,
     "peak learning rate (AdamW)"},
    {"optim.beta1", RC_REAL, OFF(beta1), "0.9", 0, 1, 0, 1, 0, NULL, "AdamW beta1, in [0, 1)"},
    {"optim.beta2", RC_REAL, OFF(beta2), "0.999", 0, 1, 0, 1, 0, NULL, "AdamW beta2, in [0, 1)"},
    {"optim.eps", RC_REAL, OFF(eps), "1e-8", 0, 1, 1, 0, 0, NULL, "AdamW epsilon, > 0"},
    {"optim.weight_decay", RC_REAL, OFF(weight_decay), "0.0", 0, 10, 0, 0, 0, NULL,
     "decoupled weight decay of the matrices (norm weights have none)"},
    {"optim.clip", RC_REAL, OFF(clip), "1.0", 0, 1e9, 0, 0, 0, NULL,
     "global gradient-norm clip; 0: none"},
    {"optim.warmup_steps", RC_INT, OFF(warmup_steps), "0", 0, BIG, 0, 0, 0, NULL,
     "steps of linear warmup from lr/warmup_steps to lr"},
    {"optim.schedule", RC_ENUM, OFF(schedule), "cosine", 0, 0, 0, 0, 0, "cosine|linear|constant",
     "decay after warmup down to lr x min_lr_ratio at the last step"},
    {"optim.min_lr_ratio", RC_REAL, OFF(min_lr_ratio), "0.0", 0, 1, 0, 0, 0, NULL,
     "final learning rate as a fraction of lr, in [0, 1]"},
    {"optim.state", RC_ENUM, OFF(opt_state), "fp32", 0, 0, 0, 0, 0, "fp32|bf16_moments|bf16",
     "AdamW state per parameter on a GPU: fp32 master, m, v (18 bytes with the bf16 weights and fp32 "
     "gradients); bf16_moments: m, v in bf16 (14); bf16: no master, stochastically rounded bf16 weights (10)"},
    {"optim.grads", RC_ENUM, OFF(opt_grads), "fp32", 0, 0, 0, 0, 0, "fp32|bf16",
     "parameter gradients: fp32, or bf16 (2 bytes less per parameter; each micro-batch's sum rounded "
     "to bf16 once, as HF's pure-bf16 training accumulates them)"},
    {"train.steps", RC_INT, OFF(steps), "1000", 1, BIG, 0, 0, 0, NULL, "optimizer steps"},
    {"train.eval_every", RC_INT, OFF(eval_every), "0", 0, BIG, 0, 0, 0, NULL,
     "evaluate on data.val every N steps (and after the last); 0: only after the last"},
    {"train.eval_steps", RC_INT, OFF(eval_steps), "20", 1, BIG, 0, 0, 0, NULL,
     "micro-batches per evaluation (fewer if data.val is smaller)"},
    {"train.log_every", RC_INT, OFF(log_every), "1", 1, BIG, 0, 0, 0, NULL,
     "print a progress line every N steps"},
    {"train.quiet", RC_BOOL, OFF(quiet), "false", 0, 0, 0, 0, 0, NULL,
     "no progress lines (metrics.h5 is still written)"},
    {"train.seed", RC_INT, OFF(seed), "42", 0, BIG, 0, 0, 0, NULL,
     "seed of the random initialization"},
    {"train.save_final", RC_BOOL, OFF(save_final), "true", 0, 0, 0, 0, 0, NULL,
     "write the trained model as an HF checkpoint to RUN_DIR/final"},
    {"run_dir", RC_STR, OFF(run_dir), "null", 0, 0, 0, 0, 1, NULL,
     "run directory: config.yaml, metrics.h5, checkpoint-N/, latest, final/, plots/ (also --run-dir DIR)"},
    {"device", RC_ENUM, OFF(device), "auto", 0, 0, 0, 0, 0, "auto|cpu|cpu64|cuda",
     "compute backend; auto: cuda when a GPU is visible, else cpu"},
    {"parallel.tp", RC_INT, OFF(tp), "1", 1, 1024, 0, 0, 0, NULL,
     "tensor-parallel ranks per model replica (processes = tp x dp)"},
    {"parallel.tp_overlap", RC_BOOL, OFF(tp_overlap), "true", 0, 0, 0, 0, 0, NULL,
     "sum the backward's column-parallel input gradients over tp while the weight gradients' GEMMs run (same results)"},
    {"parallel.zero", RC_BOOL, OFF(zero), "true", 0, 0, 0, 0, 0, NULL,
     "ZeRO-1: shard AdamW's master weights and moments over dp (reduce-scatter, all-gather; no-op at dp=1)"},
    {"checkpoint.every", RC_INT, OFF(ckpt_every), "0", 0, BIG, 0, 0, 0, NULL,
     "write RUN_DIR/checkpoint-N every N steps; 0: only after the last step (and on SIGTERM/SIGUSR1)"},
    {"checkpoint.keep", RC_INT, OFF(ckpt_keep), "3", 0, BIG, 0, 0, 0, NULL,
     "complete checkpoints kept (older ones deleted once a new one is complete); 0: all"},
    {"checkpoint.dtype", RC_ENUM, OFF(ckpt_dtype), "bf16", 0, 0, 0, 0, 0, "bf16|fp32",
     "dtype of the weights in model.safetensors (optimizer.safetensors: FP32 master weights, moments)"},
    {"checkpoint.max_shard_bytes", RC_INT, OFF(ckpt_max_shard_bytes), "5000000000", 1, BIG, 0, 0, 0, NULL,
     "split the weights into model-0000i-of-0000n.safetensors + index above this size (HF's 5GB)"},
    {"checkpoint.resume", RC_BOOL, OFF(ckpt_resume), "true", 0, 0, 0, 0, 0, NULL,
     "resume from RUN_DIR's newest complete checkpoint when there is one (also: train --resume)"},
    {"fp8.enabled", RC_BOOL, OFF(fp8_enabled), "false", 0, 0, 0, 0, 0, NULL,
     "QKV, o_proj, fc1 and fc2 GEMMs in FP8 (E4M3 forward, E5M2 gradients) with delayed scaling"},
    {"fp8.lm_head", RC_BOOL, OFF(fp8_lm_head), "false", 0, 0, 0, 0, 0, NULL,
     "the lm_head GEMMs (a fifth of Gemma's FLOPs at a 256k vocabulary) in FP8 too; its weight is tied to "
     "the embedding, whose lookup stays BF16"},
    {"fp8.history_len", RC_INT, OFF(fp8_history_len), "1024", 1, 65536, 0, 0, 0, NULL,
     "amax history length per FP8 tensor (Megatron: 1 with most_recent)"},
    {"fp8.algo", RC_ENUM, OFF(fp8_algo), "max", 0, 0, 0, 0, 0, "max|most_recent",
     "amax behind each scale: the max over the history, or the newest amax"},
    {"fp8.margin", RC_REAL, OFF(fp8_margin), "0.0", 0, 32, 0, 0, 0, NULL,
     "scale = fp8_max / amax / 2^margin"},
    {"fp8.calibration_steps", RC_INT, OFF(fp8_calibration_steps), "0", 0, BIG, 0, 0, 0, NULL,
     "BF16 forward+backward passes over this many steps' batches that only record amaxes and set the "
     "scales before FP8 training starts (not counted as steps; the data position is rewound after them)"},
    {"fp8.log_every", RC_INT, OFF(fp8_log_every), "10", 0, BIG, 0, 0, 0, NULL,
     "append each FP8 tensor's newest amax and its scale to metrics.h5 /fp8 every N steps; 0: never"},
    {"metrics.plot_every", RC_INT, OFF(plot_every), "0", 0, BIG, 0, 0, 0, NULL,
     "redraw RUN_DIR/plots/*.png (scripts/plot_metrics.py, in the background on rank 0) every N steps and "
     "after the last; 0: never. Without python3's h5py and matplotlib: one warning, no plots"},
};

const rc_field *gt_rc_fields(int *count) {
    *count = RC_COUNT;
    return schema;
}

const rc_field *gt_rc_find(const char *key) {
    for (int i = 0; i < RC_COUNT; i++) {
        if (!strcmp(schema[i].key, key)) return &schema[i];
    }
    return NULL;
}

int gt_rc_is_section(const char *section) {
    size_t n = strlen(section);
    for (int i = 0; i < RC_COUNT; i++) {
        if (!strncmp(schema[i].key, section, n) && schema[i].key[n] == '.') return 1;
    }
    return 0;
}

/* The name one level below the section of `key` that field key k has there, or NULL: for key
 * "optim.x" and k "optim.lr" it is "lr"; at the top level it is the section ("optim") or the key. */
static const char *child_name(const char *key, const char *k, size_t *len) {
    const char *dot = strrchr(key, '.');
    size_t n = dot ? (size_t)(dot - key) : 0;
    if (n && (strncmp(k, key, n) || k[n] != '.')) return NULL;
    const char *c = n ? k + n + 1 : k;
    const char *cdot = strchr(c, '.');
    *len = cdot ? (size_t)(cdot - c) : strlen(c);
    return c;
}

void gt_rc_section_keys(const char *key, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < RC_COUNT; i++) {
        size_t cl;
        const char *c = child_name(key, schema[i].key, &cl);
        int repeat = 0;
        for (int j = 0; c && j < i && !repeat; j++) {
            size_t pl;
            const char *pc = child_name(key, schema[j].key, &pl);
            repeat = pc && pl == cl && !strncmp(pc, c, cl);
        }
        if (!c || repeat) continue;
        int w = snprintf(buf + used, len - used, "%s%.*s", used ? ", " : "", (int)cl, c);
        if (w < 0 || (size_t)w >= len - used) break;
        used += (size_t)w;
    }
}

/* ---- parsing one scalar of each type ---- */

static int is_null(const rc_scalar *s) {
    if (!s->plain) return 0;
    return !strcmp(s->text, "") || !strcmp(s->text, "~") || !strcasecmp(s->text, "null") ||
           !strcasecmp(s->text, "none");
}

static int parse_int(const rc_field *f, const rc_scalar *s, long long *out, const char *where,
                     gt_err *err) {
    char *end;
    errno = 0;
    long long x = strtoll(s->text, &end, 10);
    if (!s->text[0] || *end || errno) {
        return gt_fail(err, "%s: %s: expected an integer, got '%s'", where, f->key, s->text);
    }
    *out = x;
    return 0;
}

static int parse_real(const rc_field *f, const rc_scalar *s, double *out, const char *where,
                      gt_err *err) {
    char *end;
    errno = 0;
    double x = strtod(s->text, &end);
    if (!s->text[0] || *end || errno || !isfinite(x)) {
        return gt_fail(err, "%s: %s: expected a number, got '%s'", where, f->key, s->text);
    }
    *out = x;
    return 0;
}

/* YAML 1.1's spellings, which is what people write in config files. */
static int parse_bool(const rc_field *f, const rc_scalar *s, int *out, const char *where, gt_err *err) {
    static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(s->text, yes[i])) return *out = 1, 0;
        if (!strcasecmp(s->text, no[i])) return *out = 0, 0;
    }
    return gt_fail(err, "%s: %s: expected true or false, got '%s'", where, f->key, s->text);
}

static int check_range(const rc_field *f, double x, const char *shown, const char *where, gt_err *err) {
    int low = f->lo_open ? x <= f->lo : x < f->lo;
    int high = f->hi_open ? x >= f->hi : x > f->hi;
    if (!low && !high) return 0;
    if (f->hi >= BIG) {
        return gt_fail(err, "%s: %s: %s is not allowed (must be %s %g)", where, f->key, shown,
                       f->lo_open ? ">" : ">=", f->lo);
    }
    return gt_fail(err, "%s: %s: %s is outside the allowed range %c%g, %g%c", where, f->key, shown,
                   f->lo_open ? '(' : '[', f->lo, f->hi, f->hi_open ? ')' : ']');
}

static int check_choice(const rc_field *f, const char *text, const char *where, gt_err *err) {
    size_t n = strlen(text);
    for (const char *c = f->choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && !strncmp(c, text, n)) return 0;
        c += len + (bar != NULL);
    }
    return gt_fail(err, "%s: %s: '%s' is not one of %s", where, f->key, text, f->choices);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = gt_malloc(n);
    memcpy(d, s, n);
    return d;
}

static void strlist_clear(gt_strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int assign_list(const rc_field *f, gt_strlist *l, const rc_value *v, const char *where,
                       gt_err *err) {
    int n = v->is_list ? v->count : 1;
    for (int i = 0; i < n; i++) {
        if (!v->items[i].text[0]) return gt_fail(err, "%s: %s: item %d is empty", where, f->key, i + 1);
    }
    strlist_clear(l);
    if (!v->is_list && is_null(&v->items[0])) return 0;
    l->v = gt_calloc((size_t)(n > 0 ? n : 1), sizeof *l->v);
    for (int i = 0; i < n; i++) l->v[i] = dup_str(v->items[i].text);
    l->n = n;
    return 0;
}

static int assign_str(const rc_field *f, char **dst, const rc_scalar *s, const char *where, gt_err *err) {
    if (is_null(s) && !f->nullable) return gt_fail(err, "%s: %s: must not be null", where, f->key);
    if (!is_null(s) && !s->text[0]) return gt_fail(err, "%s: %s: must not be empty", where, f->key);
    if (f->type == RC_ENUM && check_choice(f, s->text, where, err)) return -1;
    free(*dst);
    *dst = is_null(s) ? NULL : dup_str(s->text);
    return 0;
}

int gt_rc_assign(gt_run_config *rc, const rc_field *f, const rc_value *v, const char *where,
                 gt_err *err) {
    void *p = (char *)rc + f->off;
    if (f->type == RC_LIST) return assign_list(f, p, v, where, err);
    if (v->is_list) return gt_fail(err, "%s: %s: expected a single value, got a list", where, f->key);
    const rc_scalar *s = &v->items[0];
    switch (f->type) {
    case RC_INT: {
        long long x = 0;
        if (parse_int(f, s, &x, where, err) || check_range(f, (double)x, s->text, where, err)) return -1;
        *(long long *)p = x;
        return 0;
    }
    case RC_REAL: {
        double x = 0;
        if (parse_real(f, s, &x, where, err) || check_range(f, x, s->text, where, err)) return -1;
        *(double *)p = x;
        return 0;
    }
    case RC_BOOL: return parse_bool(f, s, p, where, err);
    default: return assign_str(f, p, s, where, err);
    }
}

/* ---- defaults, overrides, freeing ---- */

void gt_run_config_defaults(gt_run_config *rc) {
    memset(rc, 0, sizeof *rc);
    gt_err err;
    for (int i = 0; i < RC_COUNT; i++) {
        /* The defaults are parsed by the same code as user input; a bad one is a bug here. */
        if (gt_run_config_set(rc, schema[i].key, schema[i].def, "default", &err)) GT_DIE("%s", err.msg);
    }
}

void gt_run_config_free(gt_run_config *rc) {
    for (int i = 0; i < RC_COUNT; i++) {
        void *p = (char *)rc + schema[i].off;
        if (schema[i].type == RC_LIST) strlist_clear(p);
        else if (schema[i].type == RC_STR || schema[i].type == RC_ENUM) free(*(char **)p);
    }
    memset(rc, 0, sizeof *rc);
}

int gt_run_config_override(gt_run_config *rc, const char *assignment, gt_err *err) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) {
        return gt_fail(err, "--set %s: expected key=value (e.g. --set optim.lr=2e-5)", assignment);
    }
    size_t n = (size_t)(eq - assignment);
    char key[128];
    if (n >= sizeof key) return gt_fail(err, "--set %.40s...: the key is too long", assignment);
    memcpy(key, assignment, n);
    key[n] = 0;
    char where[256];
    snprintf(where, sizeof where, "--set %s", assignment);
    return gt_run_config_set(rc, key, eq + 1, where, err);
}

/* ---- checks across keys ---- */

int gt_run_config_validate(const gt_run_config *rc, gt_err *err) {
    if (!rc->model_path && !rc->model_config) {
        return gt_fail(err, "run config: model.path / model.config: set model.path (an HF checkpoint "
                            "to fine-tune) or model.config (an HF config.json for a random init)");
    }
    if (rc->data_train.n == 0) {
        return gt_fail(err, "run config: data.train: no training shards given");
    }
    if (!rc->run_dir) {
        return gt_fail(err, "run config: run_dir: not set (give it in the config or with --run-dir DIR)");
    }
    if (rc->eval_every > 0 && rc->data_val.n == 0) {
        return gt_fail(err, "run config: train.eval_every: %lld needs validation shards in data.val",
                       rc->eval_every);
    }
    if (rc->warmup_steps > rc->steps) {
        return gt_fail(err, "run config: optim.warmup_steps: %lld is more than train.steps (%lld)",
                       rc->warmup_steps, rc->steps);
    }
    return 0;
}
