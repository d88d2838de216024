#include "fp8.h"

#include <math.h>

/* An FP8 format: exponent bits, mantissa bits, bias, largest finite code (without sign). */
typedef struct {
    int man, bias;
    uint8_t max_code;
    float max;
    uint8_t nan;
} fp8_format;

static const fp8_format E4M3 = {3, 7, 0x7e, GT_E4M3_MAX, 0x7f};
static const fp8_format E5M2 = {2, 15, 0x7b, GT_E5M2_MAX, 0x7f};

/* Round |x| to the format: subnormals are multiples of 2^(1-bias-man); normals have man+1
 * significant bits. nearbyintf rounds half to even in the default rounding mode. */
static uint8_t encode(float x, const fp8_format *f) {
    if (isnan(x)) return f->nan;
    uint8_t sign = signbit(x) ? 0x80 : 0;
    float a = fabsf(x);
    if (a >= f->max) return sign | f->max_code; /* saturate, infinities included */
    int emin = 1 - f->bias;
    float code;
    if (a < ldexpf(1.0f, emin)) {
        code = nearbyintf(ldexpf(a, f->man - emin)); /* 2^man reaches the smallest normal */
    } else {
        int e;
        frexpf(a, &e); /* a = m 2^e, m in [0.5, 1): exponent of a is e - 1 */
        float q = nearbyintf(ldexpf(a, f->man - (e - 1))); /* in [2^man, 2^(man+1)] */
        code = ldexpf((float)(e - 1 + f->bias), f->man) + q - ldexpf(1.0f, f->man);
    }
    uint8_t c = (uint8_t)code;
    if (c > f->max_code) c = f->max_code; /* rounded past the largest finite value */
    return sign | c;
}

static float decode(uint8_t v, const fp8_format *f, int has_inf) {
    int exp_bits = 7 - f->man;
    int e = (v >> f->man) & ((1 << exp_bits) - 1), m = v & ((1 << f->man) - 1);
    float sign = (v & 0x80) ? -1.0f : 1.0f;
    int top = (1 << exp_bits) - 1;
    if (has_inf && e == top) return m ? NAN : sign * INFINITY;
    if (!has_inf && e == top && m == (1 << f->man) - 1) return NAN;
    if (e == 0) return sign * ldexpf((float)m, 1 - f->bias - f->man);
    return sign * ldexpf((float)(m + (1 << f->man)), e - f->bias - f->man);
}

uint8_t gt_f32_to_e4m3(float x) { return encode(x, &E4M3); }
uint8_t gt_f32_to_e5m2(float x) { return encode(x, &E5M2); }
float gt_e4m3_to_f32(uint8_t v) { return decode(v, &E4M3, 0); }
float gt_e5m2_to_f32(uint8_t v) { return decode(v, &E5M2, 1); }
