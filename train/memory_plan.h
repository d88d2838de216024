/* The memory plan of one rank, made before its first device allocation: the bytes of weights,
 * gradients (fp32, or bf16 with optim.grads), optimizer state (by optim.state; divided over dp with ZeRO), micro-batch activations
 * (model/model.h gt_model_batch_bytes, the allocator's own computation), the lm_head/cross-entropy
 * chunk, FP8 copies and operands (gt_model_fp8_bytes), and what the backend adds (ops->mem_reserve).
 * When that exceeds the device's free memory (ops->mem_free, or GT_DEVICE_MEMORY=bytes with an
 * optional K/M/G/T binary suffix, which also gives the CPU backends a budget for tests), the run
 * stops with one line: the estimate, the free memory, and the changes that would fit, each
 * computed with this same plan. */
#ifndef GT_MEMORY_PLAN_H
#define GT_MEMORY_PLAN_H

#include "../kernels/ops.h"
#include "../model/config.h"

typedef struct {
    int B, T;        /* micro-batch: sequences, tokens each */
    int tp, dp;      /* the grid */
    int zero;        /* 1: optimizer state sharded over the dp ranks (ZeRO-1) */
    int state;       /* gt_opt_state */
    int fp8, fp8_lm_head, fp8_history_len;
    int bf16_grads;  /* optim.grads=bf16 (gt_model_init_grads) */
} gt_mem_plan_in;

typedef struct {
    size_t weights, grads, optim; /* optim: master copy and moments (this rank's share) */
    size_t acts;                  /* micro-batch activations and backward scratch */
    size_t ce;                    /* the lm_head/cross-entropy chunk: logits and partials */
    size_t fp8;                   /* FP8 weight copies, scaling state and operands */
    size_t backend;               /* workspaces the backend makes on first use (ops->mem_reserve) */
    size_t total;
} gt_mem_plan;

/* The plan for cfg on a backend of element sizes size[3] (gt_ops.size) that reserves `reserve`
 * bytes. -1 when cfg cannot be split over in->tp ranks (err says why). */
int gt_memory_plan(const gt_config *cfg, const size_t size[3], size_t reserve, const gt_mem_plan_in *in,
                   gt_mem_plan *p, gt_err *err);

/* The budget: GT_DEVICE_MEMORY when set, else the backend's free device memory; *have = 0 when
 * there is neither (the CPU backends). -1 for a malformed GT_DEVICE_MEMORY. */
int gt_memory_budget(const gt_ops *ops, gt_backend *be, size_t *budget, int *have, gt_err *err);

/* Plans (into *p) and checks the plan against the budget: 0 when it fits or there is no budget;
 * -1 with err the one line that says by how much it does not and what would fit. */
int gt_memory_plan_check(const gt_config *cfg, const gt_ops *ops, gt_backend *be, const gt_mem_plan_in *in,
                         gt_mem_plan *p, gt_err *err);

/* "12.34 GiB" (or "5.67 MiB" below a GiB) into buf. */
void gt_memory_bytes_text(size_t bytes, char *buf, size_t len);

/* "weights 15.90 GiB, gradients ..." into buf. */
void gt_memory_plan_describe(const gt_mem_plan *p, char *buf, size_t len);

#endif
