/* config.json: a transformers-5 style config (rope_parameters, dtype, hidden_activation null)
 * and a transformers-4 style one (rope_theta, torch_dtype, hidden_activation set, defaults),
 * each field checked against the values in the text; save -> load round trip field by field and
 * the saved keys checked with jansson; and one case per kind of bad input, each failing with -1
 * and a message naming the file and the problem. */
#include "model/config.h"
#include "tests/cpu/check.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    gt_check c;
    char dir[64];
    char file[128]; /* dir/config.json */
} ctx;

static void put(const ctx *x, const char *text) {
    FILE *f = fopen(x->file, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", x->file);
        exit(2);
    }
}

static void expect_fail(ctx *x, int rc, const gt_err *err, const char *file, const char *phrase,
                        const char *label) {
    int ok = rc == -1 && strstr(err->msg, file) && strstr(err->msg, phrase);
    gt_check_true(&x->c, ok, "%s: rc %d, message '%s' (want '%s' and '%s')", label, rc, err->msg,
                  file, phrase);
    if (ok) printf("ok   %-28s %s\n", label, err->msg);
}

#define FIELD_EQ(x, a, b, f) \
    gt_check_true(&(x)->c, (a).f == (b).f, "field %s: %g != %g", #f, (double)(a).f, (double)(b).f)

static void check_equal(ctx *x, const gt_config *a, const gt_config *b) {
    FIELD_EQ(x, *a, *b, vocab_size);
    FIELD_EQ(x, *a, *b, hidden_size);
    FIELD_EQ(x, *a, *b, intermediate_size);
    FIELD_EQ(x, *a, *b, num_hidden_layers);
    FIELD_EQ(x, *a, *b, num_attention_heads);
    FIELD_EQ(x, *a, *b, num_key_value_heads);
    FIELD_EQ(x, *a, *b, head_dim);
    FIELD_EQ(x, *a, *b, max_position_embeddings);
    FIELD_EQ(x, *a, *b, rms_norm_eps);
    FIELD_EQ(x, *a, *b, rope_theta);
    FIELD_EQ(x, *a, *b, act);
    FIELD_EQ(x, *a, *b, tie_word_embeddings);
    FIELD_EQ(x, *a, *b, bos_token_id);
    FIELD_EQ(x, *a, *b, eos_token_id);
    FIELD_EQ(x, *a, *b, pad_token_id);
    FIELD_EQ(x, *a, *b, initializer_range);
    FIELD_EQ(x, *a, *b, dtype);
}

/* transformers 5.x writes rope_parameters and dtype; hidden_activation null -> hidden_act. */
static void test_v5(ctx *x) {
    put(x, "{\n  \"architectures\": [\"GemmaForCausalLM\"],\n  \"model_type\": \"gemma\",\n"
           "  \"vocab_size\": 256000, \"hidden_size\": 2048, \"intermediate_size\": 16384,\n"
           "  \"num_hidden_layers\": 18, \"num_attention_heads\": 8, \"num_key_value_heads\": 1,\n"
           "  \"head_dim\": 256, \"hidden_act\": \"gelu\", \"hidden_activation\": null,\n"
           "  \"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-05,\n"
           "  \"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"},\n"
           "  \"initializer_range\": 0.015, \"attention_bias\": false, \"use_cache\": true,\n"
           "  \"bos_token_id\": 2, \"eos_token_id\": 1, \"pad_token_id\": 0,\n"
           "  \"tie_word_embeddings\": true, \"dtype\": \"bfloat16\",\n"
           "  \"transformers_version\": \"5.0.0\"\n}\n");
    gt_config cfg;
    gt_err err = {{0}};
    if (!gt_check_true(&x->c, gt_config_load(&cfg, x->dir, &err) == 0, "v5 load: %s", err.msg))
        return;
    gt_config want = {256000, 2048, 16384, 18, 8, 1, 256, 4096, 1e-5, 500000.0, GT_GELU_ERF, 1,
                      2, 1, 0, 0.015, GT_BF16};
    check_equal(x, &cfg, &want);
}

/* transformers 4.x: rope_theta, torch_dtype, hidden_activation disagreeing with hidden_act (which
 * wins, as in transformers >= 4.48); head_dim,
 * num_key_value_heads, rms_norm_eps, max_position_embeddings, initializer_range and
 * tie_word_embeddings absent (GemmaConfig defaults); pad_token_id null. */
