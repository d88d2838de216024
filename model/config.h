/* Gemma model configuration, read from (and written to) an HF config.json. */
#ifndef GT_CONFIG_H
#define GT_CONFIG_H

#include "../kernels/ops.h"

typedef struct {
    int vocab_size;
    int hidden_size;
    int intermediate_size;
    int num_hidden_layers;
    int num_attention_heads;
    int num_key_value_heads;
    int head_dim;
    int max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    gt_gelu act;              /* from hidden_act if present, else hidden_activation */
    int tie_word_embeddings;  /* must be 1 for Gemma */
    int bos_token_id, eos_token_id, pad_token_id; /* -1 when absent or null */
    double initializer_range;
    gt_dtype dtype;           /* "dtype" or "torch_dtype": the checkpoint's storage dtype */
} gt_config;

/* Reads HF_DIR/config.json (or the file at path if it is not a directory), then validates it.
 * Required: vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads
 * and one of hidden_act / hidden_activation (hidden_act wins when present and not null, as in
 * transformers >= 4.48;
 * "gelu_pytorch_tanh" -> GT_GELU_TANH, "gelu" -> GT_GELU_ERF, anything else is an error).
 * Defaults follow transformers' GemmaConfig: head_dim 256, num_key_value_heads =
 * num_attention_heads, rms_norm_eps 1e-6, max_position_embeddings 8192, rope_theta 10000
 * (read from rope_parameters.rope_theta, else rope_theta), initializer_range 0.02,
 * tie_word_embeddings true, bos/eos/pad 2/1/0 (null -> -1), dtype (or torch_dtype) float32.
 * model_type, if given, must be "gemma"; a RoPE type other than "default" is rejected. */
int gt_config_load(gt_config *cfg, const char *path, gt_err *err);
/* Checks the values make a model gemmatron runs: positive sizes, heads divisible by kv heads,
 * even head_dim, positive eps and theta, tied embeddings, token ids inside the vocabulary.
 * what names the source in the message (a file path, "run config", ...). */
int gt_config_validate(const gt_config *cfg, const char *what, gt_err *err);
/* Writes a config.json transformers loads as GemmaConfig; both spellings of renamed keys.
 * path is the file, or a directory to write config.json into. Reals are written with the fewest
 * digits that read back exactly. The config is validated first; a failed write leaves no file. */
int gt_config_save(const gt_config *cfg, const char *path, gt_err *err);

#endif
