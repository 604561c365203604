/* Fused hot loops of streammetric (internal): one pass over a batch instead of a dozen NumPy calls.
 *
 * exact_sum(values)                      exact sum of float64 values in units of 2**-1074
 * log(values, out, negate)               float64 log, the same bits on every CPU
 * exp(values, out), log1p(values, out)   float64 exp and log1p, likewise
 * sparse_scan(pred, labels, picked, ...) the clean-batch pass of the cross-entropy family
 *                                        (and, if asked, the true classes' ranks)
 * sparse_loss(pred, labels, out, ...)    that pass, which also writes each row's loss under a
 *                                        convention (guard, renormalisation, dtype)
 * log32(values, out), exp32(values, out) NumPy's float32 log and exp (AVX2/AVX-512), ported
 * class_ranks(pred, labels, ranks)       ranks of the true class among each row's scores
 * hash_ints, hash_strings               64-bit hashes of row identities (the bootstrap's)
 * group_counts(codes, mask, out)         out[codes[i]] += 1 (mask None) or mask[i]: rows per group
 * GroupSums, KeyCodes                    exact sums per group; dense codes of int/string keys
 * isa(), isas(), use_isa(name)           the instruction set the loops use (see below)
 *
 * Every function reads any object with the buffer protocol (NumPy arrays), checks formats and
 * shapes, and answers None (or False) for input it does not handle, so the caller takes its
 * general NumPy path, which also writes the error messages. No libm calls: the float64
 * log, exp and log1p of every path (this one and NumPy's, see functional/_ce_core) are log_f64,
 * exp_f64 and log1p_f64 below, so every path, on every CPU, gives the same bits. Compiled
 * without -ffast-math and with -ffp-contract=off: float arithmetic here is IEEE, in the order
 * written.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- buffers */

typedef enum { K_F32, K_F64, K_I32, K_I64, K_OTHER } kind_t;

static kind_t buffer_kind(const Py_buffer *view) {
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    if (f[0] == 0 || f[1] != 0) return K_OTHER;
    if (f[0] == 'f' && view->itemsize == 4) return K_F32;
    if (f[0] == 'd' && view->itemsize == 8) return K_F64;
    if (strchr("ilq", f[0]) && view->itemsize == 4) return K_I32;
    if (strchr("ilq", f[0]) && view->itemsize == 8) return K_I64;
    return K_OTHER;
}

/* A C-contiguous view of `obj` (writable if asked); 0 on failure with no exception set when the
 * object simply isn't a contiguous buffer (the caller answers None). */
static int get_view(PyObject *obj, Py_buffer *view, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

#define INLINE inline __attribute__((always_inline))

/* Vectors of 16 and 32 bytes for the reductions of _kernels_loops.h (GCC/Clang extensions). */
typedef int32_t i32x4 __attribute__((vector_size(16)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef int64_t i64x2 __attribute__((vector_size(16)));
typedef int64_t i64x4 __attribute__((vector_size(32)));
typedef double f64x2 __attribute__((vector_size(16)));
typedef double f64x4 __attribute__((vector_size(32)));

/* ------------------------------------------------------------- exact sums */

/* The digits: digit j holds a signed multiple of 2**(32 j) units of 2**-1074. A finite float64
 * is m * 2**(e - 1) units, with m < 2**53 its significand and e its biased exponent (for
 * subnormals e = 1 and no implicit bit). Values are taken BATCH at a time. In a batch whose
 * largest magnitude is below 2**E, the values within 2**64 of it are split without error into
 * three parts, multiples of 2**(E-40), 2**(E-80) and 2**(E-120) (`split_batch`), whose integer
 * multiples are summed in 64-bit lanes and added to the digits once. The others, and batches
 * with inf or NaN or at the ends of the range, go to the digits one by one. Digits are
 * normalised after each batch, so each absorbs less than 2**32 * (BATCH + 4) between
 * normalisations. */
#define DIGITS 70
#define BATCH 1024
#define SIGNIFICAND 0xfffffffffffffULL
#define EXPONENT 0x7ff0000000000000ULL

typedef struct {
    int64_t d[DIGITS];
    Py_ssize_t pos_inf, neg_inf, nan;
} acc_t;

/* Digits 0..DIGITS-2 in [0, 2**32), the last one signed. */
static void acc_normalise(acc_t *a) {
    int64_t carry = 0;
    for (int j = 0; j < DIGITS; j++) {
        int64_t v = a->d[j] + carry;
        carry = v >> 32; /* arithmetic shift: floor division by 2**32 */
        a->d[j] = j < DIGITS - 1 ? v - carry * ((int64_t)1 << 32) : v;
    }
}

/* Adds v * 2**s units (v signed). */
static inline void acc_add_signed(acc_t *a, int64_t v, unsigned s) {
    unsigned j = s >> 5;
    __int128 t = (__int128)v * ((__int128)1 << (s & 31)); /* |t| < 2**95 */
    a->d[j] += (int64_t)(uint32_t)t;
    a->d[j + 1] += (int64_t)(uint32_t)(t >> 32);
    a->d[j + 2] += (int64_t)(t >> 64); /* arithmetic shift: the signed rest */
}

/* One value, whatever it is. */
static void acc_add_one(acc_t *a, uint64_t bits) {
    unsigned e = (unsigned)(bits >> 52) & 0x7ff;
    if (e == 0x7ff) {
        if (bits & SIGNIFICAND) a->nan++;
        else if (bits >> 63) a->neg_inf++;
        else a->pos_inf++;
        return;
    }
    int64_t m = (int64_t)((bits & SIGNIFICAND) | ((uint64_t)(e != 0) << 52));
    if (m) acc_add_signed(a, bits >> 63 ? -m : m, (e ? e : 1) - 1);
}

/* Batches whose largest biased exponent is in [SPLIT_LOW, SPLIT_HIGH] are split: then the
 * units 2**(E-120) are normal (E >= -954) and the constants 1.5 * 2**(E+12) finite. */
#define SPLIT_LOW 68
#define SPLIT_HIGH 1033

/* The bits of 1.5 * 2**(level + 52): adding a value v with |v| < 2**(level + 51) rounds it to
 * a multiple q * 2**level, and the sum's bits minus these bits are q (Rump, Ogita and Oishi's
 * ExtractScalar, with the sign folded into the significand); v minus the rounded part is exact.
 */
static inline uint64_t magic_bits(int level) {
    return ((uint64_t)(level + 52 + 1023) << 52) | (1ULL << 51);
}

/* A Python int from n little-endian unsigned bytes. */
static PyObject *int_from_bytes(const unsigned char *bytes, size_t n) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_FromUnsignedNativeBytes(bytes, n, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    return _PyLong_FromByteArray(bytes, n, 1, 0);
#endif
}

/* Digits lo .. hi (normalised: each below 2**32) as little-endian bytes at `out`; their count. */
static size_t digit_bytes(const int64_t *d, int lo, int hi, unsigned char *out) {
    size_t n = 0;
    for (int j = lo; j <= hi; j++, n += 4) {
        const uint32_t v = (uint32_t)d[j];
        out[n] = v & 0xff, out[n + 1] = (v >> 8) & 0xff;
        out[n + 2] = (v >> 16) & 0xff, out[n + 3] = (v >> 24) & 0xff;
    }
    return n;
}

/* The accumulator's value as a Python int (units of 2**-1074); after acc_normalise. Only the
 * digits from the lowest nonzero one up are converted (a batch's sum spans a few of the 70),
 * then shifted into place. */
static PyObject *acc_to_int(const acc_t *a) {
    const int64_t *d = a->d;
    int lo = 0, hi = DIGITS - 2; /* the unsigned digits 0 .. DIGITS-2 */
    while (lo <= hi && d[lo] == 0) lo++;
    while (hi >= lo && d[hi] == 0) hi--;
    PyObject *sum;
    if (lo > hi) {
        sum = PyLong_FromLong(0);
    } else {
        unsigned char bytes[4 * (DIGITS - 1)];
        sum = int_from_bytes(bytes, digit_bytes(d, lo, hi, bytes));
        if (sum && lo) {
            PyObject *shift = PyLong_FromLong(32L * lo);
            PyObject *shifted = shift ? PyNumber_Lshift(sum, shift) : NULL;
            Py_XDECREF(shift);
            Py_DECREF(sum);
            sum = shifted;
        }
    }
    if (!sum || d[DIGITS - 1] == 0) return sum;
    PyObject *top = PyLong_FromLongLong(d[DIGITS - 1]);
    PyObject *shift = PyLong_FromLong(32L * (DIGITS - 1));
    PyObject *high = (top && shift) ? PyNumber_Lshift(top, shift) : NULL;
    PyObject *total = high ? PyNumber_Add(sum, high) : NULL;
    Py_XDECREF(top); Py_XDECREF(shift); Py_XDECREF(high); Py_DECREF(sum);
    return total;
}

/* ------------------------------------------------- logarithm, exponential */

/* log(x) of a float64, the same bits on every CPU and in every loop: IEEE additions and
 * multiplications in the order written (no fused multiply-adds, no libm), so the compiler's
 * vector loops for each instruction set give the scalar loop's bits. Error below 0.502 ulp
 * (tests/test_kernels.py measures it against exact decimal logarithms).
 *
 * x = 2**k * z with z in [0.6875, 1.375). The top 8 bits of z's significand (counted from
 * 0.6875's bits) pick invc, a 10-bit approximation of 1/z (exactly 1 next to 1), and
 * -log(invc) = c_hi + c_lo, c_hi a multiple of 2**-42 (_math_tables.h, generated by
 * scripts/make_math_tables.py, which also checks the bounds below). With z_hi, z less its low 10
 * bits, r = (z_hi * invc - 1) + z_lo * invc is z * invc - 1 as the sum of two exact parts,
 * |r| <= 2**-8, and log x = k log 2 + (c_hi + c_lo) + log1p(r), where log1p(r) - r is its
 * Taylor series to r**8 (the rest is below 2**-67 r). The large terms are added with their
 * rounding errors kept (TwoSum, Fast2Sum), so the result is one rounding of their sum plus
 * terms whose error is below 2**-60 of it. */
#include "_math_tables.h"

static INLINE double bits_to_f64(uint64_t bits) { double v; memcpy(&v, &bits, 8); return v; }
static INLINE uint64_t f64_to_bits(double v) { uint64_t bits; memcpy(&bits, &v, 8); return bits; }

/* 2**e for |e| <= 1022, exactly (e in two's complement, so that vector loops need no 64-bit
 * arithmetic shifts, which only AVX-512 has). */
static INLINE double pow2(uint64_t e) { return bits_to_f64((e + 1023) << 52); }

/* log(x + x_lo) with `with_lo` (a constant; x_lo at most half an ulp of x), else log(x). With
 * `f32` (a constant), x must be a float32 value (or NaN, inf, negative): then it is not
 * subnormal and z has no low part, so those steps are left out; the same bits (every positive
 * float32 up to 1 was checked, and tests/test_kernels.py checks a sample). */
static INLINE double log_core(double x, double x_lo, const int with_lo, const int f32) {
    const uint64_t bits = f64_to_bits(x), scaled = f32 ? bits : f64_to_bits(x * 0x1p52);
    /* all-ones if x is subnormal (or 0): then x * 2**52 is taken, and k lowered by 52 */
    const uint64_t sub = f32 ? 0 : -(uint64_t)(bits < 0x0010000000000000ULL);
    const uint64_t ix = (scaled & sub) | (bits & ~sub);
    const uint64_t t = ix - LOG_OFF; /* 2**52 k + the offset of z, modulo 2**64 */
    const int64_t k = (int64_t)((t + 0x8000000000000000ULL) >> 52) - 2048 - (int64_t)(sub & 52);
    const uint64_t iz = ix - (t & 0xfff0000000000000ULL);
    const uint64_t i = (t >> (52 - LOG_TABLE_BITS)) & ((1 << LOG_TABLE_BITS) - 1);
    const double z = bits_to_f64(iz), z_hi = bits_to_f64(iz & ~0x3ffULL), invc = log_invc[i];
    const double r_hi = z_hi * invc - 1.0, r_lo = f32 ? 0.0 : (z - z_hi) * invc;
    double r = r_hi, r_err = 0.0;
    if (!f32) { /* r_hi + r_lo with its rounding error (TwoSum) */
        r = r_hi + r_lo;
        const double rb = r - r_hi;
        r_err = (r_hi - (r - rb)) + (r_lo - rb);
    }
    if (with_lo) { /* x + x_lo = 2**k (z + x_lo 2**-k): r gains d = x_lo 2**-k invc (TwoSum) */
        const uint64_t half = (((uint64_t)k + 4096) >> 1) - 2048; /* floor(k / 2): |k| < 4096 */
        const double d = x_lo * pow2(-half) * pow2(half - (uint64_t)k) * invc; /* 2 exact steps */
        const double s = r + d, sb = s - r;
        r_err = r_err + ((r - (s - sb)) + (d - sb));
        r = s;
    }
    const double kd = bits_to_f64(0x4338000000000000ULL + (uint64_t)k) - 0x1.8p52;
    const double w = kd * LN2_HI + log_c_hi[i]; /* exact: multiples of 2**-42 below 2**11 */
    const double hi = w + r, hi_err = r - (hi - w); /* exact: w is 0 or |w| >= |r| */
    const double tail = r * r * (-0.5 + r * (1.0 / 3 + r * (-0.25 + r * (0.2 + r * (-1.0 / 6 +
                        r * (1.0 / 7 + r * -0.125))))));
    const double lo = f32 ? hi_err + (kd * LN2_LO + log_c_lo[i]) + tail
                          : hi_err + (kd * LN2_LO + log_c_lo[i]) + r_err + tail;
    /* +-0: -inf; +inf: +inf; NaN and negatives: NaN */
    const uint64_t zero = -(uint64_t)((bits << 1) == 0);
    const uint64_t inf = -(uint64_t)(bits == 0x7ff0000000000000ULL);
    const uint64_t special = zero | -(uint64_t)(bits >= 0x7ff0000000000000ULL);
    const uint64_t answer =
        (0xfff0000000000000ULL & zero) | (bits & inf) | (0x7ff8000000000000ULL & ~(zero | inf));
    return bits_to_f64((answer & special) | (f64_to_bits(hi + lo) & ~special));
}

static INLINE double log_f64(double x) { return log_core(x, 0.0, 0, 0); }

/* log_f64 of a float32 value, in fewer steps (see log_core). */
static INLINE double log_f32in(double x) { return log_core(x, 0.0, 0, 1); }

/* log(1 + x): 1 + x = u + e exactly (TwoSum), then log(u + e); log1p(+-0) = +-0. The same
 * error as log_f64 (log_core's d is exact where the result is small, else rounded by less than
 * 2**-97 of the result). */
static INLINE double log1p_f64(double x) {
    const double u = 1.0 + x, b = u - 1.0, e = (1.0 - (u - b)) + (x - b);
    const uint64_t bits = f64_to_bits(x), zero = -(uint64_t)((bits << 1) == 0);
    return bits_to_f64((bits & zero) | (f64_to_bits(log_core(u, e, 1, 0)) & ~zero));
}

/* exp(x) of a float64, the same bits on every CPU, as log_f64. x = (128 e + j) log(2) / 128 + r
 * with k = 128 e + j = round(x 128 / log 2) and r = (x - k EXP_LN2N_HI) - k EXP_LN2N_LO (the
 * first difference exact: k EXP_LN2N_HI is exact and within a factor 2 of x), |r| <= log(2) /
 * 256 and a hair; exp x = 2**e (t_hi + t_lo) exp(r), t = 2**(j/128) from _math_tables.h, and
 * exp(r) - 1 its Taylor series to r**6 (the rest is below 2**-71). The result is one rounding
 * of t_hi + (t_hi (exp(r) - 1) + t_lo), then scaled by 2**e in two exact steps; a subnormal
 * result is rounded once on its own grid instead. Error below 0.51 ulp. x beyond +-746 is taken
 * as +-746 (inf or 0); NaN gives NaN. */
static INLINE double exp_f64(double x) {
    /* x clamped to [-746, 746] by masks (a select is control flow to GCC's vectoriser) */
    const uint64_t below = -(uint64_t)(x < -746.0), above = -(uint64_t)(x > 746.0);
    const double xc = bits_to_f64((f64_to_bits(x) & ~(below | above)) |
                                  (f64_to_bits(-746.0) & below) | (f64_to_bits(746.0) & above));
    const double z = xc * EXP_INV_LN2N + 0x1.8p52, kd = z - 0x1.8p52;
    /* k + 2**40 (|k| < 2**18), so that floors are logical shifts; 2**40 is a multiple of 128 */
    const uint64_t kb = f64_to_bits(z) - 0x4338000000000000ULL + (1ULL << 40);
    const double r = (xc - kd * EXP_LN2N_HI) - kd * EXP_LN2N_LO;
    const uint64_t j = kb & ((1 << EXP_TABLE_BITS) - 1);
    const uint64_t eb = kb >> EXP_TABLE_BITS, e1b = eb >> 1; /* e + 2**33, floor(e / 2) + 2**32 */
    const double t_hi = exp_t_hi[j], t_lo = exp_t_lo[j];
    const double p = r + r * r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 +
                     r * (1.0 / 720)))));
    const double lo = t_hi * p + t_lo, y = t_hi + lo;
    const double normal = y * pow2(e1b - (1ULL << 32)) * pow2(eb - e1b - (1ULL << 32));
    /* A subnormal result, scaled by 2**1022, is a + b < 1: rounded once on its grid as 1 + (a +
     * b), with a = 2**(e+1022) t_hi exact and 1 + a split exactly (Fast2Sum); else y would be
     * rounded twice. Only taken for e <= -1022 (where s is a power of two <= 1). */
    const double s = pow2(eb - (1ULL << 33) + 1022), a = s * t_hi, b = s * lo;
    const double h = 1.0 + a, h_err = (1.0 - h) + a;
    const double tiny = ((h + (h_err + b)) - 1.0) * 0x1p-1022;
    const uint64_t sub = -(uint64_t)((eb < (1ULL << 33) - 1021) & (a + b < 1.0));
    const uint64_t nan = -(uint64_t)(x != x);
    const uint64_t result = (f64_to_bits(tiny) & sub) | (f64_to_bits(normal) & ~sub);
    return bits_to_f64((0x7ff8000000000000ULL & nan) | (result & ~nan));
}

