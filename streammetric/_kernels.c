/* Fused hot loops of streammetric (internal): one pass over a batch instead of a dozen NumPy calls.
 *
 * exact_sum(values)                      exact sum of float64 values in units of 2**-1074
 * sparse_scan(pred, labels, picked, ...) the clean-batch pass of the cross-entropy family
 * class_ranks(pred, labels, ranks)       rank of the true class among each row's scores
 *
 * Every function reads any object with the buffer protocol (NumPy arrays), checks formats and
 * shapes, and answers None (or False) for input it does not handle, so the caller takes its
 * general NumPy path, which also writes the error messages. No libm calls: the logarithms stay
 * in NumPy, so every path gives the same bits. Compiled without -ffast-math: float arithmetic
 * here is IEEE, in the order written.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
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

/* ------------------------------------------------------------- exact sums */

/* The digits: digit j holds a signed multiple of 2**(32 j) units of 2**-1074. A finite float64
 * is m * 2**(e - 1) units, with m < 2**53 its significand and e its biased exponent (for
 * subnormals e = 1 and no implicit bit). Values are taken BATCH at a time: those within 2**64
 * of the batch's largest magnitude are summed in one 128-bit integer (in units of the smallest
 * of them: below BATCH * 2**117 in size), then added to the digits once; the others, and
 * batches with inf or NaN, go to the digits one by one. Digits are normalised after each
 * batch, so each absorbs less than 2**32 * (2 * BATCH + 2) between normalisations. */
#define DIGITS 70
#define BATCH 1024
#define SIGNIFICAND 0xfffffffffffffULL

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

