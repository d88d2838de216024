/* Fuzz target: model.safetensors.index.json (weight_map, metadata, the shards it names) through
 * gt_st_open. The shards of tests/fixtures/sharded sit beside it, so that an input naming them
 * reaches the cross-checks of index and shard headers. */
#include "../../model/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int shards_copied;
    if (!shards_copied) {
        for (int i = 1; i <= 6; i++) {
            char from[128], name[64];
            snprintf(name, sizeof name, "model-%05d-of-00006.safetensors", i);
            snprintf(from, sizeof from, "tests/fixtures/sharded/%s", name);
            fuzz_copy(from, name);
        }
        shards_copied = 1;
    }
    char path[512];
    fuzz_write("model.safetensors.index.json", data, size, path, sizeof path);
    gt_st st;
    gt_err err;
    if (gt_st_open(&st, path, &err) == 0) gt_st_close(&st);
    return 0;
}
