/* The hot loops of _kernels.c, written once for vectors of VBYTES bytes and included once per
 * instruction set with its own ISA name (every function and type here is named K(name), i.e.
 * name_ISA). The includer sets the target (#pragma GCC target) before including, so every
 * function here, inlined helpers included, is compiled for it: GCC lowers vector operations
 * per function before inlining, so a helper compiled for another target would be scalarised.
 *
 * Defines K(acc_add_all), K(math_loop), K(math32_loop), K(scan_loop), K(after_loop),
 * K(rank_loop) and K(weigh_loop); uses acc_t, log_f64, log_f32in, exp_f64, log1p_f64, log_f32np, exp_f32np, the
 * MATH_ and MATH32_ codes, GUARD_ codes, loss_t, scan_args_t, scan_t and their helpers from
 * _kernels.c. With K_X86 defined (and VBYTES 32 or 64), counts lanes with x86 intrinsics
 * (immintrin.h). */

#define K_JOIN(a, b) a##_##b
#define K_NAME(a, b) K_JOIN(a, b)
#define K(name) K_NAME(name, ISA)

#define L32 (VBYTES / 4) /* float32 / int32 lanes */
#define L64 (VBYTES / 8) /* float64 / int64 lanes */

typedef float K(f32v) __attribute__((vector_size(VBYTES)));
typedef int32_t K(i32v) __attribute__((vector_size(VBYTES)));
typedef uint32_t K(u32v) __attribute__((vector_size(VBYTES)));
typedef double K(f64v) __attribute__((vector_size(VBYTES)));
typedef int64_t K(i64v) __attribute__((vector_size(VBYTES)));
typedef uint64_t K(u64v) __attribute__((vector_size(VBYTES)));

/* ------------------------------------------------------------ reductions */

/* Part i (0: the low half, 1: the high half) of vector v, as `type` (half v's size). */
#define K_PART(type, v, i)                                                                  \
    ({                                                                                      \
        type part_;                                                                         \
        memcpy(&part_, (const char *)&(v) + (i) * sizeof(type), sizeof(type));              \
        part_;                                                                              \
    })
#define K_HALVES(type, v) (K_PART(type, v, 0) + K_PART(type, v, 1))

/* Sums of all lanes (the order does not matter to any caller): the vector is halved down to
 * 16 bytes, K_TO16(t32, t16, v) with t32, t16 the 32- and 16-byte vectors of v's lanes. */
#if VBYTES == 64
#define K_TO16(t32, t16, v) ({ t32 half_ = K_HALVES(t32, v); K_HALVES(t16, half_); })
#elif VBYTES == 32
#define K_TO16(t32, t16, v) K_HALVES(t16, v)
#else
#define K_TO16(t32, t16, v) (v)
#endif
static INLINE double K(sum_f64)(K(f64v) s) {
    f64x2 s2 = K_TO16(f64x4, f64x2, s);
    return s2[0] + s2[1];
}
static INLINE int64_t K(sum_i64)(K(i64v) s) {
    i64x2 s2 = K_TO16(i64x4, i64x2, s);
    return s2[0] + s2[1];
}
static INLINE int32_t K(sum_i32)(K(i32v) s) {
    i32x4 s4 = K_TO16(i32x8, i32x4, s);
    return (s4[0] + s4[1]) + (s4[2] + s4[3]);
}

/* Counting the lanes of two masks (lanes -1 or 0) row by row: a movemask and a popcount where
 * the instruction set has them (K_X86), else the masks are added up and their lanes summed
 * once. Used for the two ranks of a true class (see K_ABOVE). */
typedef struct {
#if (VBYTES == 64 || VBYTES == 32) && defined(K_X86)
    int64_t n[2];
#else
    K(i32v) lanes32[2];
    K(i64v) lanes64[2];
#endif
} K(tally_t);

static INLINE void K(tally32)(K(tally_t) *t, K(i32v) m0, K(i32v) m1) {
#if VBYTES == 64 && defined(K_X86)
    t->n[0] += __builtin_popcount(_mm512_cmplt_epi32_mask((__m512i)m0, _mm512_setzero_si512()));
    t->n[1] += __builtin_popcount(_mm512_cmplt_epi32_mask((__m512i)m1, _mm512_setzero_si512()));
#elif VBYTES == 32 && defined(K_X86)
    t->n[0] += __builtin_popcount((unsigned)_mm256_movemask_ps((__m256)m0));
    t->n[1] += __builtin_popcount((unsigned)_mm256_movemask_ps((__m256)m1));
#else
    t->lanes32[0] += m0;
    t->lanes32[1] += m1;
#endif
}
static INLINE void K(tally64)(K(tally_t) *t, K(i64v) m0, K(i64v) m1) {
#if VBYTES == 64 && defined(K_X86)
    t->n[0] += __builtin_popcount(_mm512_cmplt_epi64_mask((__m512i)m0, _mm512_setzero_si512()));
    t->n[1] += __builtin_popcount(_mm512_cmplt_epi64_mask((__m512i)m1, _mm512_setzero_si512()));
#elif VBYTES == 32 && defined(K_X86)
    t->n[0] += __builtin_popcount((unsigned)_mm256_movemask_pd((__m256d)m0));
    t->n[1] += __builtin_popcount((unsigned)_mm256_movemask_pd((__m256d)m1));
#else
    t->lanes64[0] += m0;
    t->lanes64[1] += m1;
#endif
}
/* The two counts to out[0] and out[1]. */
static INLINE void K(tally_store)(const K(tally_t) *t, const int f64, int64_t *out) {
    for (int j = 0; j < 2; j++) {
#if (VBYTES == 64 || VBYTES == 32) && defined(K_X86)
        (void)f64;
        out[j] = t->n[j];
#else
        out[j] = f64 ? -K(sum_i64)(t->lanes64[j]) : -(int64_t)K(sum_i32)(t->lanes32[j]);
#endif
    }
}

static INLINE int K(any_i64)(K(i64v) m) {
#if VBYTES == 64 && defined(K_X86)
    return _mm512_test_epi64_mask((__m512i)m, (__m512i)m) != 0;
#elif VBYTES == 32 && defined(K_X86)
    return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#else
    int64_t any = 0;
    for (int i = 0; i < L64; i++) any |= m[i];
    return any != 0;
#endif
}

/* The float64 values of lanes 0 .. L64-1 (half 0) or L64 .. L32-1 (half 1) of v. */
typedef float K(f32half) __attribute__((vector_size(VBYTES / 2)));
#define K_WIDEN(v, half) __builtin_convertvector(K_PART(K(f32half), v, half), K(f64v))

/* ------------------------------------------------------------- exact sums */

/* One vector of a batch for `split_batch`: tiny values one by one, the rest split. */
static INLINE void K(split)(acc_t *a, K(f64v) v, uint64_t low, double c1, double c2, double c3,
                            K(u64v) q[3]) {
    K(u64v) bits = (K(u64v))v;
    K(i64v) tiny = (K(i64v))(((bits >> 52) & 0x7ff) < low) & (K(i64v))((bits << 1) != 0);
    if (K(any_i64)(tiny)) {
        for (int j = 0; j < L64; j++)
            if (tiny[j]) acc_add_one(a, bits[j]);
        v = (K(f64v))((K(i64v))v & ~tiny);
    }
    K(f64v) t = v + c1;
    q[0] += (K(u64v))t;
    K(f64v) r = v - (t - c1);
    t = r + c2;
    q[1] += (K(u64v))t;
    r = r - (t - c2);
    q[2] += (K(u64v))(r + c3);
}

/* Adds the n values of a batch whose magnitudes are below 2**E, E = high - 1022 (high: the
 * largest biased exponent, SPLIT_LOW <= high <= SPLIT_HIGH). Values of biased exponent below
 * high - 64 (zeros aside) go one by one; every other value v is a multiple of 2**(E-117), and
 * v = q1 2**(E-40) + q2 2**(E-80) + q3 2**(E-120) exactly with |q| < 2**51. */
