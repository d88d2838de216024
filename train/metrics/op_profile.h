/* A gt_ops table that times every op of another backend, for step-time breakdowns (bench's training
 * step, generate's decode step). Each op synchronizes the device before and after, so totals are
 * exact per op but the wrapped step runs slower than an unwrapped one: time the real step
 * separately. It has no CUDA graphs (graph_* NULL): a profiled step runs its ops directly. */
#ifndef GT_OP_PROFILE_H
#define GT_OP_PROFILE_H

#include "../../kernels/ops.h"

enum {
    GT_PROF_MATMUL_FWD, GT_PROF_MATMUL_BWD, GT_PROF_ATTN_FWD, GT_PROF_ATTN_BWD, GT_PROF_RMSNORM_FWD,
    GT_PROF_RMSNORM_BWD, GT_PROF_ROPE, GT_PROF_GEGLU_FWD, GT_PROF_GEGLU_BWD, GT_PROF_EMBED,
    GT_PROF_CE, GT_PROF_ADD, GT_PROF_OPTIM, GT_PROF_MEMORY, GT_PROF_FP8_CAST, GT_PROF_KV_WRITE,
    GT_PROF_ATTN_DECODE, GT_PROF_ARGMAX, GT_PROF_ROPE_KV, GT_PROF_COUNT
};

typedef struct {
    gt_ops ops;          /* the wrapping table: pass (gt_backend *)this profile as the backend */
    const gt_ops *inner;
    gt_backend *inner_be;
    double seconds[GT_PROF_COUNT];
    long calls[GT_PROF_COUNT];
} gt_op_profile;

void gt_op_profile_init(gt_op_profile *p, const gt_ops *inner, gt_backend *inner_be);
const char *gt_op_profile_name(int op);

#endif
