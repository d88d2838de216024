/* Writing gt_config as an HF config.json that transformers 4.x and 5.x both load as GemmaConfig:
 * renamed keys are written in both spellings (rope_theta and rope_parameters, torch_dtype and
 * dtype, hidden_act and hidden_activation with the same value). */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The transformers release whose format the file follows: the last 4.x, whose readers and 5.x's
 * both accept every key written here. */
#define GT_CONFIG_TRANSFORMERS_VERSION "4.57.1"

static const char *act_name(gt_gelu act) {
    return act == GT_GELU_ERF ? "gelu" : "gelu_pytorch_tanh";
}

static const char *dtype_name(gt_dtype dt) {
    return dt == GT_BF16 ? "bfloat16" : dt == GT_F16 ? "float16" : "float32";
}

static json_t *token(int id) { return id < 0 ? json_null() : json_integer(id); }

/* Fewest significant digits (at most 17) with which every value reads back bit-exact, so that
 * 1e-6 is written "1e-6" and not "9.9999999999999995e-07". jansson takes one precision for the
 * whole document, hence the maximum. */
static int real_precision(const double *v, int n) {
    char buf[320]; /* %.17g of any double fits; sized for the compiler's worst case */
    int prec = 1;
    for (int i = 0; i < n; i++) {
        int p = 1;
        for (; p < 17; p++) {
            snprintf(buf, sizeof buf, "%.*g", p, v[i]);
            if (strtod(buf, NULL) == v[i]) break;
        }
        if (p > prec) prec = p;
    }
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v[i]);
        if (strtod(buf, NULL) != v[i]) return 17;
    }
    return prec;
}

static json_t *config_json(const gt_config *c) {
    json_t *o = json_object(), *arch = json_array(), *rope = json_object();
    GT_ASSERT(o && arch && rope, "jansson: out of memory");
    json_array_append_new(arch, json_string("GemmaForCausalLM"));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "model_type", json_string("gemma"));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->num_hidden_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->num_attention_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->num_key_value_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "hidden_act", json_string(act_name(c->act)));
    json_object_set_new(o, "hidden_activation", json_string(act_name(c->act)));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(o, "initializer_range", json_real(c->initializer_range));
    json_object_set_new(o, "rms_norm_eps", json_real(c->rms_norm_eps));
    json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(rope, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(rope, "rope_type", json_string("default"));
    json_object_set_new(o, "rope_parameters", rope);
    json_object_set_new(o, "attention_bias", json_false());
    json_object_set_new(o, "attention_dropout", json_real(0.0));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "bos_token_id", token(c->bos_token_id));
    json_object_set_new(o, "eos_token_id", token(c->eos_token_id));
    json_object_set_new(o, "pad_token_id", token(c->pad_token_id));
    json_object_set_new(o, "use_cache", json_true());
    json_object_set_new(o, "dtype", json_string(dtype_name(c->dtype)));
    json_object_set_new(o, "torch_dtype", json_string(dtype_name(c->dtype)));
    json_object_set_new(o, "transformers_version", json_string(GT_CONFIG_TRANSFORMERS_VERSION));
    return o;
}

/* Writes text + newline to file and fsyncs it; removes the file on any failure. */
static int write_text(const char *file, const char *text, gt_err *err) {
    FILE *f = fopen(file, "w");
    if (!f) return gt_fail(err, "%s: cannot create: %s", file, strerror(errno));
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok) return 0;
    unlink(file);
    return gt_fail(err, "%s: write failed: %s", file, strerror(saved));
}

int gt_config_save(const gt_config *cfg, const char *path, gt_err *err) {
    struct stat sb;
    size_t n = strlen(path) + sizeof "/config.json";
    char *file = gt_malloc(n);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(file, n, "%s/config.json", path);
    else snprintf(file, n, "%s", path);
    if (gt_config_validate(cfg, file, err)) {
        free(file);
        return -1;
    }
    const double reals[] = {cfg->initializer_range, cfg->rms_norm_eps, cfg->rope_theta, 0.0};
    int prec = real_precision(reals, (int)(sizeof reals / sizeof reals[0]));
    json_t *o = config_json(cfg);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(prec));
    json_decref(o);
    GT_ASSERT(text, "jansson: json_dumps failed");
    int rc = write_text(file, text, err);
    free(text);
    free(file);
    return rc;
}
