#include "backend.h"

#include <string.h>

#ifdef GT_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

static int gpu_count(void) {
#ifdef GT_HAVE_CUDA
    return gt_cuda_device_count();
#else
    return 0;
#endif
}

/* The table named name, or NULL with the reason in err. */
static const gt_ops *table_named(const char *name, gt_err *err) {
    if (!strcmp(name, "cpu")) return gt_cpu_ops();
    if (!strcmp(name, "cpu64")) return gt_cpu64_ops();
    if (!strcmp(name, "cuda")) {
#ifdef GT_HAVE_CUDA
        if (gpu_count() > 0) return gt_cuda_ops();
        gt_fail(err, "--device cuda: no CUDA GPU is visible to this process");
#else
        gt_fail(err, "--device cuda: this gemmatron was built without CUDA (no nvcc at build time)");
#endif
        return NULL;
    }
    gt_fail(err, "unknown device '%s' (expected auto, cpu, cpu64 or cuda)", name);
    return NULL;
}

int gt_compute_open(gt_compute *c, const char *name, int slot, gt_err *err) {
    memset(c, 0, sizeof *c);
    int gpus = gpu_count();
    if (!strcmp(name, "auto")) name = gpus > 0 ? "cuda" : "cpu";
    const gt_ops *ops = table_named(name, err);
    if (!ops) return -1;
    c->ops = ops;
    c->be = ops->create(gpus > 0 ? slot % gpus : 0);
    return 0;
}

void gt_compute_close(gt_compute *c) {
    if (!c->ops) return;
    c->ops->destroy(c->be);
    c->ops = NULL;
}