static INLINE void K(split_batch)(acc_t *a, const double *x, Py_ssize_t n, unsigned high) {
    const int top = (int)high - 1022, level[3] = {top - 40, top - 80, top - 120};
    const uint64_t low = high - 64, magic[3] = {magic_bits(level[0]), magic_bits(level[1]),
                                                magic_bits(level[2])};
    double c[3];
    memcpy(c, magic, sizeof(c));
    K(u64v) q[3] = {{0}, {0}, {0}};
    Py_ssize_t i = 0;
    for (; i + L64 <= n; i += L64) {
        K(f64v) v;
        memcpy(&v, x + i, VBYTES);
        K(split)(a, v, low, c[0], c[1], c[2], q);
    }
    if (i < n) {
        K(f64v) v = {0};
        memcpy(&v, x + i, (size_t)(n - i) * 8);
        K(split)(a, v, low, c[0], c[1], c[2], q);
    }
    /* the sum of bits(v + c) less lanes * bits(c) is the sum of q, modulo 2**64 */
    const uint64_t lanes = (uint64_t)(n + L64 - 1) / L64 * L64;
    for (int j = 0; j < 3; j++) {
        uint64_t sum = (uint64_t)K(sum_i64)((K(i64v))q[j]) - lanes * magic[j];
        acc_add_signed(a, (int64_t)sum, (unsigned)(level[j] + 1074));
    }
}

static void K(acc_add_all)(acc_t *a, const double *x, Py_ssize_t n) {
    for (Py_ssize_t start = 0; start < n; start += BATCH) {
        const Py_ssize_t count = n - start < BATCH ? n - start : BATCH;
        const double *batch = x + start;
        K(i64v) tops = {0};
        Py_ssize_t i = 0;
        for (; i + L64 <= count; i += L64) {
            K(i64v) bits;
            memcpy(&bits, batch + i, VBYTES);
            bits &= (int64_t)EXPONENT;
            K(i64v) above = bits > tops;
            tops = (bits & above) | (tops & ~above);
        }
        int64_t top = 0;
        for (int j = 0; j < L64; j++) top = tops[j] > top ? tops[j] : top;
        for (; i < count; i++) {
            int64_t bits;
            memcpy(&bits, batch + i, 8);
            bits &= (int64_t)EXPONENT;
            top = bits > top ? bits : top;
        }
        const unsigned high = (unsigned)(top >> 52);
        if (high >= SPLIT_LOW && high <= SPLIT_HIGH) {
            K(split_batch)(a, batch, count, high);
        } else { /* inf or NaN, nothing but tiny values, or huge ones */
            for (i = 0; i < count; i++) {
                uint64_t bits;
                memcpy(&bits, batch + i, 8);
                acc_add_one(a, bits);
            }
        }
        acc_normalise(a);
    }
}

/* out[i] = f(x[i]) for the function `op` names (MATH_LOG, MATH_NEG_LOG, MATH_EXP, MATH_LOG1P;
 * MATH_NEG_LOG_F32 takes float32 values; out may be x). Tuned for a CPU whose gathers are fast,
 * so that the table lookups are gathers (generic tuning loads each lane alone); the tuning
 * changes the instructions' choice and order, not the arithmetic. Not inlined: the scan calls
 * it on each chunk, and its copies there would lose the tuning. */
#if defined(K_X86) && VBYTES == 64
__attribute__((target("tune=icelake-server,prefer-vector-width=512")))
#elif defined(K_X86)
__attribute__((target("tune=haswell")))
#endif
__attribute__((noinline)) static void K(math_loop)(const double *x, double *out, Py_ssize_t n,
                                                   int op) {
    switch (op) {
    case MATH_LOG:
        for (Py_ssize_t i = 0; i < n; i++) out[i] = log_f64(x[i]);
        break;
    case MATH_NEG_LOG:
        for (Py_ssize_t i = 0; i < n; i++) out[i] = -log_f64(x[i]);
        break;
    case MATH_EXP:
        for (Py_ssize_t i = 0; i < n; i++) out[i] = exp_f64(x[i]);
        break;
    case MATH_LOG1P:
        for (Py_ssize_t i = 0; i < n; i++) out[i] = log1p_f64(x[i]);
        break;
    default: /* MATH_NEG_LOG_F32: x float32 values */
        for (Py_ssize_t i = 0; i < n; i++) out[i] = -log_f32in(x[i]);
    }
}

/* out[i] = f(x[i]) for float32 x and out, f NumPy's float32 log or exp (MATH32_LOG, MATH32_EXP;
 * see log_f32np): out may be x. */
__attribute__((noinline)) static void K(math32_loop)(const float *x, float *out, Py_ssize_t n,
                                                     int op) {
    if (op == MATH32_LOG)
        for (Py_ssize_t i = 0; i < n; i++) out[i] = log_f32np(x[i]);
    else
        for (Py_ssize_t i = 0; i < n; i++) out[i] = exp_f32np(x[i]);
}

/* ------------------------------------------------------------------- rows */

/* The row kernels take the buffers' types as constant flags (f64: float64 rows, else float32;
 * l64: int64 labels, else int32), so each call with literal flags inlines its own loop. A row
 * of k values is read one vector (L32 float32 or L64 float64 lanes) at a time; lanes past the
 * row are masked out. The last rows of a buffer may not be read past its end, so their final
 * partial vector is copied (`copy`). `nvec`: vectors per row when 1 or 2 (a constant, so the
 * loop unrolls), 0 for any. */

/* The lanes (-1) of a row's last vector that hold values: 1 to all of them. */
static INLINE K(i32v) K(tail32)(Py_ssize_t k) {
    K(i32v) lane;
    for (int i = 0; i < L32; i++) lane[i] = i < k - (k - 1) / L32 * L32 ? -1 : 0;
    return lane;
}
static INLINE K(i64v) K(tail64)(Py_ssize_t k) {
    K(i64v) lane;
    for (int i = 0; i < L64; i++) lane[i] = i < k - (k - 1) / L64 * L64 ? -1 : 0;
    return lane;
}

/* A row's last vector at p (count values left), zero past them. */
static INLINE K(f32v) K(last32)(const float *p, Py_ssize_t count, int copy, K(i32v) tail) {
    K(f32v) v;
    if (copy) {
        float part[L32] = {0};
        memcpy(part, p, (size_t)count * 4);
        memcpy(&v, part, VBYTES);
    } else {
        memcpy(&v, p, VBYTES);
    }
    return (K(f32v))((K(i32v))v & tail);
}
static INLINE K(f64v) K(last64)(const double *p, Py_ssize_t count, int copy, K(i64v) tail) {
    K(f64v) v;
    if (copy) {
        double part[L64] = {0};
        memcpy(part, p, (size_t)count * 8);
        memcpy(&v, part, VBYTES);
    } else {
        memcpy(&v, p, VBYTES);
    }
    return (K(f64v))((K(i64v))v & tail);
}

/* Whether each lane ranks above t, the value in column y: greater, or equal at a lower column
 * (argmax's order: the first of equal scores wins), and greater, or equal at a higher column
 * (MXNet's and scikit-learn's top-k order: the last of equal scores first). */
#define K_ABOVE_FIRST(v, t, column, y) ((v > t) | ((v == t) & (column < y)))
#define K_ABOVE_LAST(v, t, column, y) ((v > t) | ((v == t) & (column > y)))

/* One pass over a row, from the same loads: with `summed` (a constant) its float64 sum (in
 * partial sums, not in index order), and `bad` collects lanes not in [0, 1] (as unsigned
 * integers the bits of 0 <= p <= 1 are at most those of 1.0; negatives, -0.0 included, inf and
 * NaN are above); without, `bad` collects lanes that are not finite. With `ranked` (a
 * constant), also writes the rank of the value in column y (see class_ranks). `K(visit..)`
 * takes one vector of the row (`lanes`: the ones that hold values). */
typedef struct {
    K(f64v) sum;
    K(tally_t) above;
    int started;
} K(row_t);

