/* The element type of the CPU reference backend. Every file of kernels/cpu is compiled twice, with
 * GT_CPU_REAL_BITS=32 (real = float, backend "cpu") and GT_CPU_REAL_BITS=64 (real = double, backend
 * "cpu64"); CPU_FN gives each compile its own symbol names so both link into one library.
 *
 * Elementwise math is done in `real`, with the r_* functions of that precision, so the float build
 * rounds where PyTorch's float32 kernels round. Reductions (dot products, row sums, gradient sums)
 * accumulate in `acc` = double in both builds: the float build is then the float32 result of an
 * (almost) exact sum, which is as close to torch's blocked/pairwise float32 sums as any fixed
 * float32 order would be, and keeps HF parity at ~1e-6 for long rows. */
#ifndef GT_CPU_REAL_H
#define GT_CPU_REAL_H

#include <math.h>

#if GT_CPU_REAL_BITS == 32
typedef float real;
#define CPU_FN(name)   name##_f32
#define CPU_OPS_GETTER gt_cpu_ops
#define CPU_OPS_NAME   "cpu"
#define r_exp          expf
#define r_log          logf
#define r_sqrt         sqrtf
#define r_pow          powf
#define r_cos          cosf
#define r_sin          sinf
#define r_tanh         tanhf
#define r_erf          erff
#define r_fabs         fabsf
#elif GT_CPU_REAL_BITS == 64
typedef double real;
#define CPU_FN(name)   name##_f64
#define CPU_OPS_GETTER gt_cpu64_ops
#define CPU_OPS_NAME   "cpu64"
#define r_exp          exp
#define r_log          log
#define r_sqrt         sqrt
#define r_pow          pow
#define r_cos          cos
#define r_sin          sin
#define r_tanh         tanh
#define r_erf          erf
#define r_fabs         fabs
#else
#error "GT_CPU_REAL_BITS must be 32 or 64"
#endif

typedef double acc; /* accumulator of every reduction, in both builds */

#endif
