/* Fuzz target: an HF config.json through gt_config_load (parsing and validation). */
#include "../../model/config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fuzz_write("config.json", data, size, path, sizeof path);
    gt_config cfg;
    gt_err err;
    (void)gt_config_load(&cfg, path, &err);
    return 0;
}