static INLINE void K(visit32)(K(row_t) *row, K(f32v) v, K(i32v) lanes, const int wide,
                              K(i32v) *bad, const int summed, const int ranked, float t,
                              K(i32v) column, int32_t y) {
    if (summed) {
        *bad |= (K(i32v))((K(u32v))v > 0x3F800000U);
        K(f64v) w = wide ? K_WIDEN(v, 0) + K_WIDEN(v, 1) : K_WIDEN(v, 0);
        row->sum = row->started ? row->sum + w : w;
        row->started = 1;
    } else {
        *bad |= ((K(i32v))v & 0x7F800000) == 0x7F800000;
    }
    if (ranked)
        K(tally32)(&row->above, K_ABOVE_FIRST(v, t, column, y) & lanes,
                   K_ABOVE_LAST(v, t, column, y) & lanes);
}
static INLINE double K(row_pass32)(const float *p, Py_ssize_t k, int copy, K(i32v) tail,
                                   K(i32v) *bad, const int nvec, const int summed,
                                   const int ranked, int32_t y, K(i32v) lane, int64_t *rank) {
    K(row_t) row = {0};
    K(i32v) column = lane;
    const float t = ranked ? p[y] : 0;
    Py_ssize_t c = 0;
    for (int j = 0; nvec ? j < nvec - 1 : c + L32 < k; j++, c += L32, column += L32) {
        K(f32v) v;
        memcpy(&v, p + c, VBYTES);
        K(visit32)(&row, v, ~(K(i32v)){0}, 1, bad, summed, ranked, t, column, y);
    }
    K(f32v) v = K(last32)(p + c, k - c, copy, tail);
    K(visit32)(&row, v, tail, k - c > L64, bad, summed, ranked, t, column, y);
    if (ranked) K(tally_store)(&row.above, 0, rank);
    return summed ? K(sum_f64)(row.sum) : 0.0;
}

static INLINE void K(visit64)(K(row_t) *row, K(f64v) v, K(i64v) lanes, K(i64v) *bad,
                              const int summed, const int ranked, double t, K(i64v) column,
                              int64_t y) {
    if (summed) {
        *bad |= (K(i64v))((K(u64v))v > 0x3FF0000000000000ULL);
        row->sum = row->started ? row->sum + v : v;
        row->started = 1;
    } else {
        *bad |= ((K(i64v))v & 0x7FF0000000000000LL) == 0x7FF0000000000000LL;
    }
    if (ranked)
        K(tally64)(&row->above, K_ABOVE_FIRST(v, t, column, y) & lanes,
                   K_ABOVE_LAST(v, t, column, y) & lanes);
}
static INLINE double K(row_pass64)(const double *p, Py_ssize_t k, int copy, K(i64v) tail,
                                   K(i64v) *bad, const int nvec, const int summed,
                                   const int ranked, int64_t y, K(i64v) lane, int64_t *rank) {
    K(row_t) row = {0};
    K(i64v) column = lane;
    const double t = ranked ? p[y] : 0;
    Py_ssize_t c = 0;
    for (int j = 0; nvec ? j < nvec - 1 : c + L64 < k; j++, c += L64, column += L64) {
        K(f64v) v;
        memcpy(&v, p + c, VBYTES);
        K(visit64)(&row, v, ~(K(i64v)){0}, bad, summed, ranked, t, column, y);
    }
    K(f64v) v = K(last64)(p + c, k - c, copy, tail);
    K(visit64)(&row, v, tail, bad, summed, ranked, t, column, y);
    if (ranked) K(tally_store)(&row.above, 1, rank);
    return summed ? K(sum_f64)(row.sum) : 0.0;
}

/* ----------------------------------------------------------------- scans */

typedef struct {
    K(i64v) far_a, far_b, zeros, ones;
} K(counts_t);

/* L64 rows of a chunk (the lanes of `valid`): sums s, true-class probabilities p. */
static INLINE int K(count)(K(f64v) s, K(f64v) p, K(i64v) valid, Py_ssize_t first_row,
                           const scan_args_t *a, double margin, double quiet, scan_t *r,
                           K(counts_t) *c) {
    const K(u64v) magnitude = (K(u64v)){0} + 0x7FFFFFFFFFFFFFFFULL;
    K(f64v) distance = (K(f64v))((K(u64v))(s - 1.0) & magnitude);
    if (!K(any_i64)(valid & ((distance >= quiet) | (p == 0.0) | (p == 1.0)))) return 1;
    K(f64v) da = distance - a->tol_a, db = distance - a->tol_b;
    K(i64v) unsure = (((K(f64v))((K(u64v))da & magnitude) <= margin) |
                      ((K(f64v))((K(u64v))db & magnitude) <= margin)) &
                     valid;
    if (K(any_i64)(unsure)) {
        for (int l = 0; l < L64; l++)
            if (unsure[l] && !add_unsure(r, first_row + l)) return 0;
    }
    K(i64v) sure = valid & ~unsure;
    c->far_a -= (da > 0) & sure;
    c->far_b -= (db > 0) & sure;
    c->zeros -= (p == 0.0) & valid;
    c->ones -= (p == 1.0) & valid;
    return 1;
}

/* The counts of a chunk of m rows (see CHUNK). */
static INLINE int K(count_chunk)(const double *sums, const double *picked, Py_ssize_t m,
                                 Py_ssize_t first_row, const scan_args_t *a, double margin,
                                 double quiet, scan_t *r) {
    K(counts_t) c = {{0}, {0}, {0}, {0}};
    const K(i64v) all = (K(i64v)){0} - 1;
    Py_ssize_t j = 0;
    for (; j + L64 <= m; j += L64) {
        K(f64v) s, p;
        memcpy(&s, sums + j, VBYTES);
        memcpy(&p, picked + j, VBYTES);
        if (!K(count)(s, p, all, first_row + j, a, margin, quiet, r, &c)) return 0;
    }
    if (j < m) {
        K(f64v) s = {0}, p = {0};
        K(i64v) valid;
        memcpy(&s, sums + j, (size_t)(m - j) * 8);
        memcpy(&p, picked + j, (size_t)(m - j) * 8);
        for (int l = 0; l < L64; l++) valid[l] = l < m - j ? -1 : 0;
        if (!K(count)(s, p, valid, first_row + j, a, margin, quiet, r, &c)) return 0;
    }
    r->far_a += K(sum_i64)(c.far_a), r->far_b += K(sum_i64)(c.far_b);
    r->zeros += K(sum_i64)(c.zeros), r->ones += K(sum_i64)(c.ones);
    return 1;
}

/* Float32 rows of at most L32 values, L32 rows at a time: the rows' float32 sums by a tree of
 * lane shuffles across the rows (log2(L32) levels of two shuffles and one addition per pair of
 * vectors) instead of a reduction per row. The sums are then within log2(L32) roundings of
 * float32 of the exact sums (values in [0, 1]), which `K_TREE_MARGIN` adds to the margin.
 * GCC's __builtin_shuffle takes the computed (constant-folded) masks; other compilers take the
 * row-by-row path. */
#if defined(__GNUC__) && !defined(__clang__)
#define K_TREE 1
#define K_TREE_MARGIN (4.0 * (L32 == 16 ? 4 : L32 == 8 ? 3 : 2) * 0x1p-24)

/* Lane i of a combination of vectors holding groups of g lanes per row: the first (second,
 * s = 1) half of each group of the first vector, then that of the second vector. */
#define K_TREE_LANE(i, g, s)                                                                \
    ((i) / (g) * (g) + (i) % (g) +                                                          \
     ((i) % (g) < (g) / 2 ? 0 : L32 - (g) / 2) + (s) * ((g) / 2))
