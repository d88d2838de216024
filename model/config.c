/* Reading an HF config.json into gt_config. Keys and defaults follow transformers' GemmaConfig;
 * renamed keys are read in both spellings (transformers 5: rope_parameters.rope_theta and dtype;
 * transformers 4: rope_theta and torch_dtype). Every wrong value names the file and the key. */
#include "config.h"
#include "json_util.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* GemmaConfig's defaults for the optional keys. */
#define DEF_HEAD_DIM 256
#define DEF_MAX_POS 8192
#define DEF_EPS 1e-6
#define DEF_THETA 10000.0
#define DEF_INIT_RANGE 0.02
#define DEF_BOS 2
#define DEF_EOS 1
#define DEF_PAD 0

/* Where values come from, for the getters and their messages. */
typedef struct {
    const json_t *root;
    const char *path;
    gt_err *err;
} cfg_src;

/* The value of key, or NULL if absent or JSON null (both mean "use the default"). */
static const json_t *present(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int wrong_type(const cfg_src *s, const char *key, const char *want, const json_t *v) {
    return gt_fail(s->err, "%s: '%s' must be %s, not %s", s->path, key, want, gt_json_kind(v));
}

static int missing(const cfg_src *s, const char *key) {
    return gt_fail(s->err, "%s: required field '%s' is %s", s->path, key,
                   json_object_get(s->root, key) ? "null" : "missing");
}

/* An integer that fits in int. Absent/null: error if required, else *out is left as it is. */
static int get_int(const cfg_src *s, const char *key, int required, int *out) {
    const json_t *v = present(s->root, key);
    if (!v) return required ? missing(s, key) : 0;
    if (!json_is_integer(v)) return wrong_type(s, key, "an integer", v);
    json_int_t x = json_integer_value(v);
    if (x < INT_MIN || x > INT_MAX)
        return gt_fail(s->err, "%s: '%s' = %lld is out of range", s->path, key, (long long)x);
    *out = (int)x;
    return 0;
}

static int get_double(const cfg_src *s, const json_t *obj, const char *key, double *out) {
    const json_t *v = present(obj, key);
    if (!v) return 0;
    if (!json_is_number(v)) return wrong_type(s, key, "a number", v);
    *out = json_number_value(v);
    return 0;
}

static int get_bool(const cfg_src *s, const char *key, int *out) {
    const json_t *v = present(s->root, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return wrong_type(s, key, "true or false", v);
    *out = json_is_true(v);
    return 0;
}

/* A string, or NULL when absent/null; *bad set on a wrong type (the message is in s->err). */
static const char *get_str(const cfg_src *s, const json_t *obj, const char *key, int *bad) {
    const json_t *v = present(obj, key);
    if (!v) return NULL;
    if (!json_is_string(v)) {
        *bad = 1;
        wrong_type(s, key, "a string", v);
        return NULL;
    }
    return json_string_value(v);
}

/* A special token id: absent keeps the default, null means none (-1). Configs of later models
 * give eos_token_id as a list; the first entry is the one a Gemma 1 model ends with. */
static int get_token(const cfg_src *s, const char *key, int *out) {
    const json_t *v = json_object_get(s->root, key);
    if (!v) return 0;
    if (json_is_null(v)) {
        *out = -1;
        return 0;
    }
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > INT_MAX)
        return gt_fail(s->err, "%s: '%s' must be a token id (a non-negative integer or null)",
                       s->path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

/* hidden_act if present and not null, else hidden_activation (one of them is required): what
 * transformers >= 4.48 does (5.17 runs erf GELU for hidden_act "gelu" whatever hidden_activation
 * says; the conflict fixture pins this). */
static int load_act(const cfg_src *s, gt_gelu *act) {
    int bad = 0;
    const char *key = "hidden_act";
    const char *name = get_str(s, s->root, key, &bad);
    if (!name && !bad) {
        key = "hidden_activation";
        name = get_str(s, s->root, key, &bad);
    }
    if (bad) return -1;
    if (!name)
        return gt_fail(s->err, "%s: required field 'hidden_act' (or 'hidden_activation') is "
                       "missing", s->path);
    if (!strcmp(name, "gelu_pytorch_tanh")) *act = GT_GELU_TANH;
    else if (!strcmp(name, "gelu")) *act = GT_GELU_ERF;
    else
        return gt_fail(s->err, "%s: %s '%s' is not supported (gemmatron supports "
                       "gelu_pytorch_tanh and gelu)", s->path, key, name);
    return 0;
}

/* rope_type (transformers 5) / rope_type or type inside rope_scaling (4): only plain RoPE. */
static int check_rope_type(const cfg_src *s, const json_t *obj, const char *where) {
    int bad = 0;
    const char *type = get_str(s, obj, "rope_type", &bad);
    if (!type && !bad) type = get_str(s, obj, "type", &bad);
    if (bad) return -1;
    if (type && strcmp(type, "default"))
        return gt_fail(s->err, "%s: %s rope_type '%s' is not supported (only default RoPE)",
                       s->path, where, type);
    return 0;
}

/* rope_parameters.rope_theta (transformers 5) wins over rope_theta (transformers 4). */
static int load_rope(const cfg_src *s, double *theta) {
    const json_t *rp = present(s->root, "rope_parameters");
    const json_t *rs = present(s->root, "rope_scaling");
    if (rs && !json_is_object(rs)) return wrong_type(s, "rope_scaling", "an object", rs);
    if (rs && check_rope_type(s, rs, "rope_scaling")) return -1;
    if (get_double(s, s->root, "rope_theta", theta)) return -1;
    if (!rp) return 0;
    if (!json_is_object(rp)) return wrong_type(s, "rope_parameters", "an object", rp);
    if (check_rope_type(s, rp, "rope_parameters")) return -1;
    return get_double(s, rp, "rope_theta", theta);
}

/* dtype (transformers 5) or torch_dtype (4); float32 when neither is given. */
static int load_dtype(const cfg_src *s, gt_dtype *dt) {
    int bad = 0;
    const char *key = "dtype";
    const char *name = get_str(s, s->root, key, &bad);
    if (!name && !bad) {
        key = "torch_dtype";
        name = get_str(s, s->root, key, &bad);
    }
    if (bad) return -1;
    *dt = GT_F32;
    if (!name || !strcmp(name, "float32")) return 0;
    if (!strcmp(name, "bfloat16")) *dt = GT_BF16;
    else if (!strcmp(name, "float16")) *dt = GT_F16;
    else
        return gt_fail(s->err, "%s: %s '%s' is not supported (float32, bfloat16 or float16)",
                       s->path, key, name);
    return 0;
}

static int check_model_type(const cfg_src *s) {
    int bad = 0;
    const char *mt = get_str(s, s->root, "model_type", &bad);
    if (bad) return -1;
    if (mt && strcmp(mt, "gemma"))
        return gt_fail(s->err, "%s: model_type '%s' is not supported: gemmatron reads Gemma "
                       "(model_type gemma)", s->path, mt);
    return 0;
}

static int load_sizes(const cfg_src *s, gt_config *c) {
    if (get_int(s, "vocab_size", 1, &c->vocab_size) ||
        get_int(s, "hidden_size", 1, &c->hidden_size) ||
        get_int(s, "intermediate_size", 1, &c->intermediate_size) ||
        get_int(s, "num_hidden_layers", 1, &c->num_hidden_layers) ||
        get_int(s, "num_attention_heads", 1, &c->num_attention_heads))
        return -1;
    c->num_key_value_heads = c->num_attention_heads;
    c->head_dim = DEF_HEAD_DIM;
    c->max_position_embeddings = DEF_MAX_POS;
    return get_int(s, "num_key_value_heads", 0, &c->num_key_value_heads) ||
                   get_int(s, "head_dim", 0, &c->head_dim) ||
                   get_int(s, "max_position_embeddings", 0, &c->max_position_embeddings)
               ? -1
               : 0;
}

static int load_rest(const cfg_src *s, gt_config *c) {
    c->rms_norm_eps = DEF_EPS;
    c->rope_theta = DEF_THETA;
    c->initializer_range = DEF_INIT_RANGE;
    c->tie_word_embeddings = 1;
    c->bos_token_id = DEF_BOS;
    c->eos_token_id = DEF_EOS;
    c->pad_token_id = DEF_PAD;
    if (get_double(s, s->root, "rms_norm_eps", &c->rms_norm_eps) ||
        get_double(s, s->root, "initializer_range", &c->initializer_range) ||
        load_rope(s, &c->rope_theta) || load_act(s, &c->act) || load_dtype(s, &c->dtype) ||
        get_bool(s, "tie_word_embeddings", &c->tie_word_embeddings) ||
        get_token(s, "bos_token_id", &c->bos_token_id) ||
        get_token(s, "eos_token_id", &c->eos_token_id) ||
        get_token(s, "pad_token_id", &c->pad_token_id))
        return -1;
    return 0;
}

/* path itself, or path/config.json when path is a directory; malloc'ed. */
static char *config_file(const char *path) {
    struct stat sb;
    size_t n = strlen(path) + sizeof "/config.json";
    char *f = gt_malloc(n);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(f, n, "%s/config.json", path);
    else snprintf(f, n, "%s", path);
    return f;
}

int gt_config_load(gt_config *cfg, const char *path, gt_err *err) {
    memset(cfg, 0, sizeof *cfg);
    char *file = config_file(path);
    struct stat sb;
    int rc = -1;
    json_t *root = NULL;
    json_error_t jerr;
    cfg_src s = {NULL, file, err};
    if (stat(file, &sb) != 0) {
        gt_fail(err, "%s: cannot open: %s", file, strerror(errno));
        goto done;
    }
    root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        gt_fail(err, "%s: not valid JSON: %s (line %d, column %d)", file, jerr.text, jerr.line,
                jerr.column);
        goto done;
    }
    if (!json_is_object(root)) {
        gt_fail(err, "%s: is %s, not a JSON object", file, gt_json_kind(root));
        goto done;
    }
    s.root = root;
    if (check_model_type(&s) || load_sizes(&s, cfg) || load_rest(&s, cfg)) goto done;
    rc = gt_config_validate(cfg, file, err);
done:
    json_decref(root);
    free(file);
    return rc;
}

static int check_token(const char *what, const char *key, int id, int vocab, gt_err *err) {
    if (id < -1 || id >= vocab)
        return gt_fail(err, "%s: %s %d is outside the vocabulary (vocab_size %d)", what, key, id,
                       vocab);
    return 0;
}

int gt_config_validate(const gt_config *c, const char *what, gt_err *err) {
    /* Upper limits far above any Gemma (vocab 256k, hidden 3072, 28 layers, 16 heads of 256, 8k
     * context) but low enough that every size product below stays far from int64 overflow, so that an
     * absurd config.json fails here, naming its field, rather than at an allocation. */
    const struct {
        const char *key;
        int v, min, max;
    } pos[] = {{"vocab_size", c->vocab_size, 1, 1 << 24},
               {"hidden_size", c->hidden_size, 1, 1 << 16},
               {"intermediate_size", c->intermediate_size, 1, 1 << 20},
               {"num_hidden_layers", c->num_hidden_layers, 1, 1 << 12},
               {"num_attention_heads", c->num_attention_heads, 1, 1 << 10},
               {"num_key_value_heads", c->num_key_value_heads, 1, 1 << 10},
               {"head_dim", c->head_dim, 1, 1 << 12},
               /* two positions: the least a sequence needs to predict one token from another */
               {"max_position_embeddings", c->max_position_embeddings, 2, 1 << 24}};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        if (pos[i].v <= 0)
            return gt_fail(err, "%s: %s = %d must be positive", what, pos[i].key, pos[i].v);
        if (pos[i].v < pos[i].min)
            return gt_fail(err, "%s: %s = %d must be at least %d (a sequence needs two positions to predict a "
                           "token)", what, pos[i].key, pos[i].v, pos[i].min);
        if (pos[i].v > pos[i].max)
            return gt_fail(err, "%s: %s = %d is beyond gemmatron's limit of %d", what, pos[i].key, pos[i].v,
                           pos[i].max);
    }
    /* The weights alone (embedding, attention, MLP) must fit a machine: at most 2^38 parameters
     * (1 TiB as float32), whatever the combination of sizes. */
    double H = c->hidden_size, q = (double)c->num_attention_heads * c->head_dim,
           kv = (double)c->num_key_value_heads * c->head_dim;
    double per_layer = H * (q + 2 * kv) + q * H + 3 * H * c->intermediate_size;
    double params = (double)c->vocab_size * H + c->num_hidden_layers * per_layer;
    if (params > (double)((int64_t)1 << 38))
        return gt_fail(err, "%s: %.3g parameters (vocab_size %d, hidden_size %d, intermediate_size %d, "
                       "num_hidden_layers %d, heads %d x head_dim %d) is beyond gemmatron's limit of 2^38",
                       what, params, c->vocab_size, c->hidden_size, c->intermediate_size, c->num_hidden_layers,
                       c->num_attention_heads, c->head_dim);
    if (c->num_attention_heads % c->num_key_value_heads)
        return gt_fail(err, "%s: num_attention_heads %d is not a multiple of "
                       "num_key_value_heads %d", what, c->num_attention_heads,
                       c->num_key_value_heads);
    if (c->head_dim % 2)
        return gt_fail(err, "%s: head_dim %d must be even (RoPE rotates pairs)", what, c->head_dim);
    if (!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps))
        return gt_fail(err, "%s: rms_norm_eps %g must be positive and finite", what,
                       c->rms_norm_eps);
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return gt_fail(err, "%s: rope_theta %g must be positive and finite", what, c->rope_theta);
    if (!(c->initializer_range >= 0) || !isfinite(c->initializer_range))
        return gt_fail(err, "%s: initializer_range %g must be non-negative and finite", what,
                       c->initializer_range);
    if (!c->tie_word_embeddings)
        return gt_fail(err, "%s: tie_word_embeddings is false; Gemma ties lm_head to "
                       "embed_tokens and gemmatron supports only that", what);
    if (c->act != GT_GELU_TANH && c->act != GT_GELU_ERF)
        return gt_fail(err, "%s: invalid activation %d", what, (int)c->act);
    if (c->dtype != GT_F32 && c->dtype != GT_BF16 && c->dtype != GT_F16)
        return gt_fail(err, "%s: dtype %s is not float32, bfloat16 or float16", what,
                       gt_dtype_name(c->dtype));
    return check_token(what, "bos_token_id", c->bos_token_id, c->vocab_size, err) ||
                   check_token(what, "eos_token_id", c->eos_token_id, c->vocab_size, err) ||
                   check_token(what, "pad_token_id", c->pad_token_id, c->vocab_size, err)
               ? -1
               : 0;
}