/* Adds v * 2**s units (v unsigned). */
static inline void acc_add_unsigned(acc_t *a, uint64_t v, unsigned s) {
    unsigned j = s >> 5;
    unsigned __int128 t = (unsigned __int128)v << (s & 31); /* < 2**95 */
    a->d[j] += (int64_t)(uint32_t)t;
    a->d[j + 1] += (int64_t)(uint32_t)(t >> 32);
    a->d[j + 2] += (int64_t)(t >> 64);
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

static void acc_add_all(acc_t *a, const double *x, Py_ssize_t n) {
    for (Py_ssize_t start = 0; start < n; start += BATCH) {
        const Py_ssize_t stop = n - start < BATCH ? n : start + BATCH;
        uint64_t top = 0;
        for (Py_ssize_t i = start; i < stop; i++) {
            uint64_t bits;
            memcpy(&bits, x + i, 8);
            bits &= 0x7ff0000000000000ULL;
            top = bits > top ? bits : top;
        }
        const unsigned high = (unsigned)(top >> 52);
        if (high == 0x7ff || high <= 64) { /* inf or NaN, or nothing but tiny values */
            for (Py_ssize_t i = start; i < stop; i++) {
                uint64_t bits;
                memcpy(&bits, x + i, 8);
                acc_add_one(a, bits);
            }
        } else {
            const unsigned low = high - 64; /* >= 1: values from here are normal */
            unsigned __int128 sum = 0;   /* two's complement of a signed sum */
            for (Py_ssize_t i = start; i < stop; i++) {
                uint64_t bits;
                memcpy(&bits, x + i, 8);
                unsigned e = (unsigned)(bits >> 52) & 0x7ff;
                if (e < low) { /* zero, or tiny next to the batch's largest */
                    acc_add_one(a, bits);
                    continue;
                }
                int64_t m = (int64_t)((bits & SIGNIFICAND) | (1ULL << 52));
                int64_t sign = -(int64_t)(bits >> 63); /* 0 or -1: m ^ sign - sign negates */
                sum += (unsigned __int128)(__int128)((m ^ sign) - sign) << (e - low);
            }
            /* sum * 2**(low - 1) units: its low and (signed) high 64 bits */
            acc_add_unsigned(a, (uint64_t)sum, low - 1);
            acc_add_signed(a, (int64_t)(uint64_t)(sum >> 64), low - 1 + 64);
        }
        acc_normalise(a);
    }
}

/* The accumulator's value as a Python int (units of 2**-1074); after acc_normalise. */
static PyObject *acc_to_int(const acc_t *a) {
    const int64_t *d = a->d;
    unsigned char bytes[4 * (DIGITS - 1)];
    for (int j = 0; j < DIGITS - 1; j++) {
        uint32_t v = (uint32_t)d[j];
        bytes[4 * j] = v & 0xff;
        bytes[4 * j + 1] = (v >> 8) & 0xff;
        bytes[4 * j + 2] = (v >> 16) & 0xff;
        bytes[4 * j + 3] = (v >> 24) & 0xff;
    }
    PyObject *low = PyObject_CallMethod((PyObject *)&PyLong_Type, "from_bytes", "y#s",
                                        (const char *)bytes, (Py_ssize_t)sizeof(bytes), "little");
    if (!low || d[DIGITS - 1] == 0) return low;
    PyObject *top = PyLong_FromLongLong(d[DIGITS - 1]);
    PyObject *shift = PyLong_FromLong(32L * (DIGITS - 1));
    PyObject *high = (top && shift) ? PyNumber_Lshift(top, shift) : NULL;
    PyObject *sum = high ? PyNumber_Add(low, high) : NULL;
    Py_XDECREF(top); Py_XDECREF(shift); Py_XDECREF(high); Py_DECREF(low);
    return sum;
}

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
    acc_add_all(&a, x, n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *units = acc_to_int(&a);
    if (!units) return NULL;
    return Py_BuildValue("Nnnn", units, a.pos_inf, a.neg_inf, a.nan);
}

/* ------------------------------------------------------ categorical scans */

static inline int64_t label_at(const void *labels, kind_t kind, Py_ssize_t i) {
    return kind == K_I64 ? ((const int64_t *)labels)[i] : (int64_t)((const int32_t *)labels)[i];
}

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

/* Row kernels on 32-byte vectors (GCC/Clang vector extensions). Each loop is compiled twice on
 * x86-64 Linux, for AVX2 and for the baseline (which splits each vector op in two), and the
 * loader picks one (target_clones); elsewhere the compiler lowers the vectors to what it has.
 * A row of k values is read W at a time; lanes past the row are masked out. The last rows of a
 * buffer may not be read past their end, so their final partial vector is copied (`safe` = 0). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

/* Inlined into each clone, so compiled for its target (and no vector crosses a call). */
#define INLINE inline __attribute__((always_inline))

typedef float f32v __attribute__((vector_size(32)));
typedef int32_t i32v __attribute__((vector_size(32)));
typedef double f64v __attribute__((vector_size(32)));
typedef int64_t i64v __attribute__((vector_size(32)));

/* Rows 0 .. safe_rows-1 can be read in whole vectors without passing the end of the buffer. */
static inline Py_ssize_t safe_rows(Py_ssize_t n, Py_ssize_t k, Py_ssize_t w) {
    Py_ssize_t padded = (k + w - 1) / w * w;
    return n * k >= padded ? (n * k - padded) / k + 1 : 0;
}

static INLINE void add_sums_float(f32v v, f64v *s0, f64v *s1) {
    *s0 += (f64v){(double)v[0], (double)v[1], (double)v[2], (double)v[3]};
    *s1 += (f64v){(double)v[4], (double)v[5], (double)v[6], (double)v[7]};
}
static INLINE void add_sums_double(f64v v, f64v *s0, f64v *s1) {
    (void)s1;
    *s0 += v;
}

/* What a scan of a batch found. */
typedef struct {
    Py_ssize_t far_a, far_b, zeros, ones;
    Py_ssize_t *unsure, n_unsure, unsure_cap;
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
    const void *labels;
    kind_t label_kind;
    Py_ssize_t n, k;
    int has_ignore;
    long long ignore;
    void *picked; /* float64, or float32 for float32 rows */
    int picked_f64;
    double tol_a, tol_b, margin;
} scan_args_t;

/* ROW_KERNELS(T, VT, IT, VI, W, ONE_BITS, EXP_BITS) defines, for rows of k values of type T
 * read as vectors VT of W lanes (VI: the integer vectors of the same lanes):
 *   out_of_unit_T: lanes not in [0, 1] (as signed integers the bits of 0 <= p <= 1 lie in
 *                [0, bits of 1.0]; negatives, -0.0 included, are below, inf and NaN above);
 *   scan_row_T, rank_row_T: one row; scan_loop_T, rank_loop_T: all rows.
 * `tail` holds -1 in the lanes of the row's last vector that hold values (1 to W of them). */
#define ROW_KERNELS(T, VT, IT, VI, W, ONE_BITS, EXP_BITS)                                    \
    static INLINE VT last_##T(const T *p, Py_ssize_t count, int safe, VI tail) {           \
        VT v;                                                                              \
        if (safe) {                                                                        \
            memcpy(&v, p, sizeof(VT));                                                     \
        } else {                                                                           \
            T copy[W] = {0};                                                               \
            memcpy(copy, p, (size_t)count * sizeof(T));                                    \
            memcpy(&v, copy, sizeof(VT));                                                  \
        }                                                                                  \
        return (VT)((VI)v & tail);                                                         \
    }                                                                                      \
    static INLINE VI lanes_below_##T(Py_ssize_t m) {                                       \
        VI lane;                                                                           \
        for (int i = 0; i < W; i++) lane[i] = i < m ? -1 : 0;                              \
        return lane;                                                                       \
    }                                                                                      \
    static INLINE VI out_of_unit_##T(VT v) {                                               \
        VI bits = (VI)v;                                                                   \
        return (bits < 0) | (bits > (IT)(ONE_BITS));                                       \
    }                                                                                      \
    static INLINE int any_##T(VI bad) {                                                    \
        IT any = 0;                                                                        \
        for (int i = 0; i < W; i++) any |= bad[i];                                         \
        return any != 0;                                                                   \
    }                                                                                      \
    /* The row's float64 sum (in partial sums, not in index order); `bad` collects lanes     \
     * that are not in [0, 1]. `nvec`: vectors per row when 1 or 2 (a constant, so the loop   \
     * unrolls), 0 for any. The last vector is always the masked one. */                   \
    static INLINE double scan_row_##T(const T *p, Py_ssize_t k, int safe, VI tail,         \
                                      VI *bad, const int nvec) {                           \
        f64v s0 = {0.0}, s1 = {0.0};                                                       \
        Py_ssize_t c = 0;                                                                  \
        for (int j = 0; nvec ? j < nvec - 1 : c + W < k; j++, c += W) {                    \
            VT v;                                                                          \
            memcpy(&v, p + c, sizeof(VT));                                                 \
            *bad |= out_of_unit_##T(v);                                                    \
            add_sums_##T(v, &s0, &s1);                                                     \
        }                                                                                  \
        VT v = last_##T(p + c, k - c, safe, tail);                                         \
        *bad |= out_of_unit_##T(v);                                                        \
        add_sums_##T(v, &s0, &s1);                                                         \
        s0 += s1;                                                                          \
        return (s0[0] + s0[1]) + (s0[2] + s0[3]);                                          \
    }                                                                                      \
    static INLINE VI rank_step_##T(VT v, T t, VI column, IT y, VI *bad) {                  \
        *bad |= ((VI)v & (IT)(EXP_BITS)) == (IT)(EXP_BITS);                                \
        return (v > t) | ((v == t) & (column < y));                                        \
    }                                                                                      \
    /* The rank of p[y]; `bad` collects lanes that are not finite. */                      \
    static INLINE int64_t rank_row_##T(const T *p, Py_ssize_t k, Py_ssize_t y, int safe,   \
                                       VI tail, VI lane, VI *bad, const int nvec) {        \
        VI acc = {0}, column = lane, tail_bad = {0};                                       \
        T t = p[y];                                                                        \
        Py_ssize_t c = 0;                                                                  \
        for (int j = 0; nvec ? j < nvec - 1 : c + W < k; j++, c += W, column += W) {       \
            VT v;                                                                          \
            memcpy(&v, p + c, sizeof(VT));                                                 \
            acc += rank_step_##T(v, t, column, (IT)y, bad);                                \
        }                                                                                  \
        acc += rank_step_##T(last_##T(p + c, k - c, safe, tail), t, column, (IT)y,          \
                             &tail_bad) & tail;                                            \
        *bad |= tail_bad & tail;                                                           \
        IT above = 0;                                                                      \
        for (int i = 0; i < W; i++) above -= acc[i];                                       \
        return (int64_t)above;                                                             \
    }                                                                                      \
    /* The loops over the rows: 1 clean, 0 not, -1 out of memory. A bad value is noticed    \
     * at the end (a dirty batch is rare and its results are discarded); a bad label at     \
     * once, before it is used as an index. */                                             \
    static INLINE int scan_rows_##T(const T *pred, const scan_args_t *a, scan_t *r,        \
                                    const int nvec) {                                      \
        const Py_ssize_t n = a->n, k = a->k, safe_n = safe_rows(n, k, W);                  \
        const VI tail = lanes_below_##T(k - (k - 1) / W * W);                              \
        const void *labels = a->labels;                                                    \
        const kind_t label_kind = a->label_kind;                                           \
        const int has_ignore = a->has_ignore;                                              \
        const long long ignore = a->ignore;                                                \
        const double tol_a = a->tol_a, tol_b = a->tol_b, margin = a->margin;               \
        double *picked64 = a->picked_f64 ? (double *)a->picked : NULL;                     \
        float *picked32 = a->picked_f64 ? NULL : (float *)a->picked;                       \
        Py_ssize_t far_a = 0, far_b = 0, zeros = 0, ones = 0;                              \
        VI bad = {0};                                                                      \
        for (Py_ssize_t i = 0; i < n; i++) {                                               \
            int64_t y = label_at(labels, label_kind, i);                                   \
            if (y < 0 || y >= k || (has_ignore && y == ignore)) return 0;                  \
            const T *row = pred + i * k;                                                   \
            double sum = scan_row_##T(row, k, i < safe_n, tail, &bad, nvec);               \
            double p = (double)row[y];                                                     \
            if (picked64) picked64[i] = p;                                                 \
            else picked32[i] = (float)p;                                                   \
            zeros += p == 0.0;                                                             \
            ones += p == 1.0;                                                              \
            /* branch free: whether a sum is above or below 1 is a coin flip */            \
            double distance = __builtin_fabs(sum - 1.0);                                   \
            double da = distance - tol_a, db = distance - tol_b;                           \
            if ((__builtin_fabs(da) > margin) & (__builtin_fabs(db) > margin)) {           \
                far_a += da > 0;                                                           \
                far_b += db > 0;                                                           \
            } else if (!add_unsure(r, i)) {                                                \
                return -1;                                                                 \
            }                                                                              \
        }                                                                                  \
        r->far_a = far_a, r->far_b = far_b, r->zeros = zeros, r->ones = ones;              \
        return !any_##T(bad);                                                              \
    }                                                                                      \
    static INLINE int rank_rows_##T(const T *pred, const void *labels, kind_t label_kind,  \
                                    Py_ssize_t n, Py_ssize_t k, int64_t *ranks,            \
                                    const int nvec) {                                      \
        const Py_ssize_t safe_n = safe_rows(n, k, W);                                      \
        const VI tail = lanes_below_##T(k - (k - 1) / W * W);                              \
        VI lane, bad = {0};                                                                \
        for (int i = 0; i < W; i++) lane[i] = i;                                           \
        for (Py_ssize_t i = 0; i < n; i++) {                                               \
            int64_t y = label_at(labels, label_kind, i);                                   \
            if (y < 0 || y >= k) return 0;                                                 \
            ranks[i] = rank_row_##T(pred + i * k, k, (Py_ssize_t)y, i < safe_n, tail, lane, \
                                    &bad, nvec);                                           \
        }                                                                                  \
        return !any_##T(bad);                                                              \
    }                                                                                      \
    static CLONES int scan_loop_##T(const T *pred, const scan_args_t *a, scan_t *r) {      \
        if (a->k <= W) return scan_rows_##T(pred, a, r, 1);                                \
        if (a->k <= 2 * W) return scan_rows_##T(pred, a, r, 2);                            \
        return scan_rows_##T(pred, a, r, 0);                                               \
    }                                                                                      \
    static CLONES int rank_loop_##T(const T *pred, const void *labels, kind_t label_kind,  \
                                    Py_ssize_t n, Py_ssize_t k, int64_t *ranks) {          \
        if (k <= W) return rank_rows_##T(pred, labels, label_kind, n, k, ranks, 1);        \
        if (k <= 2 * W) return rank_rows_##T(pred, labels, label_kind, n, k, ranks, 2);    \
        return rank_rows_##T(pred, labels, label_kind, n, k, ranks, 0);                    \
    }