static void test_v4(ctx *x) {
    put(x, "{\"architectures\": [\"GemmaForCausalLM\"], \"model_type\": \"gemma\",\n"
           " \"vocab_size\": 1000, \"hidden_size\": 3072, \"intermediate_size\": 24576,\n"
           " \"num_hidden_layers\": 28, \"num_attention_heads\": 16,\n"
           " \"hidden_act\": \"gelu\", \"hidden_activation\": \"gelu_pytorch_tanh\",\n"
           " \"rope_theta\": 20000.0, \"rope_scaling\": null, \"torch_dtype\": \"float16\",\n"
           " \"bos_token_id\": 7, \"eos_token_id\": [5, 6], \"pad_token_id\": null,\n"
           " \"transformers_version\": \"4.38.0.dev0\"}\n");
    gt_config cfg;
    gt_err err = {{0}};
    if (!gt_check_true(&x->c, gt_config_load(&cfg, x->file, &err) == 0, "v4 load: %s", err.msg))
        return;
    gt_config want = {1000, 3072, 24576, 28, 16, 16, 256, 8192, 1e-6, 20000.0, GT_GELU_ERF, 1,
                      7, 5, -1, 0.02, GT_F16};
    check_equal(x, &cfg, &want);
    /* neither dtype key: float32; rope_theta absent: 10000 */
    put(x, "{\"vocab_size\": 10, \"hidden_size\": 8, \"intermediate_size\": 16,"
           " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"head_dim\": 4,"
           " \"hidden_act\": \"gelu_pytorch_tanh\"}");
    int rc = gt_config_load(&cfg, x->file, &err);
    gt_check_true(&x->c, rc == 0 && cfg.dtype == GT_F32 && cfg.rope_theta == 10000.0 &&
                  cfg.act == GT_GELU_TANH && cfg.bos_token_id == 2, "minimal config: %s", err.msg);
}

/* The saved file, read back with jansson: both spellings present with the same values. */
static void check_saved_keys(ctx *x, const gt_config *cfg) {
    json_error_t jerr;
    json_t *r = json_load_file(x->file, 0, &jerr);
    if (!gt_check_true(&x->c, r != NULL, "saved file is not JSON: %s", jerr.text)) return;
    const json_t *rp = json_object_get(r, "rope_parameters");
    int ok = !strcmp(json_string_value(json_object_get(r, "model_type")), "gemma") &&
             !strcmp(json_string_value(json_array_get(json_object_get(r, "architectures"), 0)),
                     "GemmaForCausalLM") &&
             json_real_value(json_object_get(r, "rope_theta")) == cfg->rope_theta &&
             json_real_value(json_object_get(rp, "rope_theta")) == cfg->rope_theta &&
             !strcmp(json_string_value(json_object_get(rp, "rope_type")), "default") &&
             !strcmp(json_string_value(json_object_get(r, "hidden_act")), "gelu") &&
             !strcmp(json_string_value(json_object_get(r, "hidden_activation")), "gelu") &&
             !strcmp(json_string_value(json_object_get(r, "dtype")), "bfloat16") &&
             !strcmp(json_string_value(json_object_get(r, "torch_dtype")), "bfloat16") &&
             json_is_null(json_object_get(r, "pad_token_id")) &&
             json_is_true(json_object_get(r, "tie_word_embeddings")) &&
             json_is_string(json_object_get(r, "transformers_version"));
    gt_check_true(&x->c, ok, "saved config lacks a key or has a wrong value");
    json_decref(r);
}

static void test_round_trip(ctx *x) {
    gt_config cfg = {32000, 640, 2560, 3, 10, 5, 64, 2048, 1e-6, 12345.678, GT_GELU_ERF, 1,
                     3, 4, -1, 0.0173, GT_BF16};
    gt_err err = {{0}};
    gt_config back;
    int rc = gt_config_save(&cfg, x->dir, &err); /* a directory: writes config.json into it */
    gt_check_true(&x->c, rc == 0, "save: %s", err.msg);
    rc = gt_config_load(&back, x->file, &err);
    if (!gt_check_true(&x->c, rc == 0, "load after save: %s", err.msg)) return;
    check_equal(x, &back, &cfg);
    check_saved_keys(x, &cfg);
    FILE *f = fopen(x->file, "r");
    char text[4096] = {0};
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    gt_check_true(&x->c, n > 0 && (strstr(text, "\"rms_norm_eps\": 1e-06") ||
                                   strstr(text, "\"rms_norm_eps\": 1e-6")),
                  "rms_norm_eps not written in its shortest form 1e-06: %s", text);
    cfg.rope_theta = 1.0 / 3.0; /* needs all 17 digits */
    cfg.rms_norm_eps = 0.1 + 0.2;
    rc = gt_config_save(&cfg, x->file, &err) || gt_config_load(&back, x->file, &err);
    gt_check_true(&x->c, rc == 0 && back.rope_theta == cfg.rope_theta &&
                  back.rms_norm_eps == cfg.rms_norm_eps, "17-digit reals round trip: %s", err.msg);
    cfg.head_dim = 63;
    expect_fail(x, gt_config_save(&cfg, x->file, &err), &err, "config.json", "head_dim 63 must be "
                "even", "save: invalid config");
    cfg.head_dim = 64;
    expect_fail(x, gt_config_save(&cfg, "/nonexistent-dir/config.json", &err), &err,
                "/nonexistent-dir/config.json", "cannot create", "save: bad directory");
}

#define BASE "\"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 128, " \
             "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"head_dim\": 16"