/* ------------------------------------------------ NumPy's float32 exp, log */

/* exp and log of a float32 as NumPy computes them on x86-64 CPUs with AVX2 and FMA or AVX-512:
 * simd_exp_FLOAT and simd_log_FLOAT of numpy/_core/src/umath/loops_exponent_log.dispatch.c.src
 * (unchanged since NumPy 1.18, through 2.4), lane by lane: a ratio of two polynomials evaluated
 * with fused multiply-adds (__builtin_fmaf: one rounding each; an FMA instruction where the
 * target has one, an exact library call elsewhere), IEEE float32 operations in NumPy's order.
 * With them the float32 losses of the conventions that compute in the input's dtype (keras,
 * tf_keras, torch, mxnet, sklearn) are computed in one pass with the bits NumPy's path gives.
 * NumPy elsewhere (x86-64 without AVX2 and FMA, ARM) calls the C library's expf and logf, whose
 * bits differ: the caller checks that np.exp and np.log agree with these before using them
 * (functional/_ce_fast.float32_logs_agree). */
static INLINE uint32_t f32_to_bits(float v) { uint32_t bits; memcpy(&bits, &v, 4); return bits; }
static INLINE float bits_to_f32(uint32_t bits) { float v; memcpy(&v, &bits, 4); return v; }
/* `mask` (all ones or zero) ? a : b, bitwise (a select is control flow to GCC's vectoriser) */
static INLINE float select_f32(uint32_t mask, float a, float b) {
    return bits_to_f32((f32_to_bits(a) & mask) | (f32_to_bits(b) & ~mask));
}

/* NumPy's np.exp of a float32: x = q log 2 + r (Cody and Waite, q = rint(x / log 2)), exp(r) =
 * P(r) / Q(r), then times 2**q rounded once (AVX-512's scalef; AVX2 adds q to the exponent, and
 * for q <= -125 adds -125 and divides by 2**(-125 - q): the same value). x >= 88.72283935546875:
 * inf; x <= -103.97208404541015625: 0; NaN: NaN (0x7fc00000, whatever its sign and payload). */
static INLINE float exp_f32np(float x) {
    const uint32_t nan = -(uint32_t)(x != x);
    float v = bits_to_f32(f32_to_bits(x) & ~nan);
    const uint32_t over = -(uint32_t)(v >= 88.72283935546875f);
    const uint32_t under = -(uint32_t)(v <= -103.97208404541015625f);
    v = bits_to_f32(f32_to_bits(v) & ~(over | under));
    float q = v * 1.442695040888963407359924681001892137f; /* NPY_LOG2Ef */
    q = q + 0x1.800000p+23f;
    q = q - 0x1.800000p+23f;
    float r = __builtin_fmaf(q, -6.93145752e-1f, v);
    r = __builtin_fmaf(q, -1.42860677e-6f, r);
    r = __builtin_fmaf(q, 0.0f, r); /* NumPy's third Cody-Waite step, with c3 = 0 */
    float num = __builtin_fmaf(5.082762527590693718096e-04f, r, 6.757896990527504603057e-03f);
    num = __builtin_fmaf(num, r, 5.114512081637298353406e-02f);
    num = __builtin_fmaf(num, r, 2.473615434895520810817e-01f);
    num = __builtin_fmaf(num, r, 7.257664613233124478488e-01f);
    num = __builtin_fmaf(num, r, 9.999999999980870924916e-01f);
    float den = __builtin_fmaf(2.159509375685829852307e-02f, r, -2.742335390411667452936e-01f);
    den = __builtin_fmaf(den, r, 1.0f);
    const float poly = num / den;
    const int32_t qi = (int32_t)q; /* an integer in [-150, 128] */
    const uint32_t small = -(uint32_t)(qi <= -125);
    const uint32_t qc = (small & (uint32_t)-125) | (~small & (uint32_t)qi);
    const float scaled = bits_to_f32(f32_to_bits(poly) + (qc << 23));
    const uint32_t d = small & (uint32_t)(-125 - qi); /* 0 .. 25 */
    /* NumPy divides by 2**d; times 2**-d (a normal float32, exact) is the same correctly
     * rounded value, without a division per value */
    const float result = scaled * bits_to_f32((127 - d) << 23);
    uint32_t out = (f32_to_bits(result) & ~nan) | (0x7fc00000u & nan);
    out = (out & ~over) | (0x7f800000u & over);
    return bits_to_f32(out & ~under);
}

/* NumPy's np.log of a float32 (below) from the bits of x = m 2**e, m in [0.5, 1), less `shift`
 * from e (100 for a subnormal scaled by 2**100, else 0): m doubled (and e lowered) when m <=
 * sqrt(1/2), log(1 + (m - 1)) = P / Q, plus e log 2 in one fused step. */
static INLINE float log_f32np_core(uint32_t bits, float shift) {
    float e = (float)((int32_t)(bits >> 23) - 126) - shift;
    float m = bits_to_f32((bits & 0x7fffffu) | (126u << 23));
    const uint32_t low = -(uint32_t)(m <= 0.707106781186547524400844362104849039f);
    m = select_f32(low, m + m, m);
    e = select_f32(low, e - 1.0f, e);
    m = m - 1.0f;
    float num = __builtin_fmaf(2.589979117907922693523e-02f, m, 3.808837741388407920751e-01f);
    num = __builtin_fmaf(num, m, 1.480000633576506585156e+00f);
    num = __builtin_fmaf(num, m, 2.112677543073053063722e+00f);
    num = __builtin_fmaf(num, m, 9.999999999999998702752e-01f);
    num = __builtin_fmaf(num, m, 0.0f);
    float den = __builtin_fmaf(5.875095403124574342950e-03f, m, 1.546476374983906719538e-01f);
    den = __builtin_fmaf(den, m, 9.864942958519418960339e-01f);
    den = __builtin_fmaf(den, m, 2.453006071784736363091e+00f);
    den = __builtin_fmaf(den, m, 2.612677543073109236779e+00f);
    den = __builtin_fmaf(den, m, 1.0f);
    return __builtin_fmaf(e, 0.693147180559945309417232121458176568f, num / den);
}

/* NumPy's np.log of a float32 (see log_f32np_core); a subnormal x is scaled by 2**100 first.
 * 0: -inf; inf: inf; NaN: NaN (0x7fc00000); x < 0: -NaN (0xffc00000). */
static INLINE float log_f32np(float x_in) {
    const uint32_t negative = -(uint32_t)(x_in < 0.0f), zero = -(uint32_t)(x_in == 0.0f);
    const uint32_t inf = -(uint32_t)(x_in == __builtin_inff()), nan = -(uint32_t)(x_in != x_in);
    const float x = bits_to_f32(f32_to_bits(x_in) & ~negative);
    const uint32_t tiny = -(uint32_t)(x < 0x1p-126f);
    const uint32_t bits = f32_to_bits(select_f32(tiny, x * 0x1p100f, x));
    const float poly = log_f32np_core(bits, select_f32(tiny, 100.0f, 0.0f));
    uint32_t out = (f32_to_bits(poly) & ~nan) | (0x7fc00000u & nan);
    out = (out & ~negative) | (0xffc00000u & negative);
    out = (out & ~zero) | (0xff800000u & zero);
    return bits_to_f32((out & ~inf) | (0x7f800000u & inf));
}

/* log_f32np of a positive, normal, finite x (the bits of log_f32np, whose special cases it
 * leaves out). */
static INLINE float log_f32np_normal(float x) { return log_f32np_core(f32_to_bits(x), 0.0f); }

/* The functions of math_loop. */
enum { MATH_LOG, MATH_NEG_LOG, MATH_EXP, MATH_LOG1P, MATH_NEG_LOG_F32 };
/* The functions of math32_loop (float32 in, float32 out). */
enum { MATH32_LOG, MATH32_EXP };

/* ------------------------------------------------------ categorical scans */

/* A 2-D float buffer (rows, classes) and a 1-D int buffer of `rows` labels. */
typedef struct {
    Py_buffer pred, labels;
    kind_t pred_kind, label_kind;
    Py_ssize_t rows, classes;
} batch_t;

static int get_batch(PyObject *pred, PyObject *labels, batch_t *b) {
    if (!get_view(pred, &b->pred, 0)) return 0;
    if (!get_view(labels, &b->labels, 0)) { PyBuffer_Release(&b->pred); return 0; }
    b->pred_kind = buffer_kind(&b->pred);
    b->label_kind = buffer_kind(&b->labels);
    if (b->pred.ndim == 2 && b->labels.ndim == 1 &&
        (b->pred_kind == K_F32 || b->pred_kind == K_F64) &&
        (b->label_kind == K_I32 || b->label_kind == K_I64) &&
        b->pred.shape[0] == b->labels.shape[0] && b->pred.shape[1] > 0) {
        b->rows = b->pred.shape[0];
        b->classes = b->pred.shape[1];
        return 1;
    }
    PyBuffer_Release(&b->pred);
    PyBuffer_Release(&b->labels);
    return 0;
}

static void release_batch(batch_t *b) {
    PyBuffer_Release(&b->pred);
    PyBuffer_Release(&b->labels);
}

static INLINE int64_t label_at(const void *labels, const int l64, Py_ssize_t i) {
    return l64 ? ((const int64_t *)labels)[i] : (int64_t)((const int32_t *)labels)[i];
}

/* Rows 0 .. copy_from-1 can be read in whole vectors without passing the end of the buffer. */
static inline Py_ssize_t copy_from(Py_ssize_t n, Py_ssize_t k, Py_ssize_t w) {
    Py_ssize_t padded = (k + w - 1) / w * w;
    return n * k >= padded ? (n * k - padded) / k + 1 : 0;
}

/* What a scan of a batch found. */
typedef struct {
    Py_ssize_t far_a, far_b, zeros, ones;
    Py_ssize_t *unsure, n_unsure, unsure_cap;
    Py_ssize_t guarded; /* values the loss's guard changed (sparse_loss) */
} scan_t;

/* Appends row i to the rows the caller decides; 0 when out of memory. */
static int add_unsure(scan_t *r, Py_ssize_t i) {
    if (r->n_unsure == r->unsure_cap) {
        Py_ssize_t cap = r->unsure_cap ? 2 * r->unsure_cap : 16;
        Py_ssize_t *grown = realloc(r->unsure, (size_t)cap * sizeof(Py_ssize_t));
        if (!grown) return 0;
        r->unsure = grown;
        r->unsure_cap = cap;
    }
    r->unsure[r->n_unsure++] = i;
    return 1;
}

/* The parameters of a sparse scan. */
typedef struct {
    const void *pred, *labels;
    int pred_f64, labels_i64, picked_f64;
    Py_ssize_t n, k;
    long long ignore; /* -1 for none: never a class index */
    void *picked;     /* float64, or float32 for float32 rows */
    int64_t *ranks;   /* NULL, or where the true classes' ranks go */
    double tol_a, tol_b, margin;
    int neg_log;      /* write -log p[y] to picked (float64) instead of p[y] */
    const struct loss_s *loss; /* NULL, or write each row's loss to picked (see sparse_loss) */
} scan_args_t;

/* The guards of sparse_loss (conventions.GUARDS, in that order). */
enum { GUARD_NONE, GUARD_CLIP, GUARD_ADD, GUARD_CLIP_ADD, GUARD_FLOOR, GUARD_LOG_CLAMP, N_GUARDS };

/* A convention's loss of a row, as sparse_loss computes it. */
typedef struct loss_s {
    int guard;                /* GUARD_... */
    int after;                /* a log-softmax of the guarded values (renormalize "after") */
    int f32;                  /* float32 arithmetic (else float64) */
    double eps, hi, floor;    /* the guard's epsilon, 1 - eps and log floor, in that dtype */
} loss_t;

/* Values per block of rows of the log-softmax pass (see after_loop). */
#define AFTER_BLOCK 4096

/* Rows are scanned CHUNK at a time: the row loop writes each row's sum and p[y]; then a
 * vector pass over the chunk counts the rows far from summing to 1, lists the ones within
 * `margin` of a tolerance, and counts the p[y] that are 0 or 1. */
#define CHUNK 256

/* ------------------------------------------------------ instruction sets */

/* The loops, compiled once per instruction set (see _kernels_loops.h); the fastest one the
 * CPU has is chosen at import, and `use_isa` switches (for tests and benchmarks). */
typedef struct {
    const char *name;
    int (*supported)(void);
    void (*acc_add_all)(acc_t *, const double *, Py_ssize_t);
    void (*math_loop)(const double *, double *, Py_ssize_t, int);
    void (*math32_loop)(const float *, float *, Py_ssize_t, int);
    int (*scan_loop)(const scan_args_t *, scan_t *);
    int (*after_loop)(const scan_args_t *, scan_t *, int);
    int (*rank_loop)(const void *, int, const void *, int, Py_ssize_t, Py_ssize_t, int64_t *);
    void (*weigh_loop)(const double *, Py_ssize_t, Py_ssize_t, const int64_t *, const int64_t *,
                       const double *, Py_ssize_t, double *, Py_ssize_t);
} isa_t;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define K_X86
#pragma GCC push_options
#pragma GCC target("avx512f,fma,popcnt")
#define ISA avx512
#define VBYTES 64
#include "_kernels_loops.h"
#undef ISA
#undef VBYTES
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,popcnt")
#define ISA avx2
#define VBYTES 32
#include "_kernels_loops.h"
#undef ISA
#undef VBYTES
#pragma GCC pop_options
#undef K_X86

static int has_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("popcnt");
}
static int has_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("popcnt");
}
#endif

#define ISA baseline
#define VBYTES 16
#include "_kernels_loops.h"
#undef ISA
#undef VBYTES

static int always(void) { return 1; }

