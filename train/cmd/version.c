/* gemmatron version: the version, the git commit and build type (from the header that
 * cmake/build_info.cmake writes at build time) and what the compute backend was compiled with. */
#include "version.h"

#include "../../kernels/build_info.h"
#include "gt_build_info.h"

const char *gt_version_name(void) { return "gemmatron " GT_BUILD_VERSION; }

const gt_cli_cmd gt_version_cli = {
    .name = "version",
    .summary = "the version, git commit, build type and the CUDA/cuBLASLt/NCCL/cuDNN versions compiled in",
    .about = "Prints what this binary is: its version, the git commit it was built from (\"-dirty\" when the "
             "tree had uncommitted changes, \"unknown\" when it was built outside a git checkout), the build "
             "type and the versions of the CUDA runtime, cuBLASLt, NCCL and cuDNN headers it was compiled "
             "with, or \"CPU only\". Also `gemmatron --version`.",
    .examples = "gemmatron --version",
};

int gt_cmd_version(int argc, char **argv) {
    int code = gt_cli_args(&gt_version_cli, argc, argv, NULL);
    if (code != GT_CLI_GO) return code;
    char backend[256];
    gt_kernels_build_info(backend, sizeof backend);
    printf("%s\ncommit: %s\nbuild type: %s\ncompiled with: %s\n", gt_version_name(), GT_BUILD_COMMIT, GT_BUILD_TYPE,
           backend);
    return 0;
}