#if VBYTES == 64
#define K_TREE_MASK(g, s)                                                                   \
    ((K(i32v)){K_TREE_LANE(0, g, s), K_TREE_LANE(1, g, s), K_TREE_LANE(2, g, s),             \
               K_TREE_LANE(3, g, s), K_TREE_LANE(4, g, s), K_TREE_LANE(5, g, s),             \
               K_TREE_LANE(6, g, s), K_TREE_LANE(7, g, s), K_TREE_LANE(8, g, s),             \
               K_TREE_LANE(9, g, s), K_TREE_LANE(10, g, s), K_TREE_LANE(11, g, s),           \
               K_TREE_LANE(12, g, s), K_TREE_LANE(13, g, s), K_TREE_LANE(14, g, s),          \
               K_TREE_LANE(15, g, s)})
#elif VBYTES == 32
#define K_TREE_MASK(g, s)                                                                   \
    ((K(i32v)){K_TREE_LANE(0, g, s), K_TREE_LANE(1, g, s), K_TREE_LANE(2, g, s),             \
               K_TREE_LANE(3, g, s), K_TREE_LANE(4, g, s), K_TREE_LANE(5, g, s),             \
               K_TREE_LANE(6, g, s), K_TREE_LANE(7, g, s)})
#else
#define K_TREE_MASK(g, s)                                                                   \
    ((K(i32v)){K_TREE_LANE(0, g, s), K_TREE_LANE(1, g, s), K_TREE_LANE(2, g, s),             \
               K_TREE_LANE(3, g, s)})
#endif
/* One level of the tree: pairs of vectors with groups of g lanes per row become vectors with
 * groups of g / 2, half as many. */
#define K_TREE_LEVEL(v, count, g)                                                           \
    do {                                                                                    \
        _Pragma("GCC unroll 16") for (int q = 0; q < (count) / 2; q++) v[q] =               \
            __builtin_shuffle(v[2 * q], v[2 * q + 1], K_TREE_MASK(g, 0)) +                  \
            __builtin_shuffle(v[2 * q], v[2 * q + 1], K_TREE_MASK(g, 1));                   \
    } while (0)

/* The tree leaves row r's sum in lane bitrev(r), so row bitrev(r) is put in leaf r. */
static INLINE int K(bitrev)(int r) {
    int out = 0;
    for (int bit = 1; bit < L32; bit <<= 1) out = (out << 1) | ((r & bit) != 0);
    return out;
}

/* The L32 rows 4 blocks on from row i0, fetched ahead: rows just decoded are mostly not in
 * this core's caches, and the scans waited on them. A prefetch past the buffer's end is
 * harmless. */
static INLINE void K(fetch_ahead)(const float *pred, Py_ssize_t i0, Py_ssize_t k) {
    const Py_ssize_t block = L32 * k * (Py_ssize_t)sizeof(float);
    const uintptr_t ahead = (uintptr_t)(pred + i0 * k) + (uintptr_t)(4 * block);
    for (Py_ssize_t b = 0; b < block; b += 64) __builtin_prefetch((const void *)(ahead + b));
}

/* Rows i0 .. i0+L32-1 (all readable in whole vectors): like row_pass32 with `summed`, their
 * sums to sums[0 ..], p[y] to picks[0 ..] (and to picked32[i] if not NULL), and with `ranked`
 * their ranks. 0 at a label that is not a class index or is ignored. */
static INLINE int K(block32)(const float *pred, const void *labels, const int l64,
                             Py_ssize_t i0, Py_ssize_t k, long long ignore, K(i32v) tail,
                             K(i32v) *bad, const int ranked, K(i32v) lane, int64_t *ranks,
                             double *sums, double *picks, float *picked32) {
    K(f32v) v[L32];
    K(fetch_ahead)(pred, i0, k);
#pragma GCC unroll 16
    for (int r = 0; r < L32; r++) {
        const Py_ssize_t i = i0 + r;
        const int64_t y = label_at(labels, l64, i);
        if ((uint64_t)y >= (uint64_t)k || y == ignore) return 0;
        const float *row = pred + i * k;
        K(f32v) x;
        memcpy(&x, row, VBYTES);
        x = (K(f32v))((K(i32v))x & tail);
        const float p = row[y];
        K(row_t) one = {0};  /* its float64 sum is unused (the tree sums): dropped */
        K(visit32)(&one, x, tail, 0, bad, 1, ranked, p, lane, (int32_t)y);
        if (ranked) K(tally_store)(&one.above, 0, ranks + 2 * i);
        picks[r] = (double)p;
        if (picked32) picked32[i] = p;
        v[K(bitrev)(r)] = x;
    }
#if VBYTES == 64
    K_TREE_LEVEL(v, 16, 16);
#endif
#if VBYTES >= 32
    K_TREE_LEVEL(v, 8, 8);
#endif
    K_TREE_LEVEL(v, 4, 4);
    K_TREE_LEVEL(v, 2, 2);
    const K(f64v) low = K_WIDEN(v[0], 0), high = K_WIDEN(v[0], 1);
    memcpy(sums, &low, VBYTES);
    memcpy(sums + L64, &high, VBYTES);
    return 1;
}
#else
#define K_TREE 0
#define K_TREE_MARGIN 0.0
#endif

/* ------------------------------------------------------------------ losses */

/* probability p under guard `guard` (a constant: GUARD_..., not GUARD_LOG_CLAMP), and whether
 * the guard changed it, as functional/_ce_core.guarded computes them, in T. */
#define K_GUARD(T, p, guard, eps, hi, changed)                                                \
    do {                                                                                    \
        T g_ = p;                                                                           \
        if (guard == GUARD_CLIP || guard == GUARD_CLIP_ADD) g_ = p < eps ? eps : p > hi ? hi : p; \
        if (guard == GUARD_FLOOR) g_ = p < eps ? eps : p;                                   \
        if (guard == GUARD_ADD || guard == GUARD_CLIP_ADD) g_ = g_ + eps;                   \
        *changed = g_ != p;                                                                 \
        p = g_;                                                                             \
    } while (0)
static INLINE float K(guard32)(float p, const int guard, float eps, float hi, float floor,
                               int32_t *changed) {
    (void)floor;
    K_GUARD(float, p, guard, eps, hi, changed);
    return p;
}
static INLINE double K(guard64)(double p, const int guard, double eps, double hi, double floor,
                                int32_t *changed) {
    (void)floor;
    K_GUARD(double, p, guard, eps, hi, changed);
    return p;
}

/* log of probability p under guard `guard` (a constant: GUARD_...), and whether the guard
 * changed p (its log, for GUARD_LOG_CLAMP), as functional/_ce_core.guarded_log computes them for
 * p in [0, 1]: float32 (NumPy's float32 log, log_f32np) and float64 (log_f64). */
static INLINE float K(guard_log32)(float p, const int guard, float eps, float hi, float floor,
                                   int32_t *changed) {
    if (guard == GUARD_LOG_CLAMP) {
        const float raw = log_f32np(p);
        *changed = raw < floor;
        return raw < floor ? floor : raw; /* np.maximum(raw, floor): raw is not NaN */
    }
    return log_f32np(K(guard32)(p, guard, eps, hi, floor, changed));
}
static INLINE double K(guard_log64)(double p, const int guard, double eps, double hi,
                                    double floor, int32_t *changed) {
    if (guard == GUARD_LOG_CLAMP) {
        const double raw = log_f64(p);
        *changed = raw < floor;
        return raw < floor ? floor : raw;
    }
    return log_f64(K(guard64)(p, guard, eps, hi, floor, changed));
}
#undef K_GUARD

/* x[i] = the guarded log of probability x[i] (GUARD_LOGS) or the guarded probability (GUARDS:
 * not GUARD_LOG_CLAMP), for i < n, in place; the number of values the guard changed. One vector
 * loop per guard (the guard a constant in each). */