#define ISA_ENTRY(name, test)                                                               \
    {#name, test, acc_add_all_##name, math_loop_##name, math32_loop_##name, scan_loop_##name,  \
     after_loop_##name, rank_loop_##name, weigh_loop_##name}
static const isa_t isas[] = {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    ISA_ENTRY(avx512, has_avx512),
    ISA_ENTRY(avx2, has_avx2),
#endif
    ISA_ENTRY(baseline, always),
};
#define N_ISAS ((int)(sizeof(isas) / sizeof(isas[0])))
static const isa_t *isa = &isas[N_ISAS - 1];
/* The fastest set allowed: STREAMMETRIC_MAX_ISA (read at import) leaves out the faster ones, so
 * that a machine runs as one without them (e.g. a CPU without AVX-512) would. */
static int first_allowed = 0;

static int available(int i) { return i >= first_allowed && isas[i].supported(); }

/* ----------------------------------------------------------- entry points */

PyDoc_STRVAR(exact_sum_doc,
"exact_sum(values) -> (units, pos_inf, neg_inf, nan) or None\n\n"
"The exact sum of the finite values of a C-contiguous float64 buffer as an integer number of\n"
"2**-1074 units, and the counts of +inf, -inf and NaN. None for any other buffer.");

static PyObject *exact_sum(PyObject *Py_UNUSED(self), PyObject *obj) {
    Py_buffer view;
    if (!get_view(obj, &view, 0)) Py_RETURN_NONE;
    if (buffer_kind(&view) != K_F64) { PyBuffer_Release(&view); Py_RETURN_NONE; }
    const double *x = (const double *)view.buf;
    Py_ssize_t n = view.len / 8;
    acc_t a;
    memset(&a, 0, sizeof(a));
    Py_BEGIN_ALLOW_THREADS
    isa->acc_add_all(&a, x, n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *units = acc_to_int(&a);
    if (!units) return NULL;
    return Py_BuildValue("Nnnn", units, a.pos_inf, a.neg_inf, a.nan);
}

/* out = f(values) for math_loop's `op`: True, or False (nothing written) unless both are
 * C-contiguous float64 buffers of one length (out writable; it may be values). */
static PyObject *math_values(PyObject *values_obj, PyObject *out_obj, int op) {
    Py_buffer values, out;
    if (!get_view(values_obj, &values, 0)) Py_RETURN_FALSE;
    if (!get_view(out_obj, &out, 1)) { PyBuffer_Release(&values); Py_RETURN_FALSE; }
    int ok = buffer_kind(&values) == K_F64 && buffer_kind(&out) == K_F64 && values.len == out.len;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        isa->math_loop((const double *)values.buf, (double *)out.buf, values.len / 8, op);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&values);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(log_doc,
"log(values, out, negate) -> bool\n\n"
"Writes log(values) (or -log(values) if `negate`) to `out`, both C-contiguous float64 buffers\n"
"of the same length (`out` may be `values`): the same bits on every CPU, below 0.502 ulp from\n"
"the true value. False (nothing written) for any other buffers.");

static PyObject *log_values(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *values, *out;
    int negate;
    if (!PyArg_ParseTuple(args, "OOp", &values, &out, &negate)) return NULL;
    return math_values(values, out, negate ? MATH_NEG_LOG : MATH_LOG);
}

PyDoc_STRVAR(exp_doc,
"exp(values, out) -> bool\n\n"
"Writes exp(values) to `out`, as `log` does: the same bits on every CPU, below 0.51 ulp.");

/* math_values of the arguments (values, out). */
static PyObject *math_args(PyObject *args, int op) {
    PyObject *values, *out;
    if (!PyArg_ParseTuple(args, "OO", &values, &out)) return NULL;
    return math_values(values, out, op);
}

static PyObject *exp_values(PyObject *Py_UNUSED(self), PyObject *args) {
    return math_args(args, MATH_EXP);
}

PyDoc_STRVAR(log1p_doc,
"log1p(values, out) -> bool\n\n"
"Writes log(1 + values) to `out`, as `log` does: the same bits on every CPU, below 0.502 ulp.");

static PyObject *log1p_values(PyObject *Py_UNUSED(self), PyObject *args) {
    return math_args(args, MATH_LOG1P);
}

/* out = f(values) for math32_loop's `op`: as math_values, for float32 buffers. */
static PyObject *math32_values(PyObject *args, int op) {
    PyObject *values_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OO", &values_obj, &out_obj)) return NULL;
    Py_buffer values, out;
    if (!get_view(values_obj, &values, 0)) Py_RETURN_FALSE;
    if (!get_view(out_obj, &out, 1)) { PyBuffer_Release(&values); Py_RETURN_FALSE; }
    int ok = buffer_kind(&values) == K_F32 && buffer_kind(&out) == K_F32 && values.len == out.len;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        isa->math32_loop((const float *)values.buf, (float *)out.buf, values.len / 4, op);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&values);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(log32_doc,
"log32(values, out) -> bool\n\n"
"Writes log(values) to `out`, both C-contiguous float32 buffers of the same length (`out` may be\n"
"`values`), with the bits np.log gives on x86-64 CPUs with AVX2 and FMA or AVX-512 (its\n"
"algorithm, ported). False (nothing written) for any other buffers.");

static PyObject *log32_values(PyObject *Py_UNUSED(self), PyObject *args) {
    return math32_values(args, MATH32_LOG);
}

PyDoc_STRVAR(exp32_doc,
"exp32(values, out) -> bool\n\n"
"Writes exp(values) to `out`, as log32 does for log: np.exp's bits on such CPUs.");

static PyObject *exp32_values(PyObject *Py_UNUSED(self), PyObject *args) {
    return math32_values(args, MATH32_EXP);
}

/* What sparse_scan (and sparse_loss, with the count of guarded values) return from a scan:
 * None for a dirty batch (clean 0), MemoryError (clean -1), else the counts and the unsure
 * rows as a list. Frees r->unsure. */
static PyObject *scan_result(scan_t *r, int clean, int with_guarded) {
    if (clean <= 0) {
        free(r->unsure);
        if (clean < 0) return PyErr_NoMemory();
        Py_RETURN_NONE;
    }
    PyObject *rows = PyList_New(r->n_unsure);
    for (Py_ssize_t i = 0; rows && i < r->n_unsure; i++) {
        PyObject *row = PyLong_FromSsize_t(r->unsure[i]);
        if (!row) { Py_CLEAR(rows); break; }
        PyList_SET_ITEM(rows, i, row);
    }
    free(r->unsure);
    if (!rows) return NULL;
    return with_guarded
               ? Py_BuildValue("nnnnnN", r->far_a, r->far_b, r->zeros, r->ones, r->guarded, rows)
               : Py_BuildValue("nnnnN", r->far_a, r->far_b, r->zeros, r->ones, rows);
}

PyDoc_STRVAR(sparse_scan_doc,
"sparse_scan(pred, labels, picked, ignore_index, tol_a, tol_b, margin, ranks=None,\n"
"            neg_log=False)\n"
"    -> (far_a, far_b, zeros, ones, unsure_rows) or None\n\n"
"One pass over a batch of class indices `labels` (n,) int32/int64 and probabilities `pred`\n"
"(n, k) float32/float64. None unless the batch is clean: every value in [0, 1] and every label\n"
"a class index other than `ignore_index` (None for no such index). Otherwise writes p[i, y_i]\n"
"to `picked` (a writable float32/float64 buffer of n; float64 unless pred is float32) and\n"
"counts the rows with |sum - 1| > tol_a and > tol_b (float64 sums), the true-class\n"
"probabilities 0 and 1. Rows whose distance is within `margin` of a tolerance are not counted\n"
"but listed: summed in another order they might fall on the other side, so the caller decides.\n"
"With `ranks` (a writable int64 buffer of (n, 2)), also writes what class_ranks would, in the same\n"
"pass (unspecified if the answer is None). With `neg_log` (float64 `picked` only), writes\n"
"-log p[i, y_i] instead, the bits log(values, out, True) gives (unspecified if None).");

static PyObject *sparse_scan(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *pred_obj, *label_obj, *picked_obj, *ignore_obj, *ranks_obj = Py_None;
    scan_args_t a;
    a.neg_log = 0;
    a.loss = NULL;
    if (!PyArg_ParseTuple(args, "OOOOddd|Op", &pred_obj, &label_obj, &picked_obj, &ignore_obj,
                          &a.tol_a, &a.tol_b, &a.margin, &ranks_obj, &a.neg_log))
        return NULL;
    a.ignore = -1;
    if (ignore_obj != Py_None) {
        a.ignore = PyLong_AsLongLong(ignore_obj);
        if (a.ignore == -1 && PyErr_Occurred()) return NULL;
    }
    batch_t b;
    if (!get_batch(pred_obj, label_obj, &b)) Py_RETURN_NONE;
    Py_buffer out, ranks;
    if (!get_view(picked_obj, &out, 1)) { release_batch(&b); Py_RETURN_NONE; }
    int has_ranks = ranks_obj != Py_None;
    if (has_ranks && !get_view(ranks_obj, &ranks, 1)) {
        PyBuffer_Release(&out);
        release_batch(&b);
        Py_RETURN_NONE;
    }
    kind_t out_kind = buffer_kind(&out);
    if (out.len / out.itemsize != b.rows ||
        !(out_kind == K_F64 || (out_kind == K_F32 && b.pred_kind == K_F32 && !a.neg_log)) ||
        (has_ranks && (buffer_kind(&ranks) != K_I64 || ranks.len != 16 * b.rows)) ||
        b.classes >= INT32_MAX) {
        if (has_ranks) PyBuffer_Release(&ranks);
        PyBuffer_Release(&out);
        release_batch(&b);
        Py_RETURN_NONE;
    }
    a.pred = b.pred.buf;
    a.labels = b.labels.buf;
    a.pred_f64 = b.pred_kind == K_F64;
    a.labels_i64 = b.label_kind == K_I64;
    a.picked_f64 = out_kind == K_F64;
    a.n = b.rows;
    a.k = b.classes;
    a.picked = out.buf;
    a.ranks = has_ranks ? (int64_t *)ranks.buf : NULL;
    scan_t r;
    memset(&r, 0, sizeof(r));
    int clean;
    Py_BEGIN_ALLOW_THREADS
    clean = isa->scan_loop(&a, &r);
    Py_END_ALLOW_THREADS
    if (has_ranks) PyBuffer_Release(&ranks);
    PyBuffer_Release(&out);
    release_batch(&b);
    return scan_result(&r, clean, 0);
}

PyDoc_STRVAR(sparse_loss_doc,
"sparse_loss(pred, labels, out, ignore_index, tol_a, tol_b, margin, ranks, guard, after, f32,\n"
"            eps, hi, floor)\n"
"    -> (far_a, far_b, zeros, ones, guarded, unsure_rows) or None\n\n"
"sparse_scan's pass, which also writes each row's loss -log q[y] to `out` (float64, or float32\n"
"with `f32`): q the probabilities after the guard `guard` (an index of conventions.GUARDS:\n"
"none, clip to [eps, hi], add eps, clip then add, floor at eps, or the log clamped at `floor`)\n"
"and, with `after` (not with the log clamp), the log-softmax of the guarded logs (Keras'\n"
"renormalisation of class-index targets) as -((log g[y] - log max g) - log(sum(g / max g))).\n"
"The arithmetic is float32 with `f32` (pred float32; log is log32's), else float64 (log's), in\n"
"the order functional/_ce_core.categorical_rows takes it: its bits, the ratios summed by\n"
"halving (_ce_core.halving_sum). `guarded` counts the values the guard\n"
"changed (those of the true classes; with `after`, every value). None unless the batch is\n"
"clean (as sparse_scan); `out` is unspecified then.");

/* Called once per batch, often of a few rows: its 14 arguments are read without
 * PyArg_ParseTuple (METH_FASTCALL). */
static PyObject *sparse_loss(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 14)
        return PyErr_Format(PyExc_TypeError, "sparse_loss takes 14 arguments (%zd given)", nargs);
    PyObject *pred_obj = args[0], *label_obj = args[1], *out_obj = args[2];
    PyObject *ignore_obj = args[3], *ranks_obj = args[7];
    scan_args_t a;
    loss_t loss;
    a.neg_log = 0;
    a.tol_a = PyFloat_AsDouble(args[4]);
    a.tol_b = PyFloat_AsDouble(args[5]);
    a.margin = PyFloat_AsDouble(args[6]);
    loss.guard = (int)PyLong_AsLong(args[8]);
    loss.after = PyObject_IsTrue(args[9]);
    loss.f32 = PyObject_IsTrue(args[10]);
    loss.eps = PyFloat_AsDouble(args[11]);
    loss.hi = PyFloat_AsDouble(args[12]);
    loss.floor = PyFloat_AsDouble(args[13]);
    if (PyErr_Occurred()) return NULL;
    if (loss.guard < 0 || loss.guard >= N_GUARDS)
        return PyErr_Format(PyExc_ValueError, "unknown guard %d", loss.guard);
    if (loss.after && loss.guard == GUARD_LOG_CLAMP)
        return PyErr_Format(PyExc_ValueError, "a renormalisation after a log clamp is not a ratio");
    a.ignore = -1;
    if (ignore_obj != Py_None) {
        a.ignore = PyLong_AsLongLong(ignore_obj);
        if (a.ignore == -1 && PyErr_Occurred()) return NULL;
    }
    batch_t b;
    if (!get_batch(pred_obj, label_obj, &b)) Py_RETURN_NONE;
    Py_buffer out, ranks;
    if (!get_view(out_obj, &out, 1)) { release_batch(&b); Py_RETURN_NONE; }
    int has_ranks = ranks_obj != Py_None;
    if (has_ranks && !get_view(ranks_obj, &ranks, 1)) {
        PyBuffer_Release(&out);
        release_batch(&b);
        Py_RETURN_NONE;
    }
    kind_t out_kind = buffer_kind(&out);
    /* float32 arithmetic takes float32 rows; float32 out takes float32 arithmetic */
    if (out.len / out.itemsize != b.rows || (out_kind != K_F64 && out_kind != K_F32) ||
        (loss.f32 && b.pred_kind != K_F32) || (out_kind == K_F32 && !loss.f32) ||
        (has_ranks && (buffer_kind(&ranks) != K_I64 || ranks.len != 16 * b.rows)) ||
        b.classes >= INT32_MAX) {
        if (has_ranks) PyBuffer_Release(&ranks);
        PyBuffer_Release(&out);
        release_batch(&b);
        Py_RETURN_NONE;
    }
    a.pred = b.pred.buf;
    a.labels = b.labels.buf;
    a.pred_f64 = b.pred_kind == K_F64;
    a.labels_i64 = b.label_kind == K_I64;
    a.picked_f64 = out_kind == K_F64;
    a.n = b.rows;
    a.k = b.classes;
    a.picked = out.buf;
    a.ranks = has_ranks ? (int64_t *)ranks.buf : NULL;
    a.loss = &loss;
    scan_t r;
    memset(&r, 0, sizeof(r));
    int clean;
    Py_BEGIN_ALLOW_THREADS
    if (loss.after && !has_ranks && a.k <= 128) { /* one pass: the scan in the loss's */
        clean = isa->after_loop(&a, &r, 1);
    } else {
        clean = isa->scan_loop(&a, &r);
        if (clean > 0 && loss.after) clean = isa->after_loop(&a, &r, 0);
    }
    Py_END_ALLOW_THREADS
    if (has_ranks) PyBuffer_Release(&ranks);
    PyBuffer_Release(&out);
    release_batch(&b);
    return scan_result(&r, clean, 1);
}

PyDoc_STRVAR(class_ranks_doc,
"class_ranks(pred, labels, ranks) -> bool\n\n"
"Writes to `ranks` (a writable int64 buffer of (n, 2)) two ranks of each row's true class among\n"
"its scores: #(scores > true score) + #(equal scores at a lower class index), its position when\n"
"the first of equal scores comes first (argmax's order: rank 0 is argmax), and\n"
"#(scores > true score) + #(equal scores at a higher class index), its position when the last\n"
"comes first (the top-k order of MXNet and scikit-learn). False (ranks unspecified) if a score\n"
"is not finite, a label is not a class index, or the buffers are not (n, k) float32/float64\n"
"and (n,) int32/int64.");

static PyObject *class_ranks(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *pred_obj, *label_obj, *rank_obj;
    if (!PyArg_ParseTuple(args, "OOO", &pred_obj, &label_obj, &rank_obj)) return NULL;
    batch_t b;
    if (!get_batch(pred_obj, label_obj, &b)) Py_RETURN_FALSE;
    Py_buffer out;
    if (!get_view(rank_obj, &out, 1)) { release_batch(&b); Py_RETURN_FALSE; }
    int ok = buffer_kind(&out) == K_I64 && out.len == 16 * b.rows && b.classes < INT32_MAX;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        ok = isa->rank_loop(b.pred.buf, b.pred_kind == K_F64, b.labels.buf, b.label_kind == K_I64,
                       b.rows, b.classes, (int64_t *)out.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&out);
    release_batch(&b);
    return PyBool_FromLong(ok);
}

/* ------------------------------------------------------- row identity hashes */

/* The bootstrap's row identities (functional/resample.py): a 64-bit hash of each row's identity,
 * the same on every CPU and platform. mix64 is SplitMix64's finaliser (a bijection of uint64). */
static INLINE uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static int get_u64(PyObject *obj, Py_buffer *view, int writable) {
    if (!get_view(obj, view, writable)) return 0;
    if (view->itemsize != 8 || view->ndim != 1) {
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(hash_ints_doc,
"hash_ints(values, key, out) -> bool\n\nout[i] = mix64(values[i] + key) for 8-byte integers (int64 or\n"
"uint64 bits, 1-D contiguous; out likewise, of the same length). False if the buffers do not fit.");

static PyObject *hash_ints(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *values_obj, *out_obj;
    unsigned long long key;
    if (!PyArg_ParseTuple(args, "OKO", &values_obj, &key, &out_obj)) return NULL;
    Py_buffer values, out;
    if (!get_u64(values_obj, &values, 0)) Py_RETURN_FALSE;
    if (!get_u64(out_obj, &out, 1)) { PyBuffer_Release(&values); Py_RETURN_FALSE; }
    int ok = values.len == out.len;
    if (ok) {
        const uint64_t *v = values.buf;
        uint64_t *o = out.buf, k = (uint64_t)key;
        Py_ssize_t n = values.len / 8;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) o[i] = mix64(v[i] + k);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&values);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(weigh_cells_doc,
"weigh_cells(values, groups, buckets, across, out, entries, replicates) -> bool\n\n"
"out[e, groups[c], r] += values[c, e] * across[buckets[c], r] for every cell c, entry e and\n"
"replicate r: values (n, entries) float64, groups and buckets (n,) int64, across (B,\n"
"replicates) float64, out (entries, G, replicates) float64, all C-contiguous. Each product and\n"
"sum must be an integer times a common scale below 2**53 (the caller's slices): then any\n"
"order gives the same bits. False (nothing written) if the buffers do not fit or a group or\n"
"bucket is out of range. Releases the GIL.");

static PyObject *weigh_cells(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *objs[5];
    Py_ssize_t entries, replicates;
    if (!PyArg_ParseTuple(args, "OOOOOnn", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4],
                          &entries, &replicates))
        return NULL;
    const kind_t kinds[5] = {K_F64, K_I64, K_I64, K_F64, K_F64};
    Py_buffer views[5];
    int viewed = 0, ok = entries > 0 && replicates > 0;
    for (; ok && viewed < 5; viewed++) {
        if (!get_view(objs[viewed], &views[viewed], viewed == 4)) break;
        ok = buffer_kind(&views[viewed]) == kinds[viewed];
    }
    ok = ok && viewed == 5;
    Py_ssize_t n = 0, buckets = 0, size = 0;
    if (ok) {
        n = views[1].len / 8;
        buckets = views[3].len / 8 / replicates;
        size = views[4].len / 8 / (entries * replicates);
        ok = views[0].len / 8 == n * entries && views[2].len / 8 == n &&
             views[3].len / 8 == buckets * replicates &&
             views[4].len / 8 == size * entries * replicates;
    }
    if (ok) {
        const int64_t *groups = views[1].buf, *bucket = views[2].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t c = 0; c < n && ok; c++) /* every cell in range before any add */
            ok = (uint64_t)groups[c] < (uint64_t)size && (uint64_t)bucket[c] < (uint64_t)buckets;
        if (ok)
            isa->weigh_loop(views[0].buf, n, entries, groups, bucket, views[3].buf, replicates,
                            views[4].buf, size);
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < viewed; i++) PyBuffer_Release(&views[i]);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(group_counts_doc,
"group_counts(codes, mask, out) -> bool\n\nout[codes[i]] += 1 for each i (mask None), or += mask[i]\n"
"(a bool per row): the rows, or the true rows, of each group, added to out (int64), or to each\n"
"array of a tuple of up to 8 (in one pass over the rows). codes int32 or int64. False, nothing\n"
"changed, if the buffers do not fit or a code is outside 0 .. len(out) - 1 (of each out).");

#define COUNTS_OUTS 8

/* o[j][c[i]] += 1 (m NULL) or m[i] != 0, for every row i and out j < k: one array's loop
 * apart, as NumPy's would be, and every out's counts of a row together. */
#define COUNT_ROWS(name, code_t)                                                              \
    static void name(const code_t *c, const unsigned char *m, Py_ssize_t n, int64_t **o,     \
                     Py_ssize_t k) {                                                          \
        if (k == 1) {                                                                         \
            int64_t *out = o[0];                                                              \
            if (m) for (Py_ssize_t i = 0; i < n; i++) out[c[i]] += m[i] != 0;                 \
            else for (Py_ssize_t i = 0; i < n; i++) out[c[i]] += 1;                           \
            return;                                                                           \
        }                                                                                     \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            const int64_t g = c[i], add = m ? m[i] != 0 : 1;                                  \
            for (Py_ssize_t j = 0; j < k; j++) o[j][g] += add;                                \
        }                                                                                     \
    }
COUNT_ROWS(count_rows_i64, int64_t)
COUNT_ROWS(count_rows_i32, int32_t)

static PyObject *group_counts(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *codes_obj, *mask_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOO", &codes_obj, &mask_obj, &out_obj)) return NULL;
    const int many = PyTuple_Check(out_obj);
    const Py_ssize_t k = many ? PyTuple_GET_SIZE(out_obj) : 1;
    if (k < 1 || k > COUNTS_OUTS) Py_RETURN_FALSE;
    Py_buffer codes, mask, out[COUNTS_OUTS];
    if (!get_view(codes_obj, &codes, 0)) Py_RETURN_FALSE;
    Py_ssize_t viewed = 0, size = PY_SSIZE_T_MAX;
    int ok = buffer_kind(&codes) == K_I32 || buffer_kind(&codes) == K_I64;
    for (; ok && viewed < k; viewed++) {
        if (!get_view(many ? PyTuple_GET_ITEM(out_obj, viewed) : out_obj, &out[viewed], 1)) break;
        ok = buffer_kind(&out[viewed]) == K_I64;
        size = out[viewed].len / 8 < size ? out[viewed].len / 8 : size;
    }
    ok = ok && viewed == k;
    const int masked = mask_obj != Py_None;
    int mask_viewed = 0;
    const Py_ssize_t n = codes.itemsize ? codes.len / codes.itemsize : 0;
    if (ok && masked) {
        mask_viewed = get_view(mask_obj, &mask, 0);
        const char *f = mask_viewed && mask.format ? mask.format : "B";
        ok = mask_viewed && mask.itemsize == 1 && f[0] == '?' && f[1] == 0 && mask.len == n;
    }
    if (ok) {
        const int c64 = buffer_kind(&codes) == K_I64;
        int64_t *o[COUNTS_OUTS];
        for (Py_ssize_t j = 0; j < k; j++) o[j] = out[j].buf;
        const unsigned char *m = masked ? (const unsigned char *)mask.buf : NULL;
        Py_BEGIN_ALLOW_THREADS
        /* every code in range, before adding any (the unsigned maximum: a negative code is
         * beyond any size) */
        uint64_t top = 0;
        if (c64) {
            const uint64_t *c = codes.buf;
            for (Py_ssize_t i = 0; i < n; i++) top = c[i] > top ? c[i] : top;
        } else {
            const int32_t *c = codes.buf;
            for (Py_ssize_t i = 0; i < n; i++) {
                const uint64_t g = (uint64_t)(int64_t)c[i];
                top = g > top ? g : top;
            }
        }
        ok = n == 0 || top < (uint64_t)size;
        if (ok) { /* one pass: a row's counts in every out (their lines fetched together) */
            if (c64) count_rows_i64(codes.buf, m, n, o, k);
            else count_rows_i32(codes.buf, m, n, o, k);
        }
        Py_END_ALLOW_THREADS
    }
    if (mask_viewed) PyBuffer_Release(&mask);
    for (Py_ssize_t j = 0; j < viewed; j++) PyBuffer_Release(&out[j]);
    PyBuffer_Release(&codes);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(hash_strings_doc,
"hash_strings(offsets, data, key, out) -> bool\n\nout[i] = a 64-bit hash of the bytes\n"
"data[offsets[i]:offsets[i + 1]] seeded by key (Arrow string/binary layout: int32 or int64\n"
"offsets, n + 1 of them; out uint64, n). False if the buffers do not fit or an offset is out\n"
"of range.");

static PyObject *hash_strings(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *offsets_obj, *data_obj, *out_obj;
    unsigned long long key;
    if (!PyArg_ParseTuple(args, "OOKO", &offsets_obj, &data_obj, &key, &out_obj)) return NULL;
    Py_buffer offsets, data, out;
    if (!get_view(offsets_obj, &offsets, 0)) Py_RETURN_FALSE;
    if (!get_view(data_obj, &data, 0)) { PyBuffer_Release(&offsets); Py_RETURN_FALSE; }
    if (!get_u64(out_obj, &out, 1)) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&offsets);
        Py_RETURN_FALSE;
    }
    kind_t kind = buffer_kind(&offsets);
    Py_ssize_t n = out.len / 8;
    int wide = kind == K_I64;
    int ok = (kind == K_I32 || kind == K_I64) && offsets.len == (n + 1) * offsets.itemsize;
    if (ok) {
        const unsigned char *bytes = data.buf;
        uint64_t *o = out.buf;
        Py_ssize_t size = data.len;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n && ok; i++) {
            int64_t start = wide ? ((const int64_t *)offsets.buf)[i] : ((const int32_t *)offsets.buf)[i];
            int64_t end = wide ? ((const int64_t *)offsets.buf)[i + 1] : ((const int32_t *)offsets.buf)[i + 1];
            if (start < 0 || end < start || end > size) { ok = 0; break; }
            /* 8 bytes at a time (little-endian words; the tail zero-padded), then the length */
            uint64_t h = mix64((uint64_t)key ^ 0x9e3779b97f4a7c15ULL);
            const unsigned char *p = bytes + start;
            int64_t len = end - start;
            for (; len >= 8; len -= 8, p += 8) {
                uint64_t w = 0;
                for (int b = 7; b >= 0; b--) w = (w << 8) | p[b];
                h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
            }
            uint64_t w = 0;
            for (int b = (int)len - 1; b >= 0; b--) w = (w << 8) | p[b];
            h = mix64(h ^ w);
            o[i] = mix64(h + (uint64_t)(end - start));
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(isa_doc, "isa() -> str\n\nThe instruction set the loops use: 'avx512', 'avx2' or 'baseline'.");

static PyObject *isa_name(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args)) {
    return PyUnicode_FromString(isa->name);
}

PyDoc_STRVAR(isas_doc, "isas() -> list[str]\n\nThe instruction sets this CPU can use (up to STREAMMETRIC_MAX_ISA), fastest first.");

static PyObject *isa_names(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args)) {
    PyObject *names = PyList_New(0);
    for (int i = 0; names && i < N_ISAS; i++) {
        if (!available(i)) continue;
        PyObject *name = PyUnicode_FromString(isas[i].name);
        if (!name || PyList_Append(names, name) < 0) Py_CLEAR(names);
        Py_XDECREF(name);
    }
    return names;
}

