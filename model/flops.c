#include "flops.h"

double gt_matmul_params(const gt_config *cfg) {
    double C = cfg->hidden_size, D = cfg->head_dim, F = cfg->intermediate_size;
    double q = cfg->num_attention_heads * D, kv = cfg->num_key_value_heads * D;
    double layer = C * (q + 2 * kv) + q * C + 3 * C * F;
    return cfg->num_hidden_layers * layer + (double)cfg->vocab_size * C;
}

double gt_flops_per_token(const gt_config *cfg, int seq) {
    return 6 * gt_matmul_params(cfg) +
           6.0 * cfg->num_hidden_layers * cfg->num_attention_heads * cfg->head_dim * seq;
}