#define K_GUARD_LOGS(T, GUARD_LOG, EPS, HI, FLOOR)                                            \
    do {                                                                                    \
        switch (loss->guard) {                                                              \
        case GUARD_NONE: K_GUARD_LOOP(T, GUARD_LOG, GUARD_NONE, EPS, HI, FLOOR); break;     \
        case GUARD_CLIP: K_GUARD_LOOP(T, GUARD_LOG, GUARD_CLIP, EPS, HI, FLOOR); break;     \
        case GUARD_ADD: K_GUARD_LOOP(T, GUARD_LOG, GUARD_ADD, EPS, HI, FLOOR); break;       \
        case GUARD_CLIP_ADD: K_GUARD_LOOP(T, GUARD_LOG, GUARD_CLIP_ADD, EPS, HI, FLOOR); break; \
        case GUARD_FLOOR: K_GUARD_LOOP(T, GUARD_LOG, GUARD_FLOOR, EPS, HI, FLOOR); break;   \
        default: K_GUARD_LOOP(T, GUARD_LOG, GUARD_LOG_CLAMP, EPS, HI, FLOOR);               \
        }                                                                                   \
    } while (0)
#define K_GUARD_LOOP(T, GUARD_LOG, GUARD, EPS, HI, FLOOR)                                    \
    for (Py_ssize_t i = 0; i < n; i++) {                                                    \
        int32_t ch;                                                                         \
        x[i] = GUARD_LOG(x[i], GUARD, EPS, HI, FLOOR, &ch);                                 \
        changed += ch;                                                                      \
    }
#define K_GUARDED(NAME, T, GUARD_LOG)                                                        \
    __attribute__((noinline)) static Py_ssize_t NAME(T *x, Py_ssize_t n, const loss_t *loss) { \
        const T eps = (T)loss->eps, hi = (T)loss->hi, floor = (T)loss->floor;              \
        Py_ssize_t changed = 0;                                                             \
        K_GUARD_LOGS(T, GUARD_LOG, eps, hi, floor);                                         \
        return changed;                                                                     \
    }
K_GUARDED(K(guard_logs32), float, K(guard_log32))
K_GUARDED(K(guard_logs64), double, K(guard_log64))
K_GUARDED(K(guards32), float, K(guard32))
K_GUARDED(K(guards64), double, K(guard64))
#undef K_GUARDED
#undef K_GUARD_LOGS
#undef K_GUARD_LOOP

/* -log of m <= CHUNK true-class probabilities `picks` (float64 holding values of the
 * arithmetic's dtype; float32 values with `f32in`) under the loss's guard, to o64 (float64; it
 * may be picks) or o32 (float32); the number the guard changed. */
static Py_ssize_t K(picked_loss)(const loss_t *loss, const double *picks, Py_ssize_t m,
                                 double *o64, float *o32, const int f32in) {
    if (loss->guard == GUARD_NONE && !loss->f32 && o64 == picks) { /* -log_f64: math_loop's */
        K(math_loop)(picks, o64, m, f32in ? MATH_NEG_LOG_F32 : MATH_NEG_LOG);
        return 0;
    }
    Py_ssize_t changed;
    if (loss->f32) {
        float x[CHUNK];
        for (Py_ssize_t j = 0; j < m; j++) x[j] = (float)picks[j];
        changed = K(guard_logs32)(x, m, loss);
        if (o64)
            for (Py_ssize_t j = 0; j < m; j++) o64[j] = (double)-x[j];
        else
            for (Py_ssize_t j = 0; j < m; j++) o32[j] = -x[j];
    } else {
        double x[CHUNK];
        for (Py_ssize_t j = 0; j < m; j++) x[j] = picks[j];
        changed = K(guard_logs64)(x, m, loss);
        for (Py_ssize_t j = 0; j < m; j++) o64[j] = -x[j];
    }
    return changed;
}

#if K_TREE
/* Lane c of the two halves of stage d of a transpose of L32 x L32 values (rows r and r + d,
 * r without bit d, exchange the lanes whose bit d differs from the row's). */
#define K_TR_A(c, d) (((c) & (d)) ? L32 + (c) - (d) : (c))
#define K_TR_B(c, d) (((c) & (d)) ? L32 + (c) : (c) + (d))
#if VBYTES == 64
#define K_TR_MASK(F, d)                                                                     \
    ((K(i32v)){F(0, d), F(1, d), F(2, d), F(3, d), F(4, d), F(5, d), F(6, d), F(7, d),      \
               F(8, d), F(9, d), F(10, d), F(11, d), F(12, d), F(13, d), F(14, d), F(15, d)})
#elif VBYTES == 32
#define K_TR_MASK(F, d)                                                                     \
    ((K(i32v)){F(0, d), F(1, d), F(2, d), F(3, d), F(4, d), F(5, d), F(6, d), F(7, d)})
#else
#define K_TR_MASK(F, d) ((K(i32v)){F(0, d), F(1, d), F(2, d), F(3, d)})
#endif
#define K_TR_STAGE(v, d)                                                                    \
    do {                                                                                    \
        _Pragma("GCC unroll 16") for (int r = 0; r < L32; r++) if (!(r & (d))) {           \
            const K(f32v) a_ = v[r], b_ = v[r + (d)];                                       \
            v[r] = __builtin_shuffle(a_, b_, K_TR_MASK(K_TR_A, d));                         \
            v[r + (d)] = __builtin_shuffle(a_, b_, K_TR_MASK(K_TR_B, d));                   \
        }                                                                                   \
    } while (0)

static INLINE K(f32v) K(select32)(K(i32v) m, K(f32v) a, K(f32v) b) {
    return (K(f32v))((m & (K(i32v))a) | (~m & (K(i32v))b));
}
/* The smaller of a and b, lane by lane (neither NaN). */
static INLINE K(f32v) K(min32)(K(f32v) a, K(f32v) b) {
#if VBYTES == 64 && defined(K_X86)
    return (K(f32v))_mm512_min_ps((__m512)a, (__m512)b);
#elif VBYTES == 32 && defined(K_X86)
    return (K(f32v))_mm256_min_ps((__m256)a, (__m256)b);
#else
    return K(select32)(a < b, a, b);
#endif
}
/* The larger of a and b, lane by lane (neither NaN). */
static INLINE K(f32v) K(max32)(K(f32v) a, K(f32v) b) {
#if VBYTES == 64 && defined(K_X86)
    return (K(f32v))_mm512_max_ps((__m512)a, (__m512)b);
#elif VBYTES == 32 && defined(K_X86)
    return (K(f32v))_mm256_max_ps((__m256)a, (__m256)b);
#else
    return K(select32)(a > b, a, b);
#endif
}

/* Rows i0 .. i0+L32-1 (all readable in whole vectors) of at most L32 values, for K_AFTER with
 * guard `guard` (a constant): lane r of the results is row i0 + r. Their p[y] to picks, their
 * float32 sums by halving (within K_TREE_MARGIN of any order's) to sums, their largest guarded
 * value to top and the halving sum of their guarded values over it to total; `bad` collects
 * values not in [0, 1]. `half` (a constant): k >= L32 / 2. Returns the values the guard
 * changed, negated, by lane. The rows are
 * transposed in registers (log2(L32) stages of two-vector shuffles), so that each step after
 * runs along L32 rows at once. *ok = 0 at a label that is not a class index or is ignored. */
