/* The op tables of the CPU reference backends: "cpu" (real = float) from the 32-bit compile of
 * kernels/cpu, "cpu64" (real = double) from the 64-bit compile. Both share one backend state. */
#include "cpu_kernels.h"

#include <stdio.h>
#include <stdlib.h>

static gt_backend *cpu_create(int device) { return gt_cpu_backend_create(); }

static void *cpu_stream(gt_backend *be) { return NULL; }

static size_t cpu_mem_in_use(gt_backend *be) { return 0; }

static void cpu_device_name(gt_backend *be, char *buf, size_t len) { snprintf(buf, len, "cpu"); }

/* A CPU has no BF16 tensor peak of its own: MFU stays on the one scale the README defines (the
 * H100/H200 figure), and 50 GB/s is a nominal host memory bandwidth for the profile's roofline. */
static gt_peak cpu_peak(gt_backend *be) { return (gt_peak){GT_H100_BF16_FLOPS, 50e9}; }

static const gt_ops cpu_table = {
    .name = CPU_OPS_NAME,
    .size = {sizeof(real), sizeof(real), sizeof(real)}, /* ACT, GRAD, STAT */
    .on_host = 1,
    .create = cpu_create,
    .destroy = gt_cpu_backend_destroy,
    .stream = cpu_stream,
    .mem_in_use = cpu_mem_in_use,
    .device_name = cpu_device_name,
    .peak = cpu_peak,
    .alloc = CPU_FN(cpu_alloc),
    .release = CPU_FN(cpu_release),
    .zero = CPU_FN(cpu_zero),
    .copy = CPU_FN(cpu_copy),
    .upload_raw = CPU_FN(cpu_upload_raw),
    .download_raw = CPU_FN(cpu_download_raw),
    .upload = CPU_FN(cpu_upload),
    .download = CPU_FN(cpu_download),
    .sync = CPU_FN(cpu_sync),
    .add = CPU_FN(cpu_add),
    .accumulate = CPU_FN(cpu_accumulate),
    .embed_fwd = CPU_FN(cpu_embed_fwd),
    .embed_bwd = CPU_FN(cpu_embed_bwd),
    .rmsnorm_fwd = CPU_FN(cpu_rmsnorm_fwd),
    .rmsnorm_bwd = CPU_FN(cpu_rmsnorm_bwd),
    .add_rmsnorm_fwd = CPU_FN(cpu_add_rmsnorm_fwd),
    .matmul_fwd = CPU_FN(cpu_matmul_fwd),
    .matmul_bwd = CPU_FN(cpu_matmul_bwd),
    .rope_fwd = CPU_FN(cpu_rope_fwd),
    .rope_bwd = CPU_FN(cpu_rope_bwd),
    .attention_fwd = CPU_FN(cpu_attention_fwd),
    .attention_bwd = CPU_FN(cpu_attention_bwd),
    .geglu_fwd = CPU_FN(cpu_geglu_fwd),
    .geglu_bwd = CPU_FN(cpu_geglu_bwd),
    .ce_partial = CPU_FN(cpu_ce_partial),
    .ce_finish = CPU_FN(cpu_ce_finish),
    .ce_backward = CPU_FN(cpu_ce_backward),
    .grad_sumsq = CPU_FN(cpu_grad_sumsq),
    .adamw = CPU_FN(cpu_adamw),
    .fp8_cast = CPU_FN(cpu_fp8_cast),
    .matmul_fp8 = CPU_FN(cpu_matmul_fp8),
    .fp8_update = CPU_FN(cpu_fp8_update),
    .geglu_fwd_fp8 = CPU_FN(cpu_geglu_fwd_fp8),
    .geglu_bwd_fp8 = CPU_FN(cpu_geglu_bwd_fp8),
    .rmsnorm_fwd_fp8 = CPU_FN(cpu_rmsnorm_fwd_fp8),
    .add_rmsnorm_fwd_fp8 = CPU_FN(cpu_add_rmsnorm_fwd_fp8),
    .set_dw_accumulate = CPU_FN(cpu_set_dw_accumulate),
    .set_grad_bf16 = CPU_FN(cpu_set_grad_bf16),
    .init_normal = CPU_FN(cpu_init_normal),
    .kv_write = CPU_FN(cpu_kv_write),
    .attention_decode = CPU_FN(cpu_attention_decode),
    .argmax_rows = CPU_FN(cpu_argmax_rows),
};

const gt_ops *CPU_OPS_GETTER(void) { return &cpu_table; }

#if GT_CPU_REAL_BITS == 32
gt_backend *gt_cpu_backend_create(void) { return gt_calloc(1, sizeof(gt_backend)); }

void gt_cpu_backend_destroy(gt_backend *be) { free(be); }
#endif
