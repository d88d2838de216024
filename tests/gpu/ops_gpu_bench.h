/* test_ops_gpu --bench: times every op of the "cuda" backend at Gemma-2B shapes (N = 4096 tokens)
 * with CUDA events (3 warm-ups, median of 20, L2 flushed before each) and prints ms, GB/s, TFLOP/s
 * and the fraction of the H100 roofline (3.35 TB/s HBM3, 989 TFLOP/s dense bf16); then Gemma-2B's
 * decode GEMMs at one row (qkv, o, fc1, fc2, lm_head): matmul_fwd, which runs the GEMV kernel there,
 * against cuBLASLt's plan for the same GEMM, in µs and GB/s. */
#ifndef GT_OPS_GPU_BENCH_H
#define GT_OPS_GPU_BENCH_H

#include "ops_gpu_harness.h"

int ops_gpu_bench(harness *h);

#endif