static INLINE K(i32v) K(after_block32)(const float *pred, const void *labels, const int l64,
                                        Py_ssize_t i0, Py_ssize_t k, long long ignore,
                                        K(i32v) tail, K(i32v) *bad, const int guard,
                                        const int half,
                                        const loss_t *loss, double *sums, double *picks,
                                        float *top, float *total, int *ok) {
    K(f32v) v[L32];
    K(fetch_ahead)(pred, i0, k);
#pragma GCC unroll 16
    for (int r = 0; r < L32; r++) {
        const Py_ssize_t i = i0 + r;
        const int64_t y = label_at(labels, l64, i);
        if ((uint64_t)y >= (uint64_t)k || y == ignore) {
            *ok = 0;
            return (K(i32v)){0};
        }
        const float *row = pred + i * k;
        memcpy(&v[r], row, VBYTES);
        v[r] = (K(f32v))((K(i32v))v[r] & tail);
        *bad |= (K(i32v))((K(u32v))v[r] > 0x3F800000U);
        picks[r] = (double)row[y];
    }
#if VBYTES == 64
    K_TR_STAGE(v, 8);
#endif
#if VBYTES >= 32
    K_TR_STAGE(v, 4);
#endif
    K_TR_STAGE(v, 2);
    K_TR_STAGE(v, 1);
    /* v[c]: column c of the rows, zeros past k. Every step runs over all L32 columns (so that
     * they stay in registers), the guard's zeros past k reset to zeros: a zero added by the
     * halving leaves a sum as it is, so halving L32 columns is halving k. */
    K(f32v) raw[L32 / 2]; /* the rows' sums, by halving, before the guard (fewer live vectors) */
#pragma GCC unroll 16
    for (int c = 0; c < L32 / 2; c++) raw[c] = v[c] + v[c + L32 / 2];
#pragma GCC unroll 16
    for (int width = L32 / 4; width > 0; width /= 2)
#pragma GCC unroll 16
        for (int c = 0; c < width; c++) raw[c] = raw[c] + raw[c + width];
    const K(f64v) low = K_WIDEN(raw[0], 0), high = K_WIDEN(raw[0], 1);
    memcpy(sums, &low, VBYTES);
    memcpy(sums + L64, &high, VBYTES);
    K(i32v) count = {0};
    const K(f32v) eps = (K(f32v)){0} + (float)loss->eps, hi = (K(f32v)){0} + (float)loss->hi;
#pragma GCC unroll 16
    for (int c = 0; c < L32; c++) {
        const K(f32v) x = v[c];
        /* a mask, not a branch (v stays in registers); all ones, folded, below k >= half */
        const K(i32v) on = (K(i32v)){0} - ((half && c < L32 / 2) || c < k);
        K(f32v) g = x; /* x is not NaN: max and min are the scalar guard's comparisons */
        if (guard == GUARD_CLIP || guard == GUARD_CLIP_ADD) g = K(min32)(K(max32)(x, eps), hi);
        if (guard == GUARD_FLOOR) g = K(max32)(x, eps);
        if (guard == GUARD_ADD || guard == GUARD_CLIP_ADD) g = g + eps;
        count += (K(i32v))(g != x) & on;
        v[c] = (K(f32v))((K(i32v))g & on);
    }
    K(f32v) tops[L32 / 2]; /* the rows' largest value, by halving (a short chain) */
#pragma GCC unroll 16
    for (int c = 0; c < L32 / 2; c++) tops[c] = K(max32)(v[c], v[c + L32 / 2]);
#pragma GCC unroll 16
    for (int width = L32 / 4; width > 0; width /= 2)
#pragma GCC unroll 16
        for (int c = 0; c < width; c++) tops[c] = K(max32)(tops[c], tops[c + width]);
    const K(f32v) most = tops[0];
#pragma GCC unroll 16
    for (int c = 0; c < L32; c++)
        if (c < k) v[c] = v[c] / most;
#pragma GCC unroll 16
    for (int width = L32 / 2; width > 0; width /= 2)
#pragma GCC unroll 16
        for (int c = 0; c < width; c++) v[c] = v[c] + v[c + width];
    memcpy(top, &most, VBYTES);
    memcpy(total, &v[0], VBYTES);
    return count;
}
#undef K_TR_STAGE
#undef K_TR_MASK
#undef K_TR_A
#undef K_TR_B
#endif

/* The loss of every row renormalised after the guard (keras' rule for class indices), as
 * categorical_rows computes it (see _ce_core.renormalised_nll): G = each guarded value, top =
 * the row's max, total = the sum of G / top by halving (P the least power of two >= k, the row
 * padded with zeros to P, each half added to the other until one value is left:
 * _ce_core.halving_sum's order), loss = -((log G[y] - log top) - log(0 + total)), float32
 * (NumPy's float32 log) or float64.
 *
 * Rows of at most 128 values are held column by column (value c of row i at c m + i, m <= CHUNK)
 * so that every step runs along the rows in vectors: float32 rows of at most L32 values are
 * transposed L32 rows at a time in registers (K(after_block32)), the others copied value by
 * value. With `fused` it is also the scan (sparse_scan's checks and counts, without ranks; the
 * rows' sums are taken within `margin` of any order's), so the batch is read once. Longer rows
 * go row by row (after a scan). The same arithmetic in the same order either way. 1 clean, 0
 * not (the losses are then unspecified), -1 out of memory. */
