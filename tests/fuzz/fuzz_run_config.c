/* Fuzz target: a YAML run config through gt_run_config_load_file over the defaults, then the
 * cross-field validation when it loaded. */
#include "../../train/config/run_config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fuzz_write("run.yaml", data, size, path, sizeof path);
    gt_run_config rc;
    gt_err err;
    gt_run_config_defaults(&rc);
    if (gt_run_config_load_file(&rc, path, &err) == 0) (void)gt_run_config_validate(&rc, &err);
    gt_run_config_free(&rc);
    return 0;
}