PyDoc_STRVAR(use_isa_doc,
"use_isa(name) -> None\n\nUse the loops for instruction set `name` (one of isas()), for tests and\n"
"benchmarks: every set gives the same results. Not thread-safe: call it while no kernel runs.");

static PyObject *use_isa(PyObject *Py_UNUSED(self), PyObject *arg) {
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    for (int i = 0; i < N_ISAS; i++) {
        if (strcmp(isas[i].name, name) == 0 && available(i)) {
            isa = &isas[i];
            Py_RETURN_NONE;
        }
    }
    return PyErr_Format(PyExc_ValueError, "instruction set %R is not available here", arg);
}

/* ---------------------------------------------------- grouped exact sums */

/* GroupSums: one exact accumulator per group code 0 .. size-1, kept in C across batches, so a
 * batch of values with their rows' group codes is summed into every group in one pass (a
 * segmented exact sum) and Python ints are made only when a group's sum is read. Integer
 * arithmetic only: the same bits on every CPU, whatever the order of the values. Each add puts
 * less than 2**32 into a digit, so the digits are normalised every 2**30 adds.
 *
 * Groups are kept compactly. A group's values (cross-entropies, absolute errors) nearly always
 * lie in a narrow range of exponents, so their sum needs a few adjacent digits of the 70: a
 * group is a record of WINDOW digits base .. base+WINDOW-1 (the lower ones normalised into
 * [0, 2**32) as an acc_t's, the top one signed) and its counts of inf and NaN, 88 bytes against
 * an acc_t's 584. The base is set by the group's first nonzero finite value (two digits below
 * the value's lowest), and a value fits if its three digits j .. j+2 lie in base .. base+WINDOW-2:
 * the top digit then only takes carries, at most the number of values added (it never
 * overflows), so sums growing never force anything. A value that does not fit "promotes" the
 * group: its window moves into a full acc_t of a side array (`full`, index in d[0]), which takes
 * all of the group's later values; its counts stay in the record. Every operation gives the
 * bits of one acc_t per group (the code before this: a window is such an accumulator whose
 * other digits are 0). */
#define GROUP_NORMALISE_EVERY ((int64_t)1 << 30)
#define WINDOW 7
#define WINDOW_REACH (WINDOW - 4)    /* a value at digit j fits if 0 <= j - base <= this */
#define BASE_EMPTY (-(1 << 30))      /* no window yet (every digit 0); far below any j - ... */
#define BASE_FULL (-(1 << 29))       /* promoted: d[0] is the index in `full` (... so
                                      * j - base > WINDOW_REACH: one test in the hot loop) */

typedef struct {
    int64_t d[WINDOW]; /* digits base .. base+WINDOW-1, or d[0] = the full accumulator */
    Py_ssize_t pos_inf, neg_inf, nan;
    int32_t base;
} group_t;

typedef struct {
    PyObject_HEAD
    group_t *grp;
    Py_ssize_t size, cap;
    acc_t *full; /* the promoted groups' accumulators (raw allocator: grown GIL released) */
    Py_ssize_t n_full, cap_full;
    int64_t since; /* adds since the digits were last normalised */
    int busy;      /* a call is running with the GIL released */
    int readers;   /* `ratios` calls reading with the GIL released (any number at once) */
} GroupSums;

/* Room for groups 0 .. size - 1 (the GIL held: it may allocate); the new groups are set empty
 * by `group_sums_open`, which `group_sums_reserve` calls and a caller that releases the GIL
 * may call without it (with 100,000 groups, 9 MB of a unit's fresh accumulators). */
static int group_sums_room(GroupSums *s, Py_ssize_t size) {
    if (size <= s->cap) return 1;
    {
        Py_ssize_t cap = s->cap ? s->cap : 16;
        while (cap < size) cap = cap > PY_SSIZE_T_MAX / 2 ? size : 2 * cap;
        if ((size_t)cap > (size_t)PY_SSIZE_T_MAX / sizeof(group_t)) { PyErr_NoMemory(); return 0; }
        group_t *grp = PyMem_Malloc((size_t)cap * sizeof(group_t));
        if (!grp) { PyErr_NoMemory(); return 0; }
        if (s->size) memcpy(grp, s->grp, (size_t)s->size * sizeof(group_t));
        PyMem_Free(s->grp);
        s->grp = grp;
        s->cap = cap;
    }
    return 1;
}

/* Groups s->size .. size - 1 (within the room made) set empty, and counted. */
static void group_sums_open(GroupSums *s, Py_ssize_t size) {
    if (size <= s->size) return;
    memset(s->grp + s->size, 0, (size_t)(size - s->size) * sizeof(group_t));
    for (Py_ssize_t g = s->size; g < size; g++) s->grp[g].base = BASE_EMPTY;
    s->size = size;
}

static int group_sums_reserve(GroupSums *s, Py_ssize_t size) {
    if (size <= s->size) return 1;
    if (!group_sums_room(s, size)) return 0;
    group_sums_open(s, size);
    return 1;
}

/* Window digits 0..WINDOW-2 in [0, 2**32), the top one signed (as acc_normalise). */
static void window_normalise(int64_t *d) {
    int64_t carry = 0;
    for (int k = 0; k < WINDOW; k++) {
        int64_t v = d[k] + carry;
        carry = v >> 32;
        d[k] = k < WINDOW - 1 ? v - carry * ((int64_t)1 << 32) : v;
    }
}

/* Adds v * 2**r units to d[0], d[1], d[2] (v signed, r < 32): as acc_add_signed. */
static inline void digits_add_signed(int64_t *d, int64_t v, unsigned r) {
    __int128 t = (__int128)v * ((__int128)1 << r); /* |t| < 2**95 */
    d[0] += (int64_t)(uint32_t)t;
    d[1] += (int64_t)(uint32_t)(t >> 32);
    d[2] += (int64_t)(t >> 64);
}

/* Group r's finite sum as an acc_t's digits (as they are, not normalised; counts not set). */
static void group_expand(const GroupSums *s, const group_t *r, acc_t *a) {
    if (r->base == BASE_FULL) {
        memcpy(a->d, s->full[r->d[0]].d, sizeof a->d);
        return;
    }
    memset(a->d, 0, sizeof a->d);
    if (r->base >= 0)
        for (int k = 0; k < WINDOW; k++) a->d[r->base + k] = r->d[k];
}

/* A new full accumulator (digits 0) in s's side array: its index, or -1 out of memory (no
 * exception set: may run with the GIL released). */
static Py_ssize_t full_new(GroupSums *s) {
    if (s->n_full == s->cap_full) {
        Py_ssize_t cap = s->cap_full ? 2 * s->cap_full : 4;
        if ((size_t)cap > (size_t)PY_SSIZE_T_MAX / sizeof(acc_t)) return -1;
        acc_t *full = PyMem_RawRealloc(s->full, (size_t)cap * sizeof(acc_t));
        if (!full) return -1;
        s->full = full;
        s->cap_full = cap;
    }
    memset(&s->full[s->n_full], 0, sizeof(acc_t));
    return s->n_full++;
}

/* Promotes group r (not promoted) with the digits *a: 0 out of memory (no exception set). */
static int group_promote_to(GroupSums *s, group_t *r, const acc_t *a) {
    const Py_ssize_t i = full_new(s);
    if (i < 0) return 0;
    memcpy(s->full[i].d, a->d, sizeof a->d);
    memset(r->d, 0, sizeof r->d);
    r->d[0] = i;
    r->base = BASE_FULL;
    return 1;
}

static int group_promote(GroupSums *s, group_t *r) {
    acc_t a;
    group_expand(s, r, &a);
    return group_promote_to(s, r, &a);
}

/* Whether the normalised digits *a are a window's at base b: 0 below b, and above the window's
 * top digit only the sign, with that top digit (its signed value) within 2**31 like a carry. */
static int window_fits(const acc_t *a, int b) {
    for (int i = 0; i < b; i++)
        if (a->d[i]) return 0;
    const int top = b + WINDOW - 1;
    if (top == DIGITS - 1) return 1;
    const int negative = a->d[DIGITS - 1] < 0;
    if (a->d[DIGITS - 1] != (negative ? -1 : 0)) return 0;
    for (int i = top + 1; i < DIGITS - 1; i++)
        if (a->d[i] != (negative ? 0xffffffffLL : 0)) return 0;
    return negative ? a->d[top] >= ((int64_t)1 << 31) : a->d[top] < ((int64_t)1 << 31);
}

