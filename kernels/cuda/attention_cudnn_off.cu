/* attention_cudnn.h without cuDNN (the build found no cuDNN or no cudnn-frontend): every call
 * declines, so the built-in attention kernels run every case. */
#include <stdio.h>

#include "../../core/base.h"
#include "attention_cudnn.h"

extern "C" gt_cudnn_attn *gt_cudnn_attn_create(cudaStream_t stream) {
    (void)stream;
    if (gt_env_rank() == 0)
        fprintf(stderr, "gemmatron: attention: built without cuDNN; the built-in kernel runs\n");
    return NULL;
}

extern "C" void gt_cudnn_attn_destroy(gt_cudnn_attn *a) { (void)a; }

extern "C" int gt_cudnn_attn_version(const gt_cudnn_attn *a) {
    (void)a;
    return 0;
}

extern "C" int gt_cudnn_attn_supports(gt_cudnn_attn *a, float scale, int B, int T, int Hq,
                                      int Hkv, int D) {
    (void)a, (void)scale, (void)B, (void)T, (void)Hq, (void)Hkv, (void)D;
    return 0;
}

extern "C" int gt_cudnn_attn_fwd(gt_cudnn_attn *a, void *out, void *lse, const void *qkv,
                                 float scale, int B, int T, int Hq, int Hkv, int D) {
    (void)a, (void)out, (void)lse, (void)qkv, (void)scale, (void)B, (void)T, (void)Hq, (void)Hkv,
        (void)D;
    return 0;
}

extern "C" int gt_cudnn_attn_bwd(gt_cudnn_attn *a, void *dqkv, const void *dout, const void *qkv,
                                 const void *out, const void *lse, float scale, int B, int T,
                                 int Hq, int Hkv, int D) {
    (void)a, (void)dqkv, (void)dout, (void)qkv, (void)out, (void)lse, (void)scale, (void)B,
        (void)T, (void)Hq, (void)Hkv, (void)D;
    return 0;
}
