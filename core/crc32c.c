/* CRC32C: hardware (SSE4.2 crc32, three streams joined by a shift) or slicing-by-8 tables
 * (crc32c.h). All state is on the stack; the tables are constant. */
#include "crc32c.h"

#include <string.h>

#include "crc32c_table.h"

#define POLY 0x82f63b78u

/* The raw (unconditioned) CRC register advanced over buf[n] with the tables. */
static uint32_t sw_update(uint32_t c, const unsigned char *p, size_t n) {
    const uint32_t (*t)[256] = crc32c_table;
    while (n && ((uintptr_t)p & 7)) {
        c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
            t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    }
    while (n--) c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

/* ---- combining: the register after len zero bytes is a linear map of the register before ---- */

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1) sum ^= *mat;
    return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) sq[n] = gf2_times(mat, mat[n]);
}

/* The raw register c advanced over len zero bytes. */
static uint32_t shift_zeros(uint32_t c, uint64_t len) {
    uint32_t odd[32], even[32];
    odd[0] = POLY; /* one zero bit */
    for (int n = 1; n < 32; n++) odd[n] = 1u << (n - 1);
    gf2_square(even, odd); /* two zero bits */
    gf2_square(odd, even); /* four */
    do {
        gf2_square(even, odd); /* one zero byte first, then doubling */
        if (len & 1) c = gf2_times(even, c);
        len >>= 1;
        if (!len) break;
        gf2_square(odd, even);
        if (len & 1) c = gf2_times(odd, c);
        len >>= 1;
    } while (len);
    return c;
}

uint32_t gt_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
    if (!len_b) return crc_a;
    /* With conditioning (init and final xor ~0) CRC(A||B) = shift(CRC(A), |B|) ^ CRC(B). */
    return shift_zeros(crc_a, len_b) ^ crc_b;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>

#define HW_BLOCK 8192 /* bytes per stream per round: three streams of this, then two shifts */

__attribute__((target("sse4.2"))) static uint32_t hw_update(uint32_t c, const unsigned char *p, size_t n) {
    /* blk: the linear map "advance over HW_BLOCK zero bytes", column by column; ones = its image of ~0. */
    uint32_t blk[32], ones = 0;
    if (n >= 3 * HW_BLOCK) {
        for (int i = 0; i < 32; i++) blk[i] = shift_zeros(1u << i, HW_BLOCK);
        ones = gf2_times(blk, 0xffffffffu);
    }
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
    /* Three independent streams hide the instruction's 3-cycle latency. */
    while (n >= 3 * HW_BLOCK) {
        uint64_t a = c, b = 0xffffffffu, d = 0xffffffffu;
        const unsigned char *pb = p + HW_BLOCK, *pd = p + 2 * HW_BLOCK;
        for (size_t i = 0; i < HW_BLOCK; i += 8) {
            uint64_t x, y, z;
            memcpy(&x, p + i, 8);
            memcpy(&y, pb + i, 8);
            memcpy(&z, pd + i, 8);
            a = _mm_crc32_u64(a, x);
            b = _mm_crc32_u64(b, y);
            d = _mm_crc32_u64(d, z);
        }
        /* b and d started from ~0: the register over A then B is shift(a) ^ b ^ shift(~0). */
        uint32_t ab = gf2_times(blk, (uint32_t)a) ^ (uint32_t)b ^ ones;
        c = gf2_times(blk, ab) ^ (uint32_t)d ^ ones;
        p += 3 * HW_BLOCK;
        n -= 3 * HW_BLOCK;
    }
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        c64 = _mm_crc32_u64(c64, x);
    }
    c = (uint32_t)c64;
    while (n--) c = _mm_crc32_u8(c, *p++);
    return c;
}

static int have_sse42(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#endif

uint32_t gt_crc32c(uint32_t crc, const void *buf, size_t n) {
    uint32_t c = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (n >= 64 && have_sse42()) return ~hw_update(c, buf, n);
#endif
    return ~sw_update(c, buf, n);
}