#define K_AFTER(T, F32, LOG, LOG_NORMAL, GUARD, GUARDS, ZERO)                               \
    do {                                                                                    \
        const Py_ssize_t n = a->n, k = a->k, cols = k <= 128;                                 \
        Py_ssize_t rows = cols ? (AFTER_BLOCK / k < CHUNK ? AFTER_BLOCK / k : CHUNK)          \
                               : (k >= AFTER_BLOCK ? 1 : AFTER_BLOCK / k);                  \
        rows = n < rows ? (n > 0 ? n : 1) : rows;                                           \
        T *L = malloc((size_t)(rows * k + 4 * rows) * sizeof(T) + 2 * CHUNK * sizeof(double)); \
        if (!L) return -1;                                                                  \
        T *S = L + rows * k, *R = S + rows, *top = R + rows;                                \
        double *sums = (double *)(top + rows), *picks = sums + CHUNK;                       \
        const double low = a->tol_a < a->tol_b ? a->tol_a : a->tol_b;                       \
        const int l64 = a->labels_i64, f64 = a->pred_f64;                                   \
        const float *const p32 = (const float *)a->pred;                                    \
        const double *const p64 = (const double *)a->pred;                                  \
        const T eps = (T)a->loss->eps, hi = (T)a->loss->hi, floor = (T)a->loss->floor;      \
        const int guard = a->loss->guard;                                                   \
        /* the guarded values are at least eps, a normal number (clean rows: at most 1 + eps), \
         * so each row's top, p[y] and sum of ratios (in [1, k]) are positive and normal */  \
        const int normal = guard != GUARD_NONE && eps >= (F32 ? (T)0x1p-126f : (T)0x1p-1022); \
        /* float32 rows of at most L32 values: L32 rows at a time, transposed in registers */ \
        const int blocks = K_TREE && F32 && !f64 && k <= L32;                                \
        const Py_ssize_t copy_n = blocks ? copy_from(n, k, L32) : 0;                        \
        const double margin = a->margin + (blocks ? K_TREE_MARGIN : 0.0);                   \
        const double quiet = low > 4 * margin ? low - 2 * margin : 0.0;                     \
        K(i32v) bad32 = {0}, changed32 = {0};                                               \
        const K(i32v) tail = K(tail32)(k);                                                  \
        (void)bad32, (void)changed32, (void)tail, (void)floor;                              \
        int outside = 0;                                                                    \
        for (Py_ssize_t base = 0; base < n; base += rows) {                                 \
            const Py_ssize_t m = n - base < rows ? n - base : rows, len = m * k;            \
            Py_ssize_t done = 0; /* rows whose top, R and sums the blocks wrote */          \
            K_AFTER_BLOCKS(T);                                                              \
            for (Py_ssize_t i = done; i < m; i++) {                                         \
                const int64_t y = label_at(a->labels, l64, base + i);                       \
                if ((uint64_t)y >= (uint64_t)k || y == a->ignore) {                         \
                    free(L);                                                                \
                    return 0;                                                               \
                }                                                                           \
                picks[i] = f64 ? p64[(base + i) * k + y] : (double)p32[(base + i) * k + y]; \
            }                                                                               \
            /* the other rows, column by column (or as they are) */                         \
            const Py_ssize_t left = m - done, step = cols ? left : 1, stride = cols ? 1 : k; \
            T *const G = L + done * k;                                                      \
            if (!cols) {                                                                    \
                for (Py_ssize_t j = 0; j < len; j++)                                        \
                    G[j] = f64 && !F32 ? (T)p64[base * k + j] : (T)p32[base * k + j];       \
            } else if (f64 && !F32) {                                                       \
                for (Py_ssize_t c = 0; c < k; c++)                                          \
                    for (Py_ssize_t i = 0; i < left; i++)                                   \
                        G[c * left + i] = (T)p64[(base + done + i) * k + c];                \
            } else {                                                                        \
                for (Py_ssize_t c = 0; c < k; c++)                                          \
                    for (Py_ssize_t i = 0; i < left; i++)                                   \
                        G[c * left + i] = (T)p32[(base + done + i) * k + c];                \
            }                                                                               \
            if (fused && left) {                                                            \
                for (Py_ssize_t i = 0; i < left; i++) sums[done + i] = (double)G[i];        \
                for (Py_ssize_t c = 1; c < k; c++)                                          \
                    for (Py_ssize_t i = 0; i < left; i++) sums[done + i] += (double)G[c * left + i]; \
                if (f64 && !F32) {                                                          \
                    for (Py_ssize_t j = 0; j < left * k; j++)                               \
                        outside |= ((const uint64_t *)G)[j] > 0x3FF0000000000000ULL;        \
                } else {                                                                    \
                    for (Py_ssize_t j = 0; j < left * k; j++)                               \
                        outside |= f32_to_bits((float)G[j]) > 0x3F800000U;                  \
                }                                                                           \
            }                                                                               \
            if (left) {                                                                     \
                const Py_ssize_t span = left * k;                                           \
                r->guarded += GUARDS(G, span, a->loss);                                     \
                for (Py_ssize_t i = 0; i < left; i++) top[done + i] = G[i * stride];        \
                for (Py_ssize_t c = 1; c < k; c++)                                          \
                    for (Py_ssize_t i = 0; i < left; i++) {                                 \
                        const T g = G[c * step + i * stride];                               \
                        top[done + i] = g > top[done + i] ? g : top[done + i];              \
                    }                                                                       \
                for (Py_ssize_t c = 0; c < k; c++)                                          \
                    for (Py_ssize_t i = 0; i < left; i++)                                   \
                        G[c * step + i * stride] = G[c * step + i * stride] / top[done + i]; \
                Py_ssize_t live = k, width = 1;                                             \
                while (width < live) width *= 2;                                            \
                while (width > 1) {                                                         \
                    width /= 2;                                                             \
                    for (Py_ssize_t c = 0; c + width < live; c++)                           \
                        for (Py_ssize_t i = 0; i < left; i++)                               \
                            G[c * step + i * stride] += G[(c + width) * step + i * stride]; \
                    live = width;                                                           \
                }                                                                           \
                for (Py_ssize_t i = 0; i < left; i++) R[done + i] = G[i * stride];          \
            }                                                                               \
            if (fused && !K(count_chunk)(sums, picks, m, base, a, margin, quiet, r)) {      \
                free(L);                                                                    \
                return -1;                                                                  \
            }                                                                               \
            for (Py_ssize_t i = 0; i < m; i++) {                                            \
                int32_t ch;                                                                 \
                S[i] = GUARD((T)picks[i], guard, eps, hi, floor, &ch);                      \
            }                                                                               \
            if (normal) { /* every value positive, normal and finite: no special case */    \
                for (Py_ssize_t i = 0; i < m; i++) R[i] = LOG_NORMAL(ZERO + R[i]);          \
                for (Py_ssize_t i = 0; i < m; i++) S[i] = LOG_NORMAL(S[i]);                 \
                for (Py_ssize_t i = 0; i < m; i++) top[i] = LOG_NORMAL(top[i]);             \
            } else {                                                                        \
                for (Py_ssize_t i = 0; i < m; i++) R[i] = LOG(ZERO + R[i]);                 \
                for (Py_ssize_t i = 0; i < m; i++) S[i] = LOG(S[i]);                        \
                for (Py_ssize_t i = 0; i < m; i++) top[i] = LOG(top[i]);                    \
            }                                                                               \
            for (Py_ssize_t i = 0; i < m; i++) S[i] = S[i] - top[i];                        \
            if (a->picked_f64)                                                              \
                for (Py_ssize_t i = 0; i < m; i++)                                          \
                    ((double *)a->picked)[base + i] = (double)-(S[i] - R[i]);               \
            else                                                                            \
                for (Py_ssize_t i = 0; i < m; i++)                                          \
                    ((float *)a->picked)[base + i] = (float)-(S[i] - R[i]);                 \
        }                                                                                   \
        free(L);                                                                            \
        r->guarded -= K(sum_i32)(changed32);                                                \
        if (K(sum_i32)(bad32)) outside = 1;                                                 \
        return outside == 0;                                                                \
    } while (0)

/* The rows of a block that K(after_block32) takes (float32, at most L32 values, readable in
 * whole vectors), one call per guard so that the guard is a constant in each. */
#if K_TREE
#define K_AFTER_ONE(G_)                                                                     \
    if (k >= L32 / 2)                                                                       \
        K_AFTER_LOOP(G_, 1)                                                                 \
    else                                                                                    \
        K_AFTER_LOOP(G_, 0)
#define K_AFTER_LOOP(G_, HALF_)                                                             \
    for (; done + L32 <= m && base + done + L32 <= copy_n; done += L32) {                   \
        int ok_ = 1;                                                                        \
        changed32 += K(after_block32)(p32, a->labels, l64, base + done, k, a->ignore, tail,  \
                                      &bad32, G_, HALF_, a->loss, sums + done, picks + done, \
                                      (float *)top + done, (float *)R + done, &ok_);        \
        if (!ok_) {                                                                         \
            free(L);                                                                        \
            return 0;                                                                       \
        }                                                                                   \
    }
#define K_AFTER_BLOCKS(T)                                                                   \
    if (blocks) {                                                                           \
        switch (guard) {                                                                    \
        case GUARD_NONE: K_AFTER_ONE(GUARD_NONE); break;                                    \
        case GUARD_CLIP: K_AFTER_ONE(GUARD_CLIP); break;                                    \
        case GUARD_ADD: K_AFTER_ONE(GUARD_ADD); break;                                      \
        case GUARD_CLIP_ADD: K_AFTER_ONE(GUARD_CLIP_ADD); break;                            \
        default: K_AFTER_ONE(GUARD_FLOOR);                                                  \
        }                                                                                   \
    }
#else
#define K_AFTER_BLOCKS(T)
#endif

static int K(after32)(const scan_args_t *a, scan_t *r, const int fused) {
    K_AFTER(float, 1, log_f32np, log_f32np_normal, K(guard32), K(guards32), 0.0f);
}
static int K(after64)(const scan_args_t *a, scan_t *r, const int fused) {
    K_AFTER(double, 0, log_f64, log_f64, K(guard64), K(guards64), 0.0);
}
#undef K_AFTER
#undef K_AFTER_BLOCKS
#undef K_AFTER_ONE
#undef K_AFTER_LOOP

/* The log-softmax pass of sparse_loss; `fused` (rows of at most 128 values only): it is the
 * scan too. */
static int K(after_loop)(const scan_args_t *a, scan_t *r, int fused) {
    return a->loss->f32 ? K(after32)(a, r, fused) : K(after64)(a, r, fused);
}

/* The scan: 1 clean, 0 not, -1 out of memory. A value outside [0, 1] is noticed at the end
 * (a dirty batch is rare and its results are discarded); a bad label at once, before it is
 * used as an index. */