ROW_KERNELS(float, f32v, int32_t, i32v, 8, 0x3F800000L, 0x7F800000L)
ROW_KERNELS(double, f64v, int64_t, i64v, 4, 0x3FF0000000000000LL, 0x7FF0000000000000LL)

PyDoc_STRVAR(sparse_scan_doc,
"sparse_scan(pred, labels, picked, ignore_index, tol_a, tol_b, margin)\n"
"    -> (far_a, far_b, zeros, ones, unsure_rows) or None\n\n"
"One pass over a batch of class indices `labels` (n,) int32/int64 and probabilities `pred`\n"
"(n, k) float32/float64. None unless the batch is clean: every value in [0, 1] and every label\n"
"a class index other than `ignore_index` (None for no such index). Otherwise writes p[i, y_i]\n"
"to `picked` (a writable float32/float64 buffer of n; float64 unless pred is float32) and\n"
"counts the rows with |sum - 1| > tol_a and > tol_b (float64 sums), the true-class\n"
"probabilities 0 and 1. Rows whose distance is within `margin` of a tolerance are not counted\n"
"but listed: summed in another order they might fall on the other side, so the caller decides.");

static PyObject *sparse_scan(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *pred_obj, *label_obj, *picked_obj, *ignore_obj;
    scan_args_t a;
    if (!PyArg_ParseTuple(args, "OOOOddd", &pred_obj, &label_obj, &picked_obj, &ignore_obj,
                          &a.tol_a, &a.tol_b, &a.margin))
        return NULL;
    a.has_ignore = ignore_obj != Py_None;
    a.ignore = 0;
    if (a.has_ignore) {
        a.ignore = PyLong_AsLongLong(ignore_obj);
        if (a.ignore == -1 && PyErr_Occurred()) return NULL;
    }
    batch_t b;
    if (!get_batch(pred_obj, label_obj, &b)) Py_RETURN_NONE;
    Py_buffer out;
    if (!get_view(picked_obj, &out, 1)) { release_batch(&b); Py_RETURN_NONE; }
    kind_t out_kind = buffer_kind(&out);
    if (out.len / out.itemsize != b.rows ||
        !(out_kind == K_F64 || (out_kind == K_F32 && b.pred_kind == K_F32))) {
        PyBuffer_Release(&out);
        release_batch(&b);
        Py_RETURN_NONE;
    }
    a.labels = b.labels.buf;
    a.label_kind = b.label_kind;
    a.n = b.rows;
    a.k = b.classes;
    a.picked = out.buf;
    a.picked_f64 = out_kind == K_F64;
    scan_t r;
    memset(&r, 0, sizeof(r));
    int clean;
    Py_BEGIN_ALLOW_THREADS
    clean = b.pred_kind == K_F32 ? scan_loop_float((const float *)b.pred.buf, &a, &r)
                                 : scan_loop_double((const double *)b.pred.buf, &a, &r);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    release_batch(&b);
    if (clean <= 0) {
        free(r.unsure);
        if (clean < 0) return PyErr_NoMemory();
        Py_RETURN_NONE;
    }
    PyObject *rows = PyList_New(r.n_unsure);
    for (Py_ssize_t i = 0; rows && i < r.n_unsure; i++) {
        PyObject *row = PyLong_FromSsize_t(r.unsure[i]);
        if (!row) { Py_CLEAR(rows); break; }
        PyList_SET_ITEM(rows, i, row);
    }
    free(r.unsure);
    if (!rows) return NULL;
    return Py_BuildValue("nnnnN", r.far_a, r.far_b, r.zeros, r.ones, rows);
}

