/* Training FLOPs per token, the Megatron way (what MFU is reported against):
 *   6 * (parameters of every matmul, the tied lm_head included, not the embedding lookup)
 * + 6 * L * (heads * head_dim) * seq   (causal attention: QK^T and PV, forward and backward) */
#ifndef GT_FLOPS_H
#define GT_FLOPS_H

#include "config.h"

double gt_matmul_params(const gt_config *cfg);
double gt_flops_per_token(const gt_config *cfg, int seq);
/* MFU's denominator, the device's dense BF16 peak, is the backend's: gt_ops.peak (kernels/ops.h). */

#endif