static INLINE int K(scan_rows)(const scan_args_t *a, scan_t *r, const int f64, const int l64,
                               const int p64, const int nvec, const int ranked) {
    const Py_ssize_t n = a->n, k = a->k, copy_n = copy_from(n, k, f64 ? L64 : L32);
    const void *const labels = a->labels, *const pred = a->pred;
    void *const picked = a->picked;
    int64_t *const ranks = a->ranks;
    const K(i32v) tail32 = K(tail32)(k);
    const K(i64v) tail64 = K(tail64)(k);
    K(i32v) lane32;
    K(i64v) lane64;
    for (int i = 0; i < L32; i++) lane32[i] = i;
    for (int i = 0; i < L64; i++) lane64[i] = i;
    const long long ignore = a->ignore;
    K(i32v) outside32 = {0};
    K(i64v) outside64 = {0};
    double sums[CHUNK], own_picks[CHUNK];
    const int tree = K_TREE && !f64 && nvec == 1;
    const double margin = a->margin + (tree ? K_TREE_MARGIN : 0.0);
    /* Rows whose distance is below `quiet` are far below both tolerances (by 2 margins, not
     * 1, so that neither the rounding of `quiet` nor that of the differences to the
     * tolerances matters): `count` would find them neither far nor unsure, so unless their
     * p[y] is 0 or 1 a vector of such rows is skipped at once (most are). 0: no row is. */
    const double low = a->tol_a < a->tol_b ? a->tol_a : a->tol_b;
    const double quiet = low > 4 * margin ? low - 2 * margin : 0.0;
    for (Py_ssize_t base = 0; base < n; base += CHUNK) {
        const Py_ssize_t m = n - base < CHUNK ? n - base : CHUNK;
        double *picks = p64 ? (double *)picked + base : own_picks;
        Py_ssize_t j = 0;
#if K_TREE
        if (tree) {
            float *picked32 = p64 ? NULL : (float *)picked;
            for (; j + L32 <= m && base + j + L32 <= copy_n; j += L32)
                if (!K(block32)((const float *)pred, labels, l64, base + j, k, ignore, tail32,
                                &outside32, ranked, lane32, ranks, sums + j, picks + j, picked32))
                    return 0;
        }
#endif
        for (; j < m; j++) {
            const Py_ssize_t i = base + j;
            const int64_t y = label_at(labels, l64, i);
            if ((uint64_t)y >= (uint64_t)k || y == ignore) return 0;
            double p;
            if (f64) {
                const double *row = (const double *)pred + i * k;
                sums[j] = K(row_pass64)(row, k, i >= copy_n, tail64, &outside64, nvec, 1, ranked,
                                        y, lane64, ranks + 2 * i);
                p = row[y];
            } else {
                const float *row = (const float *)pred + i * k;
                sums[j] = K(row_pass32)(row, k, i >= copy_n, tail32, &outside32, nvec, 1, ranked,
                                        (int32_t)y, lane32, ranks + 2 * i);
                p = (double)row[y];
                if (!p64) ((float *)picked)[i] = (float)p;
            }
            picks[j] = p;
        }
        if (!K(count_chunk)(sums, picks, m, base, a, margin, quiet, r)) return -1;
        if (p64 && a->neg_log) /* the picks are in this core's cache now */
            K(math_loop)(picks, picks, m, f64 ? MATH_NEG_LOG : MATH_NEG_LOG_F32);
        if (a->loss && !a->loss->after) /* likewise */
            r->guarded += K(picked_loss)(a->loss, picks, m, p64 ? picks : NULL,
                                         p64 ? NULL : (float *)picked + base, !f64);
    }
    int64_t outside = 0;
    for (int i = 0; i < L32; i++) outside |= outside32[i];
    for (int i = 0; i < L64; i++) outside |= outside64[i];
    return outside == 0;
}

static INLINE int K(scan_shape)(const scan_args_t *a, scan_t *r, const int f64, const int l64,
                                const int p64) {
    const Py_ssize_t w = f64 ? L64 : L32;
    if (a->ranks) {
        return a->k <= w ? K(scan_rows)(a, r, f64, l64, p64, 1, 1)
                         : K(scan_rows)(a, r, f64, l64, p64, 0, 1);
    }
    return a->k <= w       ? K(scan_rows)(a, r, f64, l64, p64, 1, 0)
           : a->k <= 2 * w ? K(scan_rows)(a, r, f64, l64, p64, 2, 0)
                           : K(scan_rows)(a, r, f64, l64, p64, 0, 0);
}

static int K(scan_loop)(const scan_args_t *a, scan_t *r) {
    if (a->pred_f64) return a->labels_i64 ? K(scan_shape)(a, r, 1, 1, 1) : K(scan_shape)(a, r, 1, 0, 1);
    if (a->picked_f64) return a->labels_i64 ? K(scan_shape)(a, r, 0, 1, 1) : K(scan_shape)(a, r, 0, 0, 1);
    return a->labels_i64 ? K(scan_shape)(a, r, 0, 1, 0) : K(scan_shape)(a, r, 0, 0, 0);
}

/* ----------------------------------------------------------------- ranks */

/* The ranks: 1 done, 0 a label is not a class index or a value is not finite. */
static INLINE int K(rank_rows)(const void *pred, const void *labels, Py_ssize_t n,
                               Py_ssize_t k, int64_t *ranks, const int f64, const int l64,
                               const int nvec) {
    const Py_ssize_t copy_n = copy_from(n, k, f64 ? L64 : L32);
    const K(i32v) tail32 = K(tail32)(k);
    const K(i64v) tail64 = K(tail64)(k);
    K(i32v) lane32, inf_nan32 = {0};
    K(i64v) lane64, inf_nan64 = {0};
    for (int i = 0; i < L32; i++) lane32[i] = i;
    for (int i = 0; i < L64; i++) lane64[i] = i;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t y = label_at(labels, l64, i);
        if ((uint64_t)y >= (uint64_t)k) return 0;
        if (f64)
            K(row_pass64)((const double *)pred + i * k, k, i >= copy_n, tail64, &inf_nan64, nvec,
                          0, 1, y, lane64, ranks + 2 * i);
        else
            K(row_pass32)((const float *)pred + i * k, k, i >= copy_n, tail32, &inf_nan32, nvec,
                          0, 1, (int32_t)y, lane32, ranks + 2 * i);
    }
    int64_t bad = 0;
    for (int i = 0; i < L32; i++) bad |= inf_nan32[i];
    for (int i = 0; i < L64; i++) bad |= inf_nan64[i];
    return bad == 0;
}

static int K(rank_loop)(const void *pred, int f64, const void *labels, int l64, Py_ssize_t n,
                        Py_ssize_t k, int64_t *ranks) {
#define RANKS(F, L)                                                                         \
    (k <= (F ? L64 : L32)       ? K(rank_rows)(pred, labels, n, k, ranks, F, L, 1)          \
     : k <= 2 * (F ? L64 : L32) ? K(rank_rows)(pred, labels, n, k, ranks, F, L, 2)          \
                                : K(rank_rows)(pred, labels, n, k, ranks, F, L, 0))
    if (f64) return l64 ? RANKS(1, 1) : RANKS(1, 0);
    return l64 ? RANKS(0, 1) : RANKS(0, 0);
#undef RANKS
}

/* out[e][groups[c]][r] += values[c][e] * across[buckets[c]][r] for every cell c < n, entry
 * e < entries and replicate r < replicates (weigh_cells: the bootstrap's sum over a group's
 * cells of each cell's value times its bucket's weights; each product and sum an integer
 * times a common scale below 2**53, so exact in any order). A cell's weights are read once
 * for all its entries; a value of 0 adds nothing. */
static void K(weigh_loop)(const double *values, Py_ssize_t n, Py_ssize_t entries,
                          const int64_t *groups, const int64_t *buckets, const double *across,
                          Py_ssize_t replicates, double *out, Py_ssize_t size) {
    for (Py_ssize_t c = 0; c < n; c++) {
        const double *w = across + buckets[c] * replicates;
        for (Py_ssize_t e = 0; e < entries; e++) {
            const double v = values[c * entries + e];
            if (v == 0.0) continue;
            double *o = out + (e * size + groups[c]) * replicates;
            for (Py_ssize_t r = 0; r < replicates; r++) o[r] += v * w[r];
        }
    }
}

#undef L32
#undef L64
#undef K_PART
#undef K_HALVES
#undef K_TO16
#undef K_WIDEN
#undef K_TREE
#undef K_TREE_MARGIN
#undef K_TREE_LANE
#undef K_TREE_MASK
#undef K_TREE_LEVEL
#undef K_ABOVE_FIRST
#undef K_ABOVE_LAST
#undef K
#undef K_NAME
#undef K_JOIN