/* The base of a window for the first value at digit j, or the lowest nonzero digit j of a sum. */
static inline int32_t base_for(int j) {
    const int b = j >= 2 ? j - 2 : 0;
    return b > DIGITS - WINDOW ? DIGITS - WINDOW : b;
}

/* Stores the normalised digits *a as group r's sum (r not promoted): in r's window if they fit
 * at its base (or at the base of their lowest digit, for a group without a window or a sum that
 * moved), else in a full accumulator. 0 out of memory (no exception set). */
static int group_store(GroupSums *s, group_t *r, const acc_t *a) {
    int lo = 0;
    while (lo < DIGITS && a->d[lo] == 0) lo++;
    if (lo == DIGITS) { /* 0: an empty group stays empty */
        memset(r->d, 0, sizeof r->d);
        return 1;
    }
    int b = r->base;
    if (b < 0 || !window_fits(a, b)) {
        b = base_for(lo);
        if (!window_fits(a, b)) return group_promote_to(s, r, a);
    }
    for (int k = 0; k < WINDOW - 1; k++) r->d[k] = a->d[b + k];
    const int top = b + WINDOW - 1;
    r->d[WINDOW - 1] = top == DIGITS - 1 || a->d[DIGITS - 1] >= 0
                           ? a->d[top]
                           : a->d[top] - ((int64_t)1 << 32);
    r->base = b;
    return 1;
}

static void group_sums_normalise(GroupSums *s) {
    for (Py_ssize_t g = 0; g < s->size; g++)
        if (s->grp[g].base >= 0) window_normalise(s->grp[g].d);
    for (Py_ssize_t i = 0; i < s->n_full; i++) acc_normalise(&s->full[i]);
    s->since = 0;
}

static int group_sums_enter(GroupSums *s) {
    if (s->busy || s->readers) {
        PyErr_SetString(PyExc_RuntimeError, "GroupSums is in use by another thread");
        return 0;
    }
    return 1;
}

static PyObject *group_sums_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (!PyArg_ParseTuple(args, ":GroupSums") || (kwargs && PyDict_Size(kwargs))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "GroupSums() takes no arguments");
        return NULL;
    }
    GroupSums *s = (GroupSums *)type->tp_alloc(type, 0);
    if (s) {
        s->grp = NULL;
        s->size = s->cap = 0;
        s->full = NULL;
        s->n_full = s->cap_full = 0;
        s->since = 0;
        s->busy = 0;
    }
    return (PyObject *)s;
}

static void group_sums_dealloc(GroupSums *s) {
    PyMem_Free(s->grp);
    PyMem_RawFree(s->full);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

/* The largest code, or -1 if a code is negative (n > 0). */
static int64_t max_code(const void *codes, int c64, Py_ssize_t n) {
    int64_t top = 0, low = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t c = c64 ? ((const int64_t *)codes)[i] : ((const int32_t *)codes)[i];
        top = c > top ? c : top;
        low = c < low ? c : low;
    }
    return low < 0 ? -1 : top;
}

/* One value into group r, whatever it is (as acc_add_one): 0 out of memory (promoting). */
static inline int group_add_one(GroupSums *s, group_t *r, uint64_t bits) {
    const unsigned e = (unsigned)(bits >> 52) & 0x7ff;
    if (e == 0x7ff) {
        if (bits & SIGNIFICAND) r->nan++;
        else if (bits >> 63) r->neg_inf++;
        else r->pos_inf++;
        return 1;
    }
    const int64_t m = (int64_t)((bits & SIGNIFICAND) | ((uint64_t)(e != 0) << 52));
    if (!m) return 1;
    const int64_t v = bits >> 63 ? -m : m;
    const unsigned shift = (e ? e : 1) - 1;
    const int j = (int)(shift >> 5);
    const int k = j - r->base;
    if ((unsigned)k <= WINDOW_REACH) { /* false for BASE_EMPTY and BASE_FULL */
        digits_add_signed(r->d + k, v, shift & 31);
        return 1;
    }
    if (r->base == BASE_EMPTY) {
        r->base = base_for(j);
        digits_add_signed(r->d + (j - r->base), v, shift & 31);
        return 1;
    }
    if (r->base != BASE_FULL && !group_promote(s, r)) return 0;
    acc_add_signed(&s->full[r->d[0]], v, shift);
    return 1;
}

#define PREFETCH_AHEAD 16

PyDoc_STRVAR(group_sums_add_doc,
"add(values, codes) -> bool\n\n"
"Adds each value of `values` (C-contiguous float64, n) to the sum of its group `codes[i]`\n"
"(C-contiguous int32/int64, n, each >= 0; the groups grow to max(codes) + 1). False (nothing\n"
"added) for any other buffers; ValueError for a negative code.");

static PyObject *group_sums_add(GroupSums *s, PyObject *args) {
    PyObject *values_obj, *codes_obj;
    if (!PyArg_ParseTuple(args, "OO", &values_obj, &codes_obj)) return NULL;
    if (!group_sums_enter(s)) return NULL;
    Py_buffer values, codes;
    if (!get_view(values_obj, &values, 0)) Py_RETURN_FALSE;
    if (!get_view(codes_obj, &codes, 0)) { PyBuffer_Release(&values); Py_RETURN_FALSE; }
    const kind_t ck = buffer_kind(&codes);
    const Py_ssize_t n = values.len / 8;
    int ok = buffer_kind(&values) == K_F64 && (ck == K_I32 || ck == K_I64) &&
             codes.len / codes.itemsize == n;
    if (!ok) {
        PyBuffer_Release(&codes);
        PyBuffer_Release(&values);
        Py_RETURN_FALSE;
    }
    const int c64 = ck == K_I64;
    int64_t top = -1;
    s->busy = 1;
    Py_BEGIN_ALLOW_THREADS /* the codes read, and new groups set empty, without the GIL */
    top = n ? max_code(codes.buf, c64, n) : -1;
    Py_END_ALLOW_THREADS
    s->busy = 0;
    if (n && top < 0) {
        PyBuffer_Release(&codes);
        PyBuffer_Release(&values);
        PyErr_SetString(PyExc_ValueError, "group codes must be >= 0");
        return NULL;
    }
    if (n && !group_sums_room(s, (Py_ssize_t)top + 1)) {
        PyBuffer_Release(&codes);
        PyBuffer_Release(&values);
        return NULL;
    }
    int out_of_memory = 0;
    s->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    if (n) group_sums_open(s, (Py_ssize_t)top + 1);
    const double *x = (const double *)values.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n) { /* the group of a later value: random groups miss caches */
            const int64_t later = c64 ? ((const int64_t *)codes.buf)[i + PREFETCH_AHEAD]
                                      : ((const int32_t *)codes.buf)[i + PREFETCH_AHEAD];
            __builtin_prefetch(&s->grp[later], 1);
            __builtin_prefetch((const char *)&s->grp[later] + 63, 1);
        }
        const int64_t g = c64 ? ((const int64_t *)codes.buf)[i] : ((const int32_t *)codes.buf)[i];
        if (!group_add_one(s, &s->grp[g], f64_to_bits(x[i]))) { out_of_memory = 1; break; }
        if (++s->since >= GROUP_NORMALISE_EVERY) group_sums_normalise(s);
    }
    Py_END_ALLOW_THREADS
    s->busy = 0;
    PyBuffer_Release(&codes);
    PyBuffer_Release(&values);
    if (out_of_memory) return PyErr_NoMemory(); /* the values before the failing one added */
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(group_sums_get_doc,
"get(group) -> (units, pos_inf, neg_inf, nan)\n\n"
"The exact sum of group `group`'s finite values in units of 2**-1074, and its counts of +inf,\n"
"-inf and NaN (all 0 for a group beyond size).");

static PyObject *group_sums_get(GroupSums *s, PyObject *arg) {
    const Py_ssize_t g = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (g == -1 && PyErr_Occurred()) return NULL;
    if (!group_sums_enter(s)) return NULL;
    if (g < 0) {
        PyErr_SetString(PyExc_IndexError, "group codes are >= 0");
        return NULL;
    }
    if (g >= s->size) return Py_BuildValue("iiii", 0, 0, 0, 0);
    const group_t *r = &s->grp[g];
    acc_t a;
    group_expand(s, r, &a);
    acc_normalise(&a); /* the same value, digits in range for acc_to_int */
    PyObject *units = acc_to_int(&a);
    if (!units) return NULL;
    return Py_BuildValue("Nnnn", units, r->pos_inf, r->neg_inf, r->nan);
}

PyDoc_STRVAR(group_sums_json_parts_doc,
"json_parts(codes, counts) -> (mantissas, shifts, special)\n\n"
"For each i, the exact sum of group codes[i] plus counts[i] * 2**1074 units (codes and counts\n"
"C-contiguous int64 of one length, each >= 0; a group beyond size: 0) as its JSON parts:\n"
"mantissas[i] (str, decimal, odd or '0') and shifts[i] (int) with units == int(mantissa) <<\n"
"shift, as ExactSum.to_json writes them; `special`: bytes of int64 (n, 3), each group's counts\n"
"of +inf, -inf and NaN.");

/* The value of normalised `a` (acc_normalise) as (mantissa, shift): a new reference to the odd
 * (or 0) Python int m with value == m * 2**shift, and the shift. */
static PyObject *acc_mantissa(const acc_t *a, long *shift) {
    const int64_t *d = a->d;
    int lo = 0;
    while (lo < DIGITS && d[lo] == 0) lo++;
    *shift = 0;
    if (lo == DIGITS) return PyLong_FromLong(0);
    const int zeros = __builtin_ctzll((uint64_t)d[lo]); /* below 32 but for the top digit */
    *shift = 32L * lo + zeros;
    unsigned char bytes[4 * DIGITS + 4];
    PyObject *x;
    if (d[DIGITS - 1] == 0) { /* >= 0: the unsigned digits lo .. hi */
        int hi = DIGITS - 2;
        while (d[hi] == 0) hi--;
        x = int_from_bytes(bytes, digit_bytes(d, lo, hi, bytes));
    } else { /* the digits lo .. DIGITS-2, then the signed top one: two's complement */
        size_t n = digit_bytes(d, lo, DIGITS - 2, bytes);
        const uint64_t top = (uint64_t)d[DIGITS - 1];
        for (int k = 0; k < 8; k++) bytes[n++] = (top >> (8 * k)) & 0xff;
#if PY_VERSION_HEX >= 0x030D0000
        x = PyLong_FromNativeBytes(bytes, n, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
        x = _PyLong_FromByteArray(bytes, n, 1, 1);
#endif
    }
    if (!x || !zeros) return x;
    PyObject *by = PyLong_FromLong(zeros);
    PyObject *m = by ? PyNumber_Rshift(x, by) : NULL;
    Py_XDECREF(by);
    Py_DECREF(x);
    return m;
}

static PyObject *group_sums_json_parts(GroupSums *s, PyObject *args) {
    PyObject *codes_obj, *counts_obj;
    if (!PyArg_ParseTuple(args, "OO", &codes_obj, &counts_obj)) return NULL;
    if (!group_sums_enter(s)) return NULL;
    Py_buffer cv, nv;
    if (!get_view(codes_obj, &cv, 0)) goto bad;
    if (!get_view(counts_obj, &nv, 0)) { PyBuffer_Release(&cv); goto bad; }
    PyObject *mantissas = NULL, *shifts = NULL, *special = NULL, *out = NULL;
    if (buffer_kind(&cv) != K_I64 || buffer_kind(&nv) != K_I64 || cv.ndim != 1 || nv.ndim != 1 ||
        cv.shape[0] != nv.shape[0]) {
        PyErr_SetString(PyExc_TypeError, "codes and counts must be 1-D int64 of one length");
        goto done;
    }
    const int64_t *codes = (const int64_t *)cv.buf, *counts = (const int64_t *)nv.buf;
    const Py_ssize_t n = cv.shape[0];
    mantissas = PyList_New(n);
    shifts = PyList_New(n);
    special = PyBytes_FromStringAndSize(NULL, n * 3 * (Py_ssize_t)sizeof(int64_t));
    if (!mantissas || !shifts || !special) goto done;
    int64_t *counted = (int64_t *)PyBytes_AS_STRING(special);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (codes[i] < 0 || counts[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "codes and counts must be >= 0");
            goto done;
        }
        acc_t a;
        if (codes[i] < s->size) {
            const group_t *r = &s->grp[codes[i]];
            group_expand(s, r, &a);
            counted[3 * i] = r->pos_inf, counted[3 * i + 1] = r->neg_inf, counted[3 * i + 2] = r->nan;
        } else {
            memset(&a, 0, sizeof a);
            counted[3 * i] = counted[3 * i + 1] = counted[3 * i + 2] = 0;
        }
        acc_normalise(&a);
        if (counts[i]) {
            acc_add_signed(&a, counts[i], 1074);
            acc_normalise(&a);
        }
        long shift;
        PyObject *m = acc_mantissa(&a, &shift);
        PyObject *text = m ? PyObject_Str(m) : NULL;
        Py_XDECREF(m);
        PyObject *at = text ? PyLong_FromLong(shift) : NULL;
        if (!at) { Py_XDECREF(text); goto done; }
        PyList_SET_ITEM(mantissas, i, text);
        PyList_SET_ITEM(shifts, i, at);
    }
    out = PyTuple_Pack(3, mantissas, shifts, special);
done:
    Py_XDECREF(mantissas);
    Py_XDECREF(shifts);
    Py_XDECREF(special);
    PyBuffer_Release(&cv);
    PyBuffer_Release(&nv);
    return out;
bad:
    PyErr_SetString(PyExc_TypeError, "codes and counts must be C-contiguous int64 buffers");
    return NULL;
}

PyDoc_STRVAR(group_sums_add_units_doc,
"add_units(group, units, pos_inf=0, neg_inf=0, nan=0) -> None\n\n"
"Adds an exact sum (a Python int of 2**-1074 units, |units| < 2**2207, and counts of +inf,\n"
"-inf and NaN, each >= 0) to group `group` (>= 0): how a saved state comes back.");

/* `units` (a Python int) as DIGITS 32-bit chunks, little-endian two's complement: a new
 * reference to bytes of 4 * DIGITS, or NULL with OverflowError (beyond any float64 sum). */