PyDoc_STRVAR(class_ranks_doc,
"class_ranks(pred, labels, ranks) -> bool\n\n"
"Writes to `ranks` (a writable int64 buffer of n) the rank of each row's true class among its\n"
"scores: #(scores > true score) + #(equal scores at a lower class index), i.e. its position in\n"
"a stable descending sort. False (ranks unspecified) if a score is not finite, a label is not a\n"
"class index, or the buffers are not (n, k) float32/float64 and (n,) int32/int64.");

static PyObject *class_ranks(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *pred_obj, *label_obj, *rank_obj;
    if (!PyArg_ParseTuple(args, "OOO", &pred_obj, &label_obj, &rank_obj)) return NULL;
    batch_t b;
    if (!get_batch(pred_obj, label_obj, &b)) Py_RETURN_FALSE;
    Py_buffer out;
    if (!get_view(rank_obj, &out, 1)) { release_batch(&b); Py_RETURN_FALSE; }
    int ok = buffer_kind(&out) == K_I64 && out.len / 8 == b.rows;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        ok = b.pred_kind == K_F32
            ? rank_loop_float((const float *)b.pred.buf, b.labels.buf, b.label_kind, b.rows,
                              b.classes, (int64_t *)out.buf)
            : rank_loop_double((const double *)b.pred.buf, b.labels.buf, b.label_kind, b.rows,
                               b.classes, (int64_t *)out.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&out);
    release_batch(&b);
    return PyBool_FromLong(ok);
}

/* ----------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"exact_sum", exact_sum, METH_O, exact_sum_doc},
    {"sparse_scan", sparse_scan, METH_VARARGS, sparse_scan_doc},
    {"class_ranks", class_ranks, METH_VARARGS, class_ranks_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "streammetric._kernels",
    "Fused hot loops of streammetric (internal; see _kernels.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
