/* Fuzz target: one .safetensors file (the 8-byte length, the header JSON, the data length checks)
 * through gt_st_open, then every tensor it accepted read back as float32. */
#include "../../model/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fuzz_write("input.safetensors", data, size, path, sizeof path);
    gt_st st;
    gt_err err;
    if (gt_st_open(&st, path, &err) == 0) {
        float buf[64];
        for (int i = 0; i < st.ntensors; i++) { /* the first row (up to 64 columns) of each tensor */
            const gt_st_tensor *t = &st.tensors[i];
            if (t->numel <= 0) continue;
            int64_t cols = t->ndim < 2 ? t->numel : t->numel / t->shape[0];
            (void)gt_st_read_f32(&st, t, 0, 1, 0, cols < 64 ? cols : 64, buf, &err);
        }
        gt_st_close(&st);
    }
    return 0;
}
