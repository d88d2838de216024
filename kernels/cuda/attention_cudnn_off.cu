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

extern "C" void gt_cudnn_attn_segments(gt_cudnn_attn *a, const int32_t *seg,
                                       const int32_t *seg_host, int B, int T) {
    (void)a, (void)seg, (void)seg_host, (void)B, (void)T;
}

extern "C" int gt_cudnn_attn_supports(gt_cudnn_attn *a, const int32_t *seg, float scale, int B,
                                      int T, int Hq, int Hkv, int D) {
    (void)a, (void)seg, (void)scale, (void)B, (void)T, (void)Hq, (void)Hkv, (void)D;
    return 0;
}

extern "C" int gt_cudnn_attn_fwd(gt_cudnn_attn *a, void *out, void *lse, const void *qkv,
                                 const int32_t *seg, float scale, int B, int T, int Hq, int Hkv,
                                 int D) {
    (void)a, (void)out, (void)lse, (void)qkv, (void)seg, (void)scale, (void)B, (void)T, (void)Hq,
        (void)Hkv, (void)D;
    return 0;
}

extern "C" int gt_cudnn_attn_bwd(gt_cudnn_attn *a, void *dqkv, const void *dout, const void *qkv,
                                 const void *out, const void *lse, const int32_t *seg,
                                 float scale, int B, int T, int Hq, int Hkv, int D) {
    (void)a, (void)dqkv, (void)dout, (void)qkv, (void)out, (void)lse, (void)seg, (void)scale,
        (void)B, (void)T, (void)Hq, (void)Hkv, (void)D;
    return 0;
}
