/* generate --profile: where a decode step's time goes. */
#ifndef GT_GENERATE_PROFILE_H
#define GT_GENERATE_PROFILE_H

#include "../../model/decoder.h"

/* Runs one decode step of B sequences with every op timed (train/metrics/op_profile.h: each op
 * between two device synchronizations, ops launched directly, no CUDA graph), each sequence at the
 * cache's last position (the longest attention of the run); its K/V overwrite that position, so
 * call it after generating. Every rank runs it (tp collectives); `print` ranks print the table to
 * stderr: per op class calls, ms and share, and for the GEMMs the bytes of the weights they read
 * per step and the rate. step_ms: the unprofiled step it is compared with (0: none). */
void gt_generate_profile(gt_decoder *d, int B, double step_ms, int print);

#endif