static PyObject *units_chunks(PyObject *units) {
    static PyObject *to_bytes, *kwnames, *length, *little;
    if (!to_bytes) {
        to_bytes = PyUnicode_InternFromString("to_bytes");
        kwnames = Py_BuildValue("(s)", "signed");
        length = PyLong_FromSsize_t(4 * DIGITS);
        little = PyUnicode_InternFromString("little");
        if (!to_bytes || !kwnames || !length || !little) {
            Py_CLEAR(to_bytes);
            return NULL;
        }
    }
    PyObject *args[] = {units, length, little, Py_True};
    return PyObject_VectorcallMethod(to_bytes, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
}

/* Adds the exact sum held as chunks `b` (`units_chunks`) and counts of non-finite values to
 * group `g` (< s->size); 0 when out of memory (the group unchanged). */
static int group_add_chunks(GroupSums *s, Py_ssize_t g, const unsigned char *b,
                            Py_ssize_t pos_inf, Py_ssize_t neg_inf, Py_ssize_t nan) {
    group_t *r = &s->grp[g];
    acc_t sum;
    acc_t *a = &sum;
    if (r->base == BASE_FULL)
        a = &s->full[r->d[0]]; /* added to in place */
    else
        group_expand(s, r, &sum);
    acc_normalise(a); /* then each digit takes one chunk below 2**32 */
    for (int j = 0; j < DIGITS; j++) {
        uint32_t v = (uint32_t)b[4 * j] | ((uint32_t)b[4 * j + 1] << 8) |
                     ((uint32_t)b[4 * j + 2] << 16) | ((uint32_t)b[4 * j + 3] << 24);
        a->d[j] += j < DIGITS - 1 ? (int64_t)v : (int64_t)(int32_t)v;
    }
    acc_normalise(a);
    if (a == &sum && !group_store(s, r, a)) return 0;
    r->pos_inf += pos_inf;
    r->neg_inf += neg_inf;
    r->nan += nan;
    return 1;
}

static PyObject *group_sums_add_units(GroupSums *s, PyObject *args) {
    Py_ssize_t g, pos_inf = 0, neg_inf = 0, nan = 0;
    PyObject *units;
    if (!PyArg_ParseTuple(args, "nO!|nnn", &g, &PyLong_Type, &units, &pos_inf, &neg_inf, &nan))
        return NULL;
    if (!group_sums_enter(s)) return NULL;
    if (g < 0 || pos_inf < 0 || neg_inf < 0 || nan < 0) {
        PyErr_SetString(PyExc_ValueError, "the group and the counts must be >= 0");
        return NULL;
    }
    PyObject *raw = units_chunks(units);
    if (!raw) return NULL; /* OverflowError: beyond any float64 sum */
    if (!group_sums_reserve(s, g + 1)) { Py_DECREF(raw); return NULL; }
    const int stored = group_add_chunks(s, g, (const unsigned char *)PyBytes_AS_STRING(raw),
                                        pos_inf, neg_inf, nan);
    Py_DECREF(raw);
    if (!stored) return PyErr_NoMemory(); /* the group unchanged */
    Py_RETURN_NONE;
}

PyDoc_STRVAR(group_sums_add_units_many_doc,
"add_units_many(codes, units) -> None\n\n"
"add_units(codes[i], units[i]) for every i: `codes` C-contiguous int64 (each >= 0), `units` a\n"
"list of as many Python ints (finite exact sums, |units| < 2**2207). Every item is checked\n"
"before any is added (TypeError, ValueError, OverflowError: nothing added).");

static PyObject *group_sums_add_units_many(GroupSums *s, PyObject *args) {
    PyObject *codes_obj, *units;
    if (!PyArg_ParseTuple(args, "OO!", &codes_obj, &PyList_Type, &units)) return NULL;
    if (!group_sums_enter(s)) return NULL;
    Py_buffer view;
    if (!get_view(codes_obj, &view, 0)) {
        PyErr_SetString(PyExc_TypeError, "codes must be a C-contiguous 1-D int64 buffer");
        return NULL;
    }
    if (buffer_kind(&view) != K_I64 || view.ndim != 1) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "codes must be a C-contiguous 1-D int64 buffer");
        return NULL;
    }
    const int64_t *codes = (const int64_t *)view.buf;
    const Py_ssize_t n = view.shape[0];
    PyObject *chunks = NULL;
    if (PyList_GET_SIZE(units) != n) {
        PyErr_SetString(PyExc_ValueError, "one exact sum per code");
        goto fail;
    }
    int64_t top = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (codes[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "the groups must be >= 0");
            goto fail;
        }
        top = codes[i] > top ? codes[i] : top;
    }
    /* every sum's chunks first (a bad one: nothing added) */
    chunks = PyBytes_FromStringAndSize(NULL, n * 4 * DIGITS);
    if (!chunks) goto fail;
    unsigned char *all = (unsigned char *)PyBytes_AS_STRING(chunks);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(units, i);
        if (!PyLong_CheckExact(item)) {
            PyErr_Format(PyExc_TypeError, "units[%zd] must be an int", i);
            goto fail;
        }
        PyObject *raw = units_chunks(item);
        if (!raw) goto fail;
        memcpy(all + i * 4 * DIGITS, PyBytes_AS_STRING(raw), 4 * DIGITS);
        Py_DECREF(raw);
    }
    if (!group_sums_reserve(s, (Py_ssize_t)top + 1)) goto fail;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!group_add_chunks(s, (Py_ssize_t)codes[i], all + i * 4 * DIGITS, 0, 0, 0)) {
            PyErr_NoMemory(); /* groups before i hold their sums: the caller drops the state */
            goto fail;
        }
    Py_DECREF(chunks);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(chunks);
    PyBuffer_Release(&view);
    return NULL;
}

PyDoc_STRVAR(group_sums_merge_doc,
"merge(other, mapping=None) -> None\n\n"
"Adds `other`'s group i into this one's group mapping[i] (mapping: C-contiguous int64 of\n"
"other's size, each >= 0; None: i itself), exactly.");

static PyObject *group_sums_merge(GroupSums *s, PyObject *args) {
    PyObject *other_obj, *mapping_obj = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &other_obj, &mapping_obj)) return NULL;
    if (Py_TYPE(other_obj) != Py_TYPE(s)) {
        PyErr_SetString(PyExc_TypeError, "merge() takes another GroupSums");
        return NULL;
    }
    GroupSums *o = (GroupSums *)other_obj;
    if (!group_sums_enter(s) || !group_sums_enter(o)) return NULL;
    Py_buffer mapping;
    const int64_t *map = NULL;
    if (mapping_obj != Py_None) {
        if (!get_view(mapping_obj, &mapping, 0)) {
            PyErr_SetString(PyExc_TypeError, "mapping must be a C-contiguous int64 buffer");
            return NULL;
        }
        if (buffer_kind(&mapping) != K_I64 || mapping.len / 8 != o->size) {
            PyBuffer_Release(&mapping);
            PyErr_Format(PyExc_ValueError, "mapping must be int64 with one target per group (%zd)",
                         o->size);
            return NULL;
        }
        map = (const int64_t *)mapping.buf;
    }
    const int64_t top = o->size ? (map ? max_code(map, 1, o->size) : (int64_t)o->size - 1) : -1;
    if (o->size && top < 0) {
        if (map) PyBuffer_Release(&mapping);
        PyErr_SetString(PyExc_ValueError, "mapping targets must be >= 0");
        return NULL;
    }
    if (o->size && !group_sums_reserve(s, (Py_ssize_t)top + 1)) {
        if (map) PyBuffer_Release(&mapping);
        return NULL;
    }
    /* A digit of either holds less than 2**32 (since + 1) in magnitude (normalised digits
     * plus less than 2**32 per add since; a window's top digit, which only takes carries,
     * holds at most the number of values added besides). Without a mapping each of s's groups
     * gets one of o's, so s's digits then hold less than 2**32 (s->since + o->since + 2):
     * counted as o->since + 1 more adds, with both normalised first only if that would pass
     * the bound (merging a run's partials then goes over each group's digits once, not three
     * times). A mapping may send several of o's groups to one: o is normalised, and each group
     * added counts as one add. Group by group: a window into an empty group or a window at the
     * same base adds digits; anything else adds the other's expanded digits into the target's
     * full accumulator, or stores the target's sum plus them (group_store: a window if it
     * fits, else promoted). */
    if (map || s->since + (o == s ? s->since : o->since) + 1 >= GROUP_NORMALISE_EVERY) {
        if (o != s) group_sums_normalise(o);
        group_sums_normalise(s);
    }
    const int64_t added = (o == s ? s->since : o->since) + 1;
    int out_of_memory = 0;
    for (Py_ssize_t i = 0; i < o->size && !out_of_memory; i++) {
        group_t *t = &s->grp[map ? map[i] : i];
        const group_t a = o->grp[i]; /* a copy: t may be the same group (o == s) */
        if (a.base >= 0 && (t->base == a.base || t->base == BASE_EMPTY)) {
            if (t->base == BASE_EMPTY) memset(t->d, 0, sizeof t->d);
            for (int k = 0; k < WINDOW; k++) t->d[k] += a.d[k];
            t->base = a.base;
        } else if (a.base != BASE_EMPTY) {
            acc_t x;
            group_expand(o, &a, &x);
            if (t->base == BASE_FULL) {
                acc_t *f = &s->full[t->d[0]];
                for (int j = 0; j < DIGITS; j++) f->d[j] += x.d[j];
            } else {
                acc_t y;
                group_expand(s, t, &y);
                for (int j = 0; j < DIGITS; j++) y.d[j] += x.d[j];
                acc_normalise(&y);
                if (!group_store(s, t, &y)) { out_of_memory = 1; break; }
            }
        }
        t->pos_inf += a.pos_inf;
        t->neg_inf += a.neg_inf;
        t->nan += a.nan;
        if (map && ++s->since >= GROUP_NORMALISE_EVERY) group_sums_normalise(s);
    }
    if (!map) s->since += added;
    if (map) PyBuffer_Release(&mapping);
    if (out_of_memory) return PyErr_NoMemory(); /* the groups before the failing one merged */
    Py_RETURN_NONE;
}

/* The correctly rounded double of (q + f) * 2**-1074 for a nonnegative integer q (32-bit
 * digits, little end first) and a fraction f in [0, 1) told by `above` (f > 1/2), `half`
 * (f == 1/2) and `inexact` (f > 0): round to nearest, ties to even. */
static double digits_to_double(const uint32_t *q, int n, int above, int half, int inexact) {
    int h = n - 1;
    while (h >= 0 && q[h] == 0) h--;
    if (h < 0) return above ? ldexp(1.0, -1074) : 0.0; /* q = 0: 0 or the smallest unit */
    int top_bits = 32 - __builtin_clz(q[h]);
    int64_t length = 32 * (int64_t)h + top_bits; /* bits of q */
    int64_t keep = length > 53 ? length - 53 : 0; /* bits below the double's last place */
    /* the 53 (or fewer) leading bits of q: bits keep .. length - 1, within 3 digits */
    const int64_t low = keep >> 5;
    unsigned __int128 window = q[low];
    if (low + 1 <= h) window |= (unsigned __int128)q[low + 1] << 32;
    if (low + 2 <= h) window |= (unsigned __int128)q[low + 2] << 64;
    const uint64_t lead = (uint64_t)(window >> (keep & 31));
    int up;
    if (keep == 0) {
        up = above || (half && (lead & 1));
    } else {
        const int64_t g = keep - 1; /* the guard bit; the sticky bits are those below it */
        int guard = (q[g >> 5] >> (g & 31)) & 1u;
        int sticky = inexact || (q[g >> 5] & ((1u << (g & 31)) - 1u)) != 0;
        for (int64_t j = (g >> 5) - 1; j >= 0 && !sticky; j--) sticky = q[j] != 0;
        up = guard && (sticky || (lead & 1));
    }
    return ldexp((double)(lead + (uint64_t)up), (int)(keep - 1074));
}

/* |group r's finite sum| as digits q[0 .. DIGITS - 1] (32-bit, little end first), and
 * whether the sum is negative; *high: the highest digit that may be nonzero. A window's
 * digits are normalised and negated on their own, not as the 70 of an acc_t. */
static int group_magnitude(const GroupSums *s, const group_t *r, uint32_t *q, int *high) {
    memset(q, 0, DIGITS * sizeof *q);
    *high = 0;
    if (r->base == BASE_FULL) {
        acc_t a = s->full[r->d[0]];
        acc_normalise(&a);
        const int negative = a.d[DIGITS - 1] < 0;
        uint64_t borrow = 1;
        for (int j = 0; j < DIGITS; j++) {
            uint32_t v = (uint32_t)a.d[j];
            if (negative) {
                uint64_t t = (uint64_t)(uint32_t)~v + borrow;
                v = (uint32_t)t;
                borrow = t >> 32;
            }
            q[j] = v;
        }
        *high = DIGITS - 1;
        return negative;
    }
    if (r->base < 0) return 0; /* empty: 0 */
    int64_t w[WINDOW];
    memcpy(w, r->d, sizeof w);
    window_normalise(w); /* digits below 2**32, the top one signed: two's complement in e */
    uint32_t e[WINDOW + 1];
    for (int k = 0; k < WINDOW; k++) e[k] = (uint32_t)w[k];
    e[WINDOW] = (uint32_t)((uint64_t)w[WINDOW - 1] >> 32);
    const int negative = w[WINDOW - 1] < 0;
    if (negative) {
        uint64_t borrow = 1;
        for (int k = 0; k <= WINDOW; k++) {
            const uint64_t t = (uint64_t)(uint32_t)~e[k] + borrow;
            e[k] = (uint32_t)t;
            borrow = t >> 32;
        }
    }
    for (int k = 0; k <= WINDOW && r->base + k < DIGITS; k++) q[r->base + k] = e[k];
    *high = r->base + WINDOW < DIGITS ? r->base + WINDOW : DIGITS - 1;
    return negative;
}

PyDoc_STRVAR(group_sums_ratios_doc,
"ratios(counts, codes=None) -> numpy-compatible bytes of float64\n\n"
"For each i < len(counts) (C-contiguous int64), the exact sum of group codes[i] (codes:\n"
"C-contiguous int64 of the same length, each >= 0; None: group i) divided by counts[i],\n"
"correctly rounded (as ExactSum.ratio with an int): NaN for a count of 0, the sum's inf or NaN\n"
"when it has one (a group beyond size: 0). Returns the float64 values as bytes. Runs with the\n"
"GIL released: other threads may take ratios of the same sums meanwhile, not change them.");

static PyObject *group_sums_ratios(GroupSums *s, PyObject *args) {
    PyObject *counts_obj, *codes_obj = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &counts_obj, &codes_obj)) return NULL;
    if (s->busy) { /* other readers may run: ratios only reads */
        PyErr_SetString(PyExc_RuntimeError, "GroupSums is in use by another thread");
        return NULL;
    }
    Py_buffer counts, codes_view = {0};
    if (!get_view(counts_obj, &counts, 0)) {
        PyErr_SetString(PyExc_TypeError, "counts must be a C-contiguous int64 buffer");
        return NULL;
    }
    if (buffer_kind(&counts) != K_I64) {
        PyBuffer_Release(&counts);
        PyErr_SetString(PyExc_TypeError, "counts must be a C-contiguous int64 buffer");
        return NULL;
    }
    const Py_ssize_t n = counts.len / 8;
    const int64_t *c = (const int64_t *)counts.buf, *codes = NULL;
    if (codes_obj != Py_None) {
        if (!get_view(codes_obj, &codes_view, 0)) {
            PyBuffer_Release(&counts);
            PyErr_SetString(PyExc_TypeError, "codes must be a C-contiguous int64 buffer");
            return NULL;
        }
        codes = (const int64_t *)codes_view.buf;
        int bad = buffer_kind(&codes_view) != K_I64 || codes_view.len / 8 != n;
        for (Py_ssize_t i = 0; i < n && !bad; i++) bad = codes[i] < 0;
        if (bad) {
            PyBuffer_Release(&codes_view);
            PyBuffer_Release(&counts);
            PyErr_SetString(PyExc_ValueError, "codes must be int64 >= 0, one per count");
            return NULL;
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * 8);
    if (!out) {
        if (codes) PyBuffer_Release(&codes_view);
        PyBuffer_Release(&counts);
        return NULL;
    }
    double *values = (double *)PyBytes_AS_STRING(out);
    s->readers++; /* writers refuse until it is done (`group_sums_enter`) */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t g = codes ? (Py_ssize_t)codes[i] : i;
        double *const value = &values[i];
        const int64_t count = c[i];
        if (count <= 0) { *value = NAN; continue; } /* 0/0, as ExactSum.ratio */
        group_t empty = {.base = BASE_EMPTY};
        const group_t *r = g < s->size ? &s->grp[g] : &empty;
        if (r->nan || (r->pos_inf && r->neg_inf)) { *value = NAN; continue; }
        if (r->pos_inf) { *value = INFINITY; continue; }
        if (r->neg_inf) { *value = -INFINITY; continue; }
        uint32_t q[DIGITS];
        int high;
        const int negative = group_magnitude(s, r, q, &high);
        /* long division by count: q = floor(|sum| / count), rem the remainder; it stops
         * `stop` digits above the units once the quotient has 4 digits (97 bits or more: the
         * rounding reads 53 and a guard bit), the rest of the quotient then only told as
         * nonzero or not (the sticky bit) */
        unsigned __int128 rem = 0;
        int stop = 0;
        if (count > 1) { /* a count of 1: the sum itself */
            int top = -1;
            while (high > 0 && !q[high]) high--; /* above it, quotient and remainder are 0 */
            if (count <= 0xffffffffLL) { /* (rem << 32) | digit fits 64 bits */
                uint64_t rem64 = 0;
                for (int j = high; j >= 0; j--) {
                    const uint64_t cur = (rem64 << 32) | q[j];
                    q[j] = (uint32_t)(cur / (uint64_t)count);
                    rem64 = cur % (uint64_t)count;
                    if (top < 0 && q[j]) top = j;
                    if (top - j == 3) { stop = j; break; }
                }
                rem = rem64;
            } else {
                for (int j = high; j >= 0; j--) {
                    unsigned __int128 cur = (rem << 32) | q[j];
                    q[j] = (uint32_t)(cur / (uint64_t)count);
                    rem = cur % (uint64_t)count;
                    if (top < 0 && q[j]) top = j;
                    if (top - j == 3) { stop = j; break; }
                }
            }
        }
        double magnitude;
        if (stop > 0) { /* the rest, rem * 2**(32 stop) + q[0..stop-1], is below digit stop */
            int inexact = rem != 0;
            for (int j = 0; j < stop; j++) { inexact |= q[j] != 0; q[j] = 0; }
            magnitude = digits_to_double(q, high + 1, 0, 0, inexact);
        } else {
            const unsigned __int128 twice = rem * 2;
            magnitude = digits_to_double(q, high + 1, twice > (unsigned __int128)count,
                                         twice == (unsigned __int128)count, rem != 0);
        }
        *value = negative ? -magnitude : magnitude;
    }
    Py_END_ALLOW_THREADS
    s->readers--;
    if (codes) PyBuffer_Release(&codes_view);
    PyBuffer_Release(&counts);
    return out;
}

static PyObject *group_sums_size(GroupSums *s, void *Py_UNUSED(closure)) {
    return PyLong_FromSsize_t(s->size);
}

