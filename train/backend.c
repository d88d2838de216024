#include "backend.h"

#include <string.h>

#ifdef GT_HAVE_CUDA
#include "../kernels/cuda/cuda_backend.h"
#include "../kernels/cuda/cuda_stream.h"
#endif

static int have_gpu(void) {
#ifdef GT_HAVE_CUDA
    return gt_cuda_device_count() > 0;
#else
    return 0;
#endif
}

int gt_compute_open(gt_compute *c, const char *name, int local_rank, gt_err *err) {
    memset(c, 0, sizeof *c);
    if (!strcmp(name, "auto")) name = have_gpu() ? "cuda" : "cpu";
    if (!strcmp(name, "cpu") || !strcmp(name, "cpu64")) {
        c->ops = !strcmp(name, "cpu") ? gt_cpu_ops() : gt_cpu64_ops();
        c->be = gt_cpu_backend_create();
        return 0;
    }
    if (!strcmp(name, "cuda")) {
#ifdef GT_HAVE_CUDA
        int n = gt_cuda_device_count();
        if (n == 0) return gt_fail(err, "--device cuda: no CUDA GPU is visible to this process");
        c->ops = gt_cuda_ops();
        c->be = gt_cuda_backend_create(local_rank % n);
        c->is_cuda = 1;
        return 0;
#else
        return gt_fail(err, "--device cuda: this gemmatron was built without CUDA (no nvcc at build time)");
#endif
    }
    return gt_fail(err, "unknown device '%s' (expected auto, cpu, cpu64 or cuda)", name);
}

void gt_compute_close(gt_compute *c) {
    if (!c->ops) return;
#ifdef GT_HAVE_CUDA
    if (c->is_cuda) gt_cuda_backend_destroy(c->be);
    else
#endif
        gt_cpu_backend_destroy(c->be);
    c->ops = NULL;
}

void *gt_compute_stream(gt_compute *c) {
#ifdef GT_HAVE_CUDA
    if (c->is_cuda) return gt_cuda_stream(c->be);
#endif
    (void)c;
    return NULL;
}
