#define _POSIX_C_SOURCE 200809L
#include "host_mem.h"

#include <stdio.h>
#include <unistd.h>

size_t gt_host_rss_bytes(void) {
    /* statm: total and resident sizes in pages (proc(5)). A missing /proc (not Linux) reads as 0:
     * the caller then leaves the field out rather than printing a wrong number. */
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int got = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0 ? (size_t)(resident * (unsigned long long)page) : 0;
}
