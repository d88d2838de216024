/* The host memory this process holds, for reports (train's progress lines on the CPU backends). */
#ifndef GT_HOST_MEM_H
#define GT_HOST_MEM_H

#include <stddef.h>

/* Resident set size of this process in bytes (Linux: /proc/self/statm), or 0 when it cannot be read. */
size_t gt_host_rss_bytes(void);

#endif