static PyMethodDef group_sums_methods[] = {
    {"add", (PyCFunction)group_sums_add, METH_VARARGS, group_sums_add_doc},
    {"get", (PyCFunction)group_sums_get, METH_O, group_sums_get_doc},
    {"json_parts", (PyCFunction)group_sums_json_parts, METH_VARARGS, group_sums_json_parts_doc},
    {"add_units", (PyCFunction)group_sums_add_units, METH_VARARGS, group_sums_add_units_doc},
    {"add_units_many", (PyCFunction)group_sums_add_units_many, METH_VARARGS,
     group_sums_add_units_many_doc},
    {"merge", (PyCFunction)group_sums_merge, METH_VARARGS, group_sums_merge_doc},
    {"ratios", (PyCFunction)group_sums_ratios, METH_VARARGS, group_sums_ratios_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef group_sums_getset[] = {
    {"size", (getter)group_sums_size, NULL, "The number of groups (max code added + 1).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject GroupSumsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streammetric._kernels.GroupSums",
    .tp_basicsize = sizeof(GroupSums),
    .tp_dealloc = (destructor)group_sums_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "GroupSums()\n\nExact float64 sums per group code, kept in C (see add, get, merge).",
    .tp_methods = group_sums_methods,
    .tp_getset = group_sums_getset,
    .tp_new = group_sums_new,
};

/* ------------------------------------------------------------------ KeyCodes */

/* KeyCodes: group keys that are one int64 or one UTF-8 string, numbered 0, 1, 2, ... in the
 * order they are first seen, kept in C for a whole run (engine/partial.py's GroupIndex owns
 * one). A call looks a batch's values up (an int64 column, or the offsets and bytes of an
 * Arrow string array) and numbers the new ones, with no Python object per value; the Python
 * keys of the new codes are made afterwards (`keys`). Keys compare as Python's would: an int
 * and a string are never the same key (5 and "5" differ), strings by their bytes.
 *
 * Open addressing with linear probing over slots of 16 bytes: an int's slot holds the value
 * itself (a probe touches nothing else), a string's its 64-bit hash (then its bytes, in the
 * arena, are compared). At most half the slots are used. The caller serialises calls (the
 * GroupIndex's lock); a call runs with the GIL released, and `busy` refuses a second one.
 * `keep`: the bits of each hash kept, all of them except in tests, which keep few so that
 * keys collide (then only the comparison of their values tells them apart). */

#define KC_INT 1u
#define KC_STR 2u
#define KC_MAX_CODES ((Py_ssize_t)0x7ffffff0)
#define KC_BLOCK 16 /* rows hashed and their slots prefetched ahead of the probes */

typedef struct {
    uint64_t tag;   /* an int's value (its bits), a string's hash */
    uint32_t code1; /* code + 1; 0: empty */
    uint32_t kind;  /* KC_INT or KC_STR */
} kc_slot_t;

typedef struct {
    PyObject_HEAD
    kc_slot_t *slots;
    uint64_t mask;        /* slots - 1 (a power of 2), or 0 before the first key */
    int64_t *val;         /* per code: the int, or the string's offset in the arena */
    int64_t *len;         /* per code: -1 for an int, else the string's length */
    uint64_t *hash;       /* per code: the slot hash */
    Py_ssize_t size, cap;
    unsigned char *arena; /* the strings' bytes */
    size_t arena_len, arena_cap;
    Py_ssize_t n_str;     /* codes that are strings */
    uint64_t keep;        /* the hash bits kept */
    int busy;
} KeyCodes;

static INLINE uint64_t kc_hash_int(uint64_t v) { return mix64(v ^ 0x2545f4914f6cdd1dULL); }

/* The hash of p[0:n]: 8 bytes at a time, the last 8 (or, below 8, two 4s) read whole,
 * overlapping the ones before; the length is mixed in, so each byte counts. */
static INLINE uint64_t kc_hash_bytes(const unsigned char *p, int64_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n, w = 0;
    if (n >= 8) {
        for (; n > 8; n -= 8, p += 8) {
            memcpy(&w, p, 8);
            h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
            h ^= h >> 29;
        }
        memcpy(&w, p + n - 8, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        w = (uint64_t)a << 32 | b;
    } else {
        for (int64_t b = n - 1; b >= 0; b--) w = (w << 8) | p[b];
    }
    return mix64(h ^ w);
}

/* Whether a[0:n] and b[0:n] hold the same bytes: up to 16 of them compared in two
 * overlapping loads each (no byte read beyond either), more by memcmp. */
static INLINE int kc_same(const unsigned char *a, const unsigned char *b, int64_t n) {
    if (n > 16) return memcmp(a, b, (size_t)n) == 0;
    if (n >= 8) {
        uint64_t x0, x1, y0, y1;
        memcpy(&x0, a, 8);
        memcpy(&y0, b, 8);
        memcpy(&x1, a + n - 8, 8);
        memcpy(&y1, b + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n >= 4) {
        uint32_t x0, x1, y0, y1;
        memcpy(&x0, a, 4);
        memcpy(&y0, b, 4);
        memcpy(&x1, a + n - 4, 4);
        memcpy(&y1, b + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* Code c into the slots (a free one: its hash's, or the next). */
static void kc_place(KeyCodes *t, Py_ssize_t c) {
    uint64_t pos = t->hash[c] & t->mask;
    while (t->slots[pos].code1) pos = (pos + 1) & t->mask;
    const int is_int = t->len[c] < 0;
    t->slots[pos].tag = is_int ? (uint64_t)t->val[c] : t->hash[c];
    t->slots[pos].kind = is_int ? KC_INT : KC_STR;
    t->slots[pos].code1 = (uint32_t)(c + 1);
}

/* Room for `need` codes (and slots for them at most half full); 0 if out of memory. */
static int kc_reserve(KeyCodes *t, Py_ssize_t need) {
    if (need > KC_MAX_CODES) return 0;
    if (need > t->cap) {
        Py_ssize_t cap = t->cap ? t->cap : 64;
        while (cap < need) cap *= 2;
        int64_t *val = PyMem_RawRealloc(t->val, (size_t)cap * 8);
        if (!val) return 0;
        t->val = val;
        int64_t *len = PyMem_RawRealloc(t->len, (size_t)cap * 8);
        if (!len) return 0;
        t->len = len;
        uint64_t *hash = PyMem_RawRealloc(t->hash, (size_t)cap * 8);
        if (!hash) return 0;
        t->hash = hash;
        t->cap = cap;
    }
    uint64_t slots = t->mask ? t->mask + 1 : 0;
    if ((uint64_t)need * 2 > slots) {
        uint64_t n = slots ? slots : 128;
        while ((uint64_t)need * 2 > n) n *= 2;
        /* malloc and memset, not calloc: slots are read before they are written, and a
         * calloc'd page first read is the kernel's zero page, whose first write then costs
         * a second fault and a TLB shootdown on every core */
        kc_slot_t *grown = PyMem_RawMalloc((size_t)n * sizeof(kc_slot_t));
        if (!grown) return 0;
        memset(grown, 0, (size_t)n * sizeof(kc_slot_t));
        PyMem_RawFree(t->slots);
        t->slots = grown;
        t->mask = n - 1;
        for (Py_ssize_t c = 0; c < t->size; c++) kc_place(t, c);
    }
    return 1;
}

/* Forget the codes from `size` on (a failed call's), rebuilding the slots. */
static void kc_truncate(KeyCodes *t, Py_ssize_t size) {
    if (size >= t->size) return;
    Py_ssize_t strings = 0;
    size_t arena = 0;
    for (Py_ssize_t c = 0; c < size; c++)
        if (t->len[c] >= 0) {
            strings++;
            arena = (size_t)(t->val[c] + t->len[c]);
        }
    t->size = size;
    t->n_str = strings;
    t->arena_len = arena;
    if (t->slots) {
        memset(t->slots, 0, (size_t)(t->mask + 1) * sizeof(kc_slot_t));
        for (Py_ssize_t c = 0; c < size; c++) kc_place(t, c);
    }
}

/* The code of the int `v` (hash `h`), numbering it if new; -1 if out of memory. */
static INLINE int64_t kc_int(KeyCodes *t, int64_t v, uint64_t h) {
    if (t->mask) {
        uint64_t pos = h & t->mask;
        for (;;) {
            const kc_slot_t *s = &t->slots[pos];
            if (!s->code1) break;
            if (s->tag == (uint64_t)v && s->kind == KC_INT) return (int64_t)s->code1 - 1;
            pos = (pos + 1) & t->mask;
        }
    }
    if (!kc_reserve(t, t->size + 1)) return -1;
    const Py_ssize_t c = t->size++;
    t->val[c] = v;
    t->len[c] = -1;
    t->hash[c] = h;
    kc_place(t, c);
    return c;
}

/* Whether p[0:n] is UTF-8 (as Python's strict decoder accepts it: no surrogates, no
 * overlong forms, nothing beyond U+10FFFF). */
static int kc_utf8(const unsigned char *p, int64_t n) {
    for (int64_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c < 0x80) { i++; continue; }
        int k;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07; }
        else return 0;
        if (n - i <= k) return 0;
        for (int j = 1; j <= k; j++) {
            const unsigned char d = p[i + j];
            if ((d & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (d & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
        if (cp >= 0xd800 && cp <= 0xdfff) return 0;
        i += k + 1;
    }
    return 1;
}

/* The code of the string p[0:n] (hash `h`), numbering it if new; -1 if out of memory, -2 if
 * it is not UTF-8. */
static INLINE int64_t kc_str(KeyCodes *t, const unsigned char *p, int64_t n, uint64_t h) {
    if (t->mask) {
        uint64_t pos = h & t->mask;
        for (;;) {
            const kc_slot_t *s = &t->slots[pos];
            if (!s->code1) break;
            if (s->tag == h && s->kind == KC_STR) {
                const int64_t c = (int64_t)s->code1 - 1;
                if (t->len[c] == n && kc_same(t->arena + t->val[c], p, n))
                    return c;
            }
            pos = (pos + 1) & t->mask;
        }
    }
    if (!kc_utf8(p, n)) return -2;
    if (!kc_reserve(t, t->size + 1)) return -1;
    if (t->arena_len + (size_t)n > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 4096;
        while (cap < t->arena_len + (size_t)n) cap *= 2;
        unsigned char *arena = PyMem_RawRealloc(t->arena, cap);
        if (!arena) return -1;
        t->arena = arena;
        t->arena_cap = cap;
    }
    if (n) memcpy(t->arena + t->arena_len, p, (size_t)n);
    const Py_ssize_t c = t->size++;
    t->val[c] = (int64_t)t->arena_len;
    t->len[c] = n;
    t->hash[c] = h;
    t->arena_len += (size_t)n;
    t->n_str++;
    kc_place(t, c);
    return c;
}

/* The key value (an int or a str) of code c (< size). */
static PyObject *kc_value(const KeyCodes *t, Py_ssize_t c) {
    if (t->len[c] < 0) return PyLong_FromLongLong(t->val[c]);
    const unsigned char *p = t->arena + t->val[c];
    const Py_ssize_t n = t->len[c];
    unsigned char any = 0;
    for (Py_ssize_t i = 0; i < n; i++) any |= p[i];
    if (any & 0x80) return PyUnicode_DecodeUTF8((const char *)p, n, "strict");
    PyObject *text = PyUnicode_New(n, 127); /* ASCII: its bytes are its characters */
    if (text) memcpy(PyUnicode_1BYTE_DATA(text), p, (size_t)n);
    return text;
}

static PyObject *key_codes_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"hash_bits", NULL};
    int bits = 64;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$i:KeyCodes", names, &bits)) return NULL;
    if (bits < 1 || bits > 64) {
        PyErr_SetString(PyExc_ValueError, "KeyCodes: hash_bits must be 1 to 64");
        return NULL;
    }
    KeyCodes *t = (KeyCodes *)type->tp_alloc(type, 0);
    if (t) {
        t->slots = NULL;
        t->mask = 0;
        t->val = t->len = NULL;
        t->hash = NULL;
        t->size = t->cap = 0;
        t->arena = NULL;
        t->arena_len = t->arena_cap = 0;
        t->n_str = 0;
        t->keep = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
        t->busy = 0;
    }
    return (PyObject *)t;
}

static void key_codes_dealloc(KeyCodes *t) {
    PyMem_RawFree(t->slots);
    PyMem_RawFree(t->val);
    PyMem_RawFree(t->len);
    PyMem_RawFree(t->hash);
    PyMem_RawFree(t->arena);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static int key_codes_enter(KeyCodes *t) {
    if (t->busy) {
        PyErr_SetString(PyExc_RuntimeError, "KeyCodes is in use by another thread");
        return 0;
    }
    return 1;
}

/* (start, end): the codes a call numbered, or NULL with an exception (nothing numbered). */
static PyObject *kc_result(KeyCodes *t, Py_ssize_t start, int failed) {
    if (failed) {
        kc_truncate(t, start);
        if (failed == -2)
            PyErr_SetString(PyExc_ValueError, "KeyCodes: a string is not valid UTF-8");
        else
            PyErr_NoMemory();
        return NULL;
    }
    return Py_BuildValue("(nn)", start, t->size);
}

PyDoc_STRVAR(key_codes_add_ints_doc,
"add_ints(values, out) -> tuple[int, int] | None\n\nout[i] = the code of the int values[i]\n"
"(int64, 1-D contiguous; out int64 of the same length), numbering new values in order of\n"
"first appearance; the codes numbered, (start, end). None if the buffers do not fit.");

static PyObject *key_codes_add_ints(KeyCodes *t, PyObject *args) {
    PyObject *values_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OO", &values_obj, &out_obj)) return NULL;
    if (!key_codes_enter(t)) return NULL;
    Py_buffer values, out;
    if (!get_view(values_obj, &values, 0)) Py_RETURN_NONE;
    if (!get_view(out_obj, &out, 1)) { PyBuffer_Release(&values); Py_RETURN_NONE; }
    if (buffer_kind(&values) != K_I64 || buffer_kind(&out) != K_I64 || values.len != out.len) {
        PyBuffer_Release(&out);
        PyBuffer_Release(&values);
        Py_RETURN_NONE;
    }
    const int64_t *v = values.buf;
    int64_t *o = out.buf;
    const Py_ssize_t n = values.len / 8, start = t->size;
    int failed = 0;
    const uint64_t keep = t->keep;
    t->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    uint64_t h[KC_BLOCK];
    for (Py_ssize_t i = 0; i < n && !failed; i += KC_BLOCK) {
        const Py_ssize_t m = n - i < KC_BLOCK ? n - i : KC_BLOCK;
        for (Py_ssize_t j = 0; j < m; j++) {
            h[j] = kc_hash_int((uint64_t)v[i + j]) & keep;
            if (t->mask) __builtin_prefetch(&t->slots[h[j] & t->mask]);
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            const int64_t c = kc_int(t, v[i + j], h[j]);
            if (c < 0) { failed = -1; break; }
            o[i + j] = c;
        }
    }
    Py_END_ALLOW_THREADS
    t->busy = 0;
    PyBuffer_Release(&out);
    PyBuffer_Release(&values);
    return kc_result(t, start, failed);
}

PyDoc_STRVAR(key_codes_add_strings_doc,
"add_strings(offsets, data, out) -> tuple[int, int] | None\n\nout[i] = the code of the string\n"
"data[offsets[i]:offsets[i + 1]] (Arrow's string layout: int32 or int64 offsets, n + 1 of\n"
"them; out int64, n), numbering new strings in order of first appearance; the codes numbered,\n"
"(start, end). None if the buffers do not fit or an offset is out of range; ValueError,\n"
"nothing numbered, if a new string is not UTF-8.");

static PyObject *key_codes_add_strings(KeyCodes *t, PyObject *args) {
    PyObject *offsets_obj, *data_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOO", &offsets_obj, &data_obj, &out_obj)) return NULL;
    if (!key_codes_enter(t)) return NULL;
    Py_buffer offsets, data, out;
    if (!get_view(offsets_obj, &offsets, 0)) Py_RETURN_NONE;
    if (!get_view(data_obj, &data, 0)) { PyBuffer_Release(&offsets); Py_RETURN_NONE; }
    if (!get_view(out_obj, &out, 1)) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&offsets);
        Py_RETURN_NONE;
    }
    const kind_t kind = buffer_kind(&offsets);
    const Py_ssize_t n = out.len / 8, start = t->size;
    const int wide = kind == K_I64;
    int ok = (kind == K_I32 || kind == K_I64) && buffer_kind(&out) == K_I64 &&
             offsets.len == (n + 1) * offsets.itemsize;
    int failed = 0;
    if (ok) {
        const unsigned char *bytes = data.buf;
        const uint64_t keep = t->keep;
        const int64_t size = data.len;
        int64_t *o = out.buf;
        t->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i <= n; i++) { /* every offset in range, before numbering any */
            const int64_t at = wide ? ((const int64_t *)offsets.buf)[i] : ((const int32_t *)offsets.buf)[i];
            const int64_t before = i == 0 ? 0 : (wide ? ((const int64_t *)offsets.buf)[i - 1] : ((const int32_t *)offsets.buf)[i - 1]);
            if (at < 0 || at > size || at < before) { ok = 0; break; }
        }
        uint64_t h[KC_BLOCK];
        for (Py_ssize_t i = 0; ok && i < n && !failed; i += KC_BLOCK) {
            const Py_ssize_t m = n - i < KC_BLOCK ? n - i : KC_BLOCK;
            for (Py_ssize_t j = 0; j < m; j++) {
                const int64_t a = wide ? ((const int64_t *)offsets.buf)[i + j] : ((const int32_t *)offsets.buf)[i + j];
                const int64_t b = wide ? ((const int64_t *)offsets.buf)[i + j + 1] : ((const int32_t *)offsets.buf)[i + j + 1];
                h[j] = kc_hash_bytes(bytes + a, b - a) & keep;
                if (t->mask) __builtin_prefetch(&t->slots[h[j] & t->mask]);
            }
            for (Py_ssize_t j = 0; j < m; j++) {
                const int64_t a = wide ? ((const int64_t *)offsets.buf)[i + j] : ((const int32_t *)offsets.buf)[i + j];
                const int64_t b = wide ? ((const int64_t *)offsets.buf)[i + j + 1] : ((const int32_t *)offsets.buf)[i + j + 1];
                const int64_t c = kc_str(t, bytes + a, b - a, h[j]);
                if (c < 0) { failed = (int)c; break; }
                o[i + j] = c;
            }
        }
        Py_END_ALLOW_THREADS
        t->busy = 0;
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    if (!ok) Py_RETURN_NONE;
    return kc_result(t, start, failed);
}

PyDoc_STRVAR(key_codes_add_keys_doc,
"add_keys(keys) -> int\n\nNumbers Python keys (a list of 1-tuples) in order, as codes size,\n"
"size + 1, ...: each must be an int (not a bool) within int64 or a str that UTF-8 can encode,\n"
"and not a key already here; stops at the first that is not, and answers how many it\n"
"numbered.");

static PyObject *key_codes_add_keys(KeyCodes *t, PyObject *keys) {
    if (!PyList_Check(keys)) {
        PyErr_SetString(PyExc_TypeError, "add_keys() takes a list");
        return NULL;
    }
    if (!key_codes_enter(t)) return NULL;
    Py_ssize_t done = 0;
    const Py_ssize_t n = PyList_GET_SIZE(keys);
    for (; done < n; done++) {
        PyObject *key = PyList_GET_ITEM(keys, done);
        if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) != 1) break;
        PyObject *value = PyTuple_GET_ITEM(key, 0);
        const Py_ssize_t before = t->size;
        int64_t c;
        if (PyLong_CheckExact(value)) {
            int overflow = 0;
            const long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
            if (overflow || (v == -1 && PyErr_Occurred())) { PyErr_Clear(); break; }
            c = kc_int(t, (int64_t)v, kc_hash_int((uint64_t)v) & t->keep);
        } else if (PyUnicode_CheckExact(value)) {
            Py_ssize_t len;
            const char *p = PyUnicode_AsUTF8AndSize(value, &len);
            if (!p) { PyErr_Clear(); break; }
            const unsigned char *u = (const unsigned char *)p;
            c = kc_str(t, u, len, kc_hash_bytes(u, len) & t->keep);
        } else {
            break;
        }
        if (c == -1) return PyErr_NoMemory();
        if (c != (int64_t)before || t->size != before + 1) break; /* -2 (not UTF-8), or known */
    }
    return PyLong_FromSsize_t(done);
}

PyDoc_STRVAR(key_codes_keys_doc,
"keys(start, end) -> list[tuple[int | str]]\n\nThe keys (value,) of codes start .. end - 1.");

static PyObject *key_codes_keys(KeyCodes *t, PyObject *args) {
    Py_ssize_t start, end;
    if (!PyArg_ParseTuple(args, "nn", &start, &end)) return NULL;
    if (!key_codes_enter(t)) return NULL;
    if (start < 0 || end > t->size || start > end) {
        PyErr_SetString(PyExc_IndexError, "KeyCodes.keys: codes out of range");
        return NULL;
    }
    PyObject *list = PyList_New(end - start);
    if (!list) return NULL;
    for (Py_ssize_t c = start; c < end; c++) {
        PyObject *value = kc_value(t, c);
        PyObject *key = value ? PyTuple_Pack(1, value) : NULL;
        Py_XDECREF(value);
        if (!key) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, c - start, key);
    }
    return list;
}

/* A view of `arg` as codes of t (C-contiguous int64, each below size) for `what`: 1, or 0 with
 * an exception set (TypeError, IndexError) and nothing to release. */
static int kc_codes_view(const KeyCodes *t, PyObject *arg, Py_buffer *codes, const char *what) {
    const int viewed = get_view(arg, codes, 0);
    if (!viewed || buffer_kind(codes) != K_I64) {
        if (viewed) PyBuffer_Release(codes);
        PyErr_Format(PyExc_TypeError, "%s() takes a C-contiguous int64 buffer", what);
        return 0;
    }
    const int64_t *c = codes->buf;
    for (Py_ssize_t i = 0; i < codes->len / 8; i++)
        if (c[i] < 0 || c[i] >= t->size) {
            PyBuffer_Release(codes);
            PyErr_Format(PyExc_IndexError, "KeyCodes.%s: codes out of range", what);
            return 0;
        }
    return 1;
}

PyDoc_STRVAR(key_codes_values_doc,
"values(codes) -> list[int | str]\n\nThe key value of each code of `codes` (C-contiguous int64,\n"
"each below size), in that order: a column of keys without a tuple each.");

static PyObject *key_codes_values(KeyCodes *t, PyObject *arg) {
    if (!key_codes_enter(t)) return NULL;
    Py_buffer codes;
    if (!kc_codes_view(t, arg, &codes, "values")) return NULL;
    const int64_t *c = codes.buf;
    const Py_ssize_t n = codes.len / 8;
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list && i < n; i++) {
        PyObject *value = kc_value(t, (Py_ssize_t)c[i]);
        if (!value) { Py_CLEAR(list); break; }
        PyList_SET_ITEM(list, i, value);
    }
    PyBuffer_Release(&codes);
    return list;
}

PyDoc_STRVAR(key_codes_strings_of_doc,
"strings_of(codes) -> (offsets, data) | None\n\nThe string keys of `codes` (C-contiguous int64, each\n"
"below size), in that order, as one Arrow-style column: int64 offsets (n + 1 of them, as bytes)\n"
"and the UTF-8 bytes they index; None if a code's key is not a string.");

static PyObject *key_codes_strings_of(KeyCodes *t, PyObject *arg) {
    if (!key_codes_enter(t)) return NULL;
    Py_buffer codes;
    if (!kc_codes_view(t, arg, &codes, "strings_of")) return NULL;
    const int64_t *c = codes.buf;
    const Py_ssize_t n = codes.len / 8;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (t->len[c[i]] < 0) { PyBuffer_Release(&codes); Py_RETURN_NONE; } /* an int */
        total += (size_t)t->len[c[i]];
    }
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 8);
    PyObject *data = offsets ? PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total) : NULL;
    if (data) {
        int64_t *o = (int64_t *)PyBytes_AS_STRING(offsets);
        char *d = PyBytes_AS_STRING(data);
        int64_t at = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            o[i] = at;
            memcpy(d + at, t->arena + t->val[c[i]], (size_t)t->len[c[i]]);
            at += t->len[c[i]];
        }
        o[n] = at;
    }
    PyBuffer_Release(&codes);
    if (!data) { Py_XDECREF(offsets); return NULL; }
    return Py_BuildValue("(NN)", offsets, data);
}