static void test_errors(ctx *x) {
    static const struct {
        const char *label, *text, *phrase;
    } cases[] = {
        {"not JSON", "{\"vocab_size\": 100,\n \"hidden_size\": }", "not valid JSON"},
        {"not JSON (line)", "{\"vocab_size\": 100,\n \"hidden_size\": }", "line 2"},
        {"not an object", "[1, 2, 3]", "not a JSON object"},
        {"missing hidden_size",
         "{\"vocab_size\": 100, \"intermediate_size\": 128, \"num_hidden_layers\": 2, "
         "\"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}",
         "required field 'hidden_size' is missing"},
        {"duplicate key", "{" BASE ", \"num_hidden_layers\": 3, \"hidden_act\": \"gelu\"}",
         "duplicate object key"},
        {"null required field",
         "{\"vocab_size\": 100, \"hidden_size\": null, \"intermediate_size\": 128, "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}",
         "required field 'hidden_size' is null"},
        {"missing activation", "{" BASE "}", "'hidden_act' (or 'hidden_activation') is missing"},
        {"wrong type", "{\"vocab_size\": 100, \"hidden_size\": \"2048\", \"intermediate_size\": "
         "128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}",
         "'hidden_size' must be an integer, not a string"},
        {"real for an integer",
         "{" BASE ", \"num_key_value_heads\": 2.0, \"hidden_act\": \"gelu\"}",
         "'num_key_value_heads' must be an integer, not a real number"},
        {"wrong type eps", "{" BASE ", \"rms_norm_eps\": \"1e-6\", \"hidden_act\": \"gelu\"}",
         "'rms_norm_eps' must be a number, not a string"},
        {"wrong type tie", "{" BASE ", \"tie_word_embeddings\": 1, \"hidden_act\": \"gelu\"}",
         "'tie_word_embeddings' must be true or false"},
        {"unknown activation", "{" BASE ", \"hidden_act\": \"silu\"}",
         "hidden_act 'silu' is not supported"},
        {"unknown hidden_activation", "{" BASE ", \"hidden_act\": null, "
         "\"hidden_activation\": \"gelu_new\"}", "hidden_activation 'gelu_new' is not supported"},
        {"model_type llama", "{" BASE ", \"model_type\": \"llama\", \"hidden_act\": \"gelu\"}",
         "model_type 'llama' is not supported: gemmatron reads Gemma (model_type gemma)"},
        {"rope scaling", "{" BASE ", \"hidden_act\": \"gelu\", \"rope_parameters\": "
         "{\"rope_theta\": 10000.0, \"rope_type\": \"linear\", \"factor\": 2.0}}",
         "rope_type 'linear' is not supported"},
        {"unknown dtype", "{" BASE ", \"hidden_act\": \"gelu\", \"torch_dtype\": \"float64\"}",
         "torch_dtype 'float64' is not supported"},
        {"untied embeddings",
         "{" BASE ", \"hidden_act\": \"gelu\", \"tie_word_embeddings\": false}",
         "tie_word_embeddings is false"},
        {"heads % kv heads", "{" BASE ", \"hidden_act\": \"gelu\", \"num_key_value_heads\": 3}",
         "num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
        {"zero layers", "{\"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 128, "
         "\"num_hidden_layers\": 0, \"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}",
         "num_hidden_layers = 0 must be positive"},
        {"token outside vocab", "{" BASE ", \"hidden_act\": \"gelu\", \"eos_token_id\": 100}",
         "eos_token_id 100 is outside the vocabulary"},
        {"int out of range", "{" BASE ", \"hidden_act\": \"gelu\", \"max_position_embeddings\": "
         "4294967296}", "'max_position_embeddings' = 4294967296 is out of range"},
    };
    gt_config cfg;
    gt_err err = {{0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put(x, cases[i].text);
        expect_fail(x, gt_config_load(&cfg, x->file, &err), &err, x->file, cases[i].phrase,
                    cases[i].label);
    }
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nowhere", x->dir);
    mkdir(missing, 0755);
    expect_fail(x, gt_config_load(&cfg, missing, &err), &err, "nowhere/config.json",
                "cannot open: No such file", "missing file");
    rmdir(missing);
    gt_config ok = {100, 64, 128, 2, 4, 4, 16, 8192, 1e-6, 1e4, GT_GELU_TANH, 1, 2, 1, 0, 0.02,
                    GT_F32};
    gt_check_true(&x->c, gt_config_validate(&ok, "run config", &err) == 0, "valid: %s", err.msg);
    ok.head_dim = 15;
    expect_fail(x, gt_config_validate(&ok, "run config", &err), &err, "run config",
                "head_dim 15 must be even", "validate: odd head_dim");
}

int main(void) {
    ctx x;
    memset(&x, 0, sizeof x);
    snprintf(x.dir, sizeof x.dir, "/tmp/gt_test_cfg_XXXXXX");
    if (!mkdtemp(x.dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(x.file, sizeof x.file, "%s/config.json", x.dir);
    test_v5(&x);
    test_v4(&x);
    test_round_trip(&x);
    test_errors(&x);
    unlink(x.file);
    rmdir(x.dir);
    return gt_check_done(&x.c, "test_config");
}