static const KeyCodes *kc_sorting; /* qsort's table (the GIL held, or busy set) */

static int kc_cmp_int(const void *x, const void *y) {
    const int64_t a = kc_sorting->val[*(const int64_t *)x], b = kc_sorting->val[*(const int64_t *)y];
    return (a > b) - (a < b);
}

static int kc_cmp_str(const void *x, const void *y) {
    const KeyCodes *t = kc_sorting;
    const int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    const int64_t la = t->len[a], lb = t->len[b];
    const int r = memcmp(t->arena + t->val[a], t->arena + t->val[b], (size_t)(la < lb ? la : lb));
    if (r) return r;
    return (la > lb) - (la < lb);
}

/* The strings' codes in byte order (n > 0 codes, all strings): a radix sort on the 8 bytes that
 * follow the prefix every key shares (big-endian, zero-padded: distinct such words order two
 * keys as their bytes do), then each run of equal words by a full comparison. 0 if out of
 * memory. */
static int kc_order_strings(const KeyCodes *t, int64_t *o) {
    const Py_ssize_t n = t->size;
    int64_t common = t->len[0];
    const unsigned char *first = t->arena + t->val[0];
    for (Py_ssize_t c = 1; c < n && common; c++) {
        const unsigned char *p = t->arena + t->val[c];
        const int64_t most = t->len[c] < common ? t->len[c] : common;
        int64_t k = 0;
        while (k < most && p[k] == first[k]) k++;
        common = k;
    }
    uint64_t *word = PyMem_RawMalloc((size_t)n * 16);
    if (!word) return 0;
    uint64_t *code = word + n;
    for (Py_ssize_t c = 0; c < n; c++) {
        const unsigned char *p = t->arena + t->val[c] + common;
        const int64_t left = t->len[c] - common;
        uint64_t w = 0;
        for (int b = 0; b < 8; b++) w = (w << 8) | (b < left ? p[b] : 0);
        word[c] = w;
        code[c] = (uint64_t)c;
    }
    uint64_t *w2 = (uint64_t *)o, *c2 = PyMem_RawMalloc((size_t)n * 8);
    if (!c2) { PyMem_RawFree(word); return 0; }
    /* LSD, a byte a pass (passes where every word has the same byte skipped); the last pass's
     * output in `word`/`code` */
    for (int shift = 0; shift < 64; shift += 8) {
        Py_ssize_t count[257] = {0};
        for (Py_ssize_t i = 0; i < n; i++) count[((word[i] >> shift) & 0xff) + 1]++;
        int used = 0;
        for (int b = 1; b <= 256; b++) used += count[b] != 0;
        if (used < 2) continue;
        for (int b = 1; b <= 256; b++) count[b] += count[b - 1];
        for (Py_ssize_t i = 0; i < n; i++) {
            const Py_ssize_t at = count[(word[i] >> shift) & 0xff]++;
            w2[at] = word[i];
            c2[at] = code[i];
        }
        memcpy(word, w2, (size_t)n * 8);
        memcpy(code, c2, (size_t)n * 8);
    }
    PyMem_RawFree(c2);
    for (Py_ssize_t i = 0; i < n; i++) o[i] = (int64_t)code[i];
    kc_sorting = t;
    for (Py_ssize_t i = 0; i < n;) { /* runs of equal words: the rest of their bytes decides */
        Py_ssize_t j = i + 1;
        while (j < n && word[j] == word[i]) j++;
        if (j - i > 1) qsort(o + i, (size_t)(j - i), 8, kc_cmp_str);
        i = j;
    }
    kc_sorting = NULL;
    PyMem_RawFree(word);
    return 1;
}

PyDoc_STRVAR(key_codes_order_doc,
"order(out) -> bool\n\nout (int64, size of them) = every code, in key order, when the keys are\n"
"all ints or all strings (strings by their UTF-8 bytes: Python's order of str); False, out\n"
"unchanged, if they are both or the buffer does not fit.");

static PyObject *key_codes_order(KeyCodes *t, PyObject *out_obj) {
    if (!key_codes_enter(t)) return NULL;
    Py_buffer out;
    if (!get_view(out_obj, &out, 1)) Py_RETURN_FALSE;
    int ok = buffer_kind(&out) == K_I64 && out.len == t->size * 8 &&
             (t->n_str == 0 || t->n_str == t->size);
    if (ok && t->size) {
        int64_t *o = out.buf;
        if (t->n_str) {
            if (!kc_order_strings(t, o)) {
                PyBuffer_Release(&out);
                return PyErr_NoMemory();
            }
        } else {
            for (Py_ssize_t c = 0; c < t->size; c++) o[c] = c;
            /* qsort with a static table: the GIL stays held, so no other call sorts meanwhile */
            kc_sorting = t;
            qsort(o, (size_t)t->size, 8, kc_cmp_int);
            kc_sorting = NULL;
        }
    }
    PyBuffer_Release(&out);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(key_codes_ints_doc,
"ints(out) -> bool\n\nout (int64, size of them) = the key of each code, when every key is an int\n"
"(for NumPy to sort them); False, out unchanged, if not or the buffer does not fit.");

static PyObject *key_codes_ints(KeyCodes *t, PyObject *out_obj) {
    if (!key_codes_enter(t)) return NULL;
    Py_buffer out;
    if (!get_view(out_obj, &out, 1)) Py_RETURN_FALSE;
    const int ok = buffer_kind(&out) == K_I64 && out.len == t->size * 8 && t->n_str == 0;
    if (ok && t->size) memcpy(out.buf, t->val, (size_t)t->size * 8);
    PyBuffer_Release(&out);
    return PyBool_FromLong(ok);
}

static PyObject *key_codes_size(KeyCodes *t, void *Py_UNUSED(closure)) {
    return PyLong_FromSsize_t(t->size);
}

static PyObject *key_codes_strings(KeyCodes *t, void *Py_UNUSED(closure)) {
    return PyLong_FromSsize_t(t->n_str);
}

static PyMethodDef key_codes_methods[] = {
    {"add_ints", (PyCFunction)key_codes_add_ints, METH_VARARGS, key_codes_add_ints_doc},
    {"add_strings", (PyCFunction)key_codes_add_strings, METH_VARARGS, key_codes_add_strings_doc},
    {"add_keys", (PyCFunction)key_codes_add_keys, METH_O, key_codes_add_keys_doc},
    {"keys", (PyCFunction)key_codes_keys, METH_VARARGS, key_codes_keys_doc},
    {"order", (PyCFunction)key_codes_order, METH_O, key_codes_order_doc},
    {"ints", (PyCFunction)key_codes_ints, METH_O, key_codes_ints_doc},
    {"values", (PyCFunction)key_codes_values, METH_O, key_codes_values_doc},
    {"strings_of", (PyCFunction)key_codes_strings_of, METH_O, key_codes_strings_of_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef key_codes_getset[] = {
    {"size", (getter)key_codes_size, NULL, "The number of keys (codes 0 .. size - 1).", NULL},
    {"strings", (getter)key_codes_strings, NULL, "How many of the keys are strings.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject KeyCodesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streammetric._kernels.KeyCodes",
    .tp_basicsize = sizeof(KeyCodes),
    .tp_dealloc = (destructor)key_codes_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "KeyCodes(*, hash_bits=64)\n\nDense codes of int64 and UTF-8 string keys in order of "
              "first appearance (see add_ints, add_strings, add_keys, keys, order). hash_bits: "
              "the bits of each key's hash kept, fewer only in tests (so that keys collide).",
    .tp_methods = key_codes_methods,
    .tp_getset = key_codes_getset,
    .tp_new = key_codes_new,
};

/* ----------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"exact_sum", exact_sum, METH_O, exact_sum_doc},
    {"log", log_values, METH_VARARGS, log_doc},
    {"exp", exp_values, METH_VARARGS, exp_doc},
    {"log1p", log1p_values, METH_VARARGS, log1p_doc},
    {"log32", log32_values, METH_VARARGS, log32_doc},
    {"exp32", exp32_values, METH_VARARGS, exp32_doc},
    {"sparse_scan", sparse_scan, METH_VARARGS, sparse_scan_doc},
    {"sparse_loss", (PyCFunction)(void (*)(void))sparse_loss, METH_FASTCALL, sparse_loss_doc},
    {"class_ranks", class_ranks, METH_VARARGS, class_ranks_doc},
    {"hash_ints", hash_ints, METH_VARARGS, hash_ints_doc},
    {"hash_strings", hash_strings, METH_VARARGS, hash_strings_doc},
    {"group_counts", group_counts, METH_VARARGS, group_counts_doc},
    {"weigh_cells", weigh_cells, METH_VARARGS, weigh_cells_doc},
    {"isa", isa_name, METH_NOARGS, isa_doc},
    {"isas", isa_names, METH_NOARGS, isas_doc},
    {"use_isa", use_isa, METH_O, use_isa_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "streammetric._kernels",
    "Fused hot loops of streammetric (internal; see _kernels.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    __builtin_cpu_init();
#endif
    const char *cap = getenv("STREAMMETRIC_MAX_ISA");
    if (cap && *cap) {
        first_allowed = -1;
        for (int i = 0; i < N_ISAS; i++)
            if (strcmp(isas[i].name, cap) == 0) first_allowed = i;
        if (first_allowed < 0) {
            first_allowed = 0;
            if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                                 "STREAMMETRIC_MAX_ISA=%s names no instruction set of this build "
                                 "(avx512, avx2 or baseline on x86-64; baseline elsewhere): "
                                 "ignored", cap) < 0)
                return NULL;
        }
    }
    for (int i = 0; i < N_ISAS; i++) {
        if (available(i)) {
            isa = &isas[i];
            break;
        }
    }
    if (PyType_Ready(&GroupSumsType) < 0) return NULL;
    if (PyType_Ready(&KeyCodesType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&GroupSumsType);
    if (PyModule_AddObject(m, "GroupSums", (PyObject *)&GroupSumsType) < 0) {
        Py_DECREF(&GroupSumsType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&KeyCodesType);
    if (PyModule_AddObject(m, "KeyCodes", (PyObject *)&KeyCodesType) < 0) {
        Py_DECREF(&KeyCodesType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
