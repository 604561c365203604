/* The JSON text of a list of dicts of one shape given by column (streammetric._json.Table),
 * as json.dumps(records, indent=2, allow_nan=True) writes it (internal).
 *
 * table(pieces, order, columns, inner, newline, escape[, start, stop])
 *     "[" inner item ("," inner item)* newline "]" (or "[]" when there are no items), where
 *     item i is pieces[0] leaf(order[0], i) pieces[1] ... leaf(order[-1], i) pieces[-1] and
 *     leaf(c, i) is the JSON text of columns[c][i]. A column is a list (of str, int, float,
 *     bool, None: exactly those types, not subclasses) or a 1-D buffer of float64, int64 or
 *     bool (a NumPy array, read in place). pieces, inner and newline must be ASCII str.
 *     Strings that are ASCII with nothing to escape are copied; any other goes through
 *     `escape` (json.encoder.encode_basestring_ascii). Returns None when a value is of another
 *     type or a column of another kind (the caller then writes the records another way);
 *     raises ValueError when the columns differ in length. With start and stop (0 <= start <
 *     stop <= the items), the part of that text from item start to item stop - 1: "[" only
 *     if start is 0, each item after "," when it is not the first, newline "]" only if stop
 *     is the last; the parts of consecutive ranges, one after another, are the whole text.
 *
 * Floats are written as float.__repr__ writes them (the shortest digits that read back as the
 * same double, the closest such, ties to even; exponent notation below 1e-4 and from 1e16),
 * NaN, Infinity and -Infinity as json.dumps(allow_nan=True) does. The shortest digits come from
 * the Schubfach algorithm (R. Giulietti, "The Schubfach way to render doubles", 2020) with
 * the 128-bit powers of ten of _text_tables.h (scripts/make_text_tables.py); the tests compare
 * it with float.__repr__ over millions of doubles.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_text_tables.h"

/* ---------------------------------------------------------------- the output buffer */

/* The text is written straight into the str it is returned as (ASCII, one byte a character),
 * grown and at last shrunk with PyUnicode_Resize (a realloc: the pages are not copied again). */
typedef struct {
    PyObject *str;
    char *data;
    size_t len, cap;
} out_t;

/* Room for `more` bytes past len; 0 (MemoryError set) when there is none. */
static int reserve_slow(out_t *out, size_t more) {
    size_t cap = out->cap ? out->cap : 1 << 16;
    while (cap - out->len < more) cap *= 2;
    if (cap > (size_t)PY_SSIZE_T_MAX) {
        PyErr_NoMemory();
        return 0;
    }
    if (!out->str) {
        out->str = PyUnicode_New((Py_ssize_t)cap, 127);
        if (!out->str) return 0;
    } else if (PyUnicode_Resize(&out->str, (Py_ssize_t)cap) != 0) {
        return 0;
    }
    out->data = (char *)PyUnicode_1BYTE_DATA(out->str);
    out->cap = cap;
    return 1;
}

static inline int reserve(out_t *out, size_t more) {
    return out->cap - out->len >= more ? 1 : reserve_slow(out, more);
}

/* The str of the text so far (NULL with an error set if it cannot be shrunk). */
static PyObject *finish(out_t *out) {
    if (PyUnicode_Resize(&out->str, (Py_ssize_t)out->len) != 0) return NULL;
    PyObject *str = out->str;
    out->str = NULL;
    return str;
}

static inline void put(out_t *out, const char *text, size_t n) {
    memcpy(out->data + out->len, text, n);
    out->len += n;
}

/* ---------------------------------------------------------------- numbers */

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The decimal digits of x at the end of buf (which ends at `end`); returns their start. */
static inline char *digits_before(char *end, uint64_t x) {
    while (x >= 100) {
        uint64_t q = x / 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * (x - 100 * q), 2);
        x = q;
    }
    if (x >= 10) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * x, 2);
    } else {
        *--end = (char)('0' + x);
    }
    return end;
}

/* int.__repr__ of a C int64 at p; returns the end. At most 20 bytes. */
static inline char *write_int64(char *p, int64_t v) {
    char tmp[24];
    uint64_t x = (uint64_t)v;
    if (v < 0) {
        *p++ = '-';
        x = 0 - x;
    }
    char *start = digits_before(tmp + sizeof tmp, x);
    size_t n = (size_t)(tmp + sizeof tmp - start);
    memcpy(p, start, n);
    return p + n;
}

static inline int flog10_pow2(int q) { return (q * 315653) >> 20; }
static inline int flog10_three_quarters_pow2(int q) { return (q * 315653 - 131237) >> 20; }
static inline int flog2_pow10(int e) { return (e * 1741647) >> 19; }

/* floor(g * cp / 2**128), g = g1 * 2**64 + g0 rounded up, with its lowest bit set when the
 * exact product (g the exact power) is not a whole number: round to odd. */
static inline uint64_t round_to_odd(uint64_t g1, uint64_t g0, uint64_t cp) {
    unsigned __int128 x = (unsigned __int128)g0 * cp;
    unsigned __int128 y = (unsigned __int128)g1 * cp + (uint64_t)(x >> 64);
    uint64_t z = (uint64_t)y;
    return (uint64_t)(y >> 64) | (z != 0);
}

/* The shortest decimal digits d * 10**e10 of a positive finite double c * 2**q (c its
 * significand with the hidden bit, `closer` when the lower neighbour is nearer, i.e. c is
 * 2**52 above the smallest normal), the closest such, ties to even (Schubfach). d may have
 * trailing zeros. */
static inline uint64_t shortest(uint64_t c, int q, int closer, int *e10) {
    int even = !(c & 1);
    uint64_t cbl = 4 * c - 2 + (uint64_t)closer, cb = 4 * c, cbr = 4 * c + 2;
    int k = closer ? flog10_three_quarters_pow2(q) : flog10_pow2(q);
    int h = q + flog2_pow10(-k) + 1;
    uint64_t g1 = pow10_hi[-k - POW10_MIN], g0 = pow10_lo[-k - POW10_MIN];
    uint64_t vbl = round_to_odd(g1, g0, cbl << h);
    uint64_t vb = round_to_odd(g1, g0, cb << h);
    uint64_t vbr = round_to_odd(g1, g0, cbr << h);
    uint64_t lower = vbl + !even, upper = vbr - !even;
    uint64_t s = vb >> 2;
    if (s >= 10) {
        uint64_t sp = s / 10;
        int up_in = lower <= 40 * sp, wp_in = 40 * sp + 40 <= upper;
        if (up_in != wp_in) {
            *e10 = k + 1;
            return sp + (uint64_t)wp_in;
        }
    }
    int u_in = lower <= 4 * s, w_in = 4 * s + 4 <= upper;
    *e10 = k;
    if (u_in != w_in) return s + (uint64_t)w_in;
    uint64_t mid = 4 * s + 2;
    return s + (uint64_t)(vb > mid || (vb == mid && (s & 1)));
}

/* float.__repr__ of v at p as JSON (NaN, Infinity, -Infinity); returns the end. At most 24
 * bytes. */
static char *write_double(char *p, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint64_t fraction = bits & ((UINT64_C(1) << 52) - 1);
    int biased = (int)((bits >> 52) & 0x7ff);
    if (biased == 0x7ff) {
        if (fraction) {
            memcpy(p, "NaN", 3);
            return p + 3;
        }
        if (bits >> 63) *p++ = '-';
        memcpy(p, "Infinity", 8);
        return p + 8;
    }
    if (bits >> 63) *p++ = '-';
    if (!biased && !fraction) {
        memcpy(p, "0.0", 3);
        return p + 3;
    }
    uint64_t c = biased ? fraction | (UINT64_C(1) << 52) : fraction;
    int q = biased ? biased - 1075 : -1074;
    uint64_t d;
    int e10;
    if (q < 0 && q >= -52 && !(c & ((UINT64_C(1) << -q) - 1))) {
        d = c >> -q;  // a whole number below 2**53: its own shortest digits
        e10 = 0;
    } else {
        d = shortest(c, q, !fraction && biased > 1, &e10);
    }
    while (d % 10 == 0) {
        d /= 10;
        e10++;
    }
    char tmp[24];
    char *start = digits_before(tmp + sizeof tmp, d);
    int n = (int)(tmp + sizeof tmp - start);
    int point = n + e10;  // v = 0.DIGITS * 10**point
    if (point > 16 || point <= -4) {  // d.ddde+XX, as repr
        *p++ = *start;
        if (n > 1) {
            *p++ = '.';
            memcpy(p, start + 1, (size_t)n - 1);
            p += n - 1;
        }
        int e = point - 1;
        *p++ = 'e';
        *p++ = e < 0 ? '-' : '+';
        if (e < 0) e = -e;
        if (e >= 100) {
            *p++ = (char)('0' + e / 100);
            e %= 100;
        }
        memcpy(p, digit_pairs + 2 * e, 2);
        return p + 2;
    }
    if (point <= 0) {  // 0.000ddd
        memcpy(p, "0.", 2);
        p += 2;
        memset(p, '0', (size_t)-point);
        p += -point;
        memcpy(p, start, (size_t)n);
        return p + n;
    }
    if (point >= n) {  // ddd000.0
        memcpy(p, start, (size_t)n);
        p += n;
        memset(p, '0', (size_t)(point - n));
        p += point - n;
        memcpy(p, ".0", 2);
        return p + 2;
    }
    memcpy(p, start, (size_t)point);  // ddd.ddd
    p += point;
    *p++ = '.';
    memcpy(p, start + point, (size_t)(n - point));
    return p + (n - point);
}

/* ---------------------------------------------------------------- values */

#define PREFETCH 16 /* items ahead */
#define RESERVE_MAX ((size_t)1 << 28) /* the most reserved at first (then grown by doubling) */
#define LEAF_MAX 32 /* bytes of the longest float, int64, bool or null text (24) and then some */

/* Copy an ASCII str's text (the escaper's answer, an int's repr) to out. */
static int put_ascii(out_t *out, PyObject *text) {
    if (!PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_ValueError, "expected ASCII text");
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (!reserve(out, (size_t)n)) return 0;
    put(out, (const char *)PyUnicode_1BYTE_DATA(text), (size_t)n);
    return 1;
}

/* 1: written; 0: an error is set; -1: not a type written here. */
static int put_object(out_t *out, PyObject *value, PyObject *escape) {
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyFloat_Type) {
        out->len = (size_t)(write_double(out->data + out->len, PyFloat_AS_DOUBLE(value)) - out->data);
        return 1;
    }
    if (type == &PyUnicode_Type) {
        if (PyUnicode_IS_ASCII(value)) {
            Py_ssize_t n = PyUnicode_GET_LENGTH(value);
            const unsigned char *s = PyUnicode_1BYTE_DATA(value);
            Py_ssize_t i = 0;
            while (i < n && s[i] >= ' ' && s[i] <= '~' && s[i] != '"' && s[i] != '\\') i++;
            if (i == n) {
                if (!reserve(out, (size_t)n + 2 + LEAF_MAX)) return 0;
                out->data[out->len++] = '"';
                put(out, (const char *)s, (size_t)n);
                out->data[out->len++] = '"';
                return 1;
            }
        }
        Py_INCREF(value);  // held while Python code runs (the escaper: C in practice)
        PyObject *text = PyObject_CallOneArg(escape, value);
        Py_DECREF(value);
        if (!text) return 0;
        int ok = PyUnicode_Check(text) && put_ascii(out, text);
        if (!ok && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "escape must give a str");
        Py_DECREF(text);
        return ok && reserve(out, LEAF_MAX);
    }
    if (type == &PyLong_Type) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow) {
            if (x == -1 && PyErr_Occurred()) return 0;
            out->len = (size_t)(write_int64(out->data + out->len, x) - out->data);
            return 1;
        }
        PyObject *text = PyObject_Repr(value);  // int.__repr__ (may refuse 4,300+ digits)
        if (!text) return 0;
        int ok = put_ascii(out, text);
        Py_DECREF(text);
        return ok && reserve(out, LEAF_MAX);
    }
    if (value == Py_None) {
        put(out, "null", 4);
        return 1;
    }
    if (value == Py_True) {
        put(out, "true", 4);
        return 1;
    }
    if (value == Py_False) {
        put(out, "false", 5);
        return 1;
    }
    return -1;
}

/* ---------------------------------------------------------------- columns */

typedef enum { C_LIST, C_F64, C_I64, C_BOOL, C_STRS } column_kind_t;

typedef struct {
    column_kind_t kind;
    PyObject *list;   /* C_LIST: borrowed */
    Py_buffer view;   /* the others (C_STRS: the offsets) */
    int has_view;
    Py_buffer data;   /* C_STRS: the strings' bytes */
    int has_data;
} column_t;

/* Whether bytes b[0:n] go into JSON as they are: printable ASCII, no quote, no backslash. */
static int plain_bytes(const unsigned char *b, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (b[i] < ' ' || b[i] > '~' || b[i] == '"' || b[i] == '\\') return 0;
    return 1;
}

/* A column of strings as (offsets, data): int64 offsets, n + 1 of them, from 0 to the end of
 * data, those of strings start .. stop - 1 (stop -1: to the last) increasing within data and
 * their bytes plain (`plain_bytes`): only the strings written are read. 1: set up; 0: an
 * error is set; -1: not. */
static int open_strings(PyObject *obj, column_t *column, Py_ssize_t start, Py_ssize_t stop) {
    if (PyTuple_GET_SIZE(obj) != 2) return -1;
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(obj, 0), &column->view, PyBUF_C_CONTIGUOUS) != 0) {
        PyErr_Clear();
        return -1;
    }
    column->has_view = 1;
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(obj, 1), &column->data, PyBUF_C_CONTIGUOUS) != 0) {
        PyErr_Clear();
        return -1;
    }
    column->has_data = 1;
    column->kind = C_STRS;
    const Py_ssize_t count = column->view.len / 8 - 1;
    if (column->view.len % 8 || count < 0) return -1;
    const int64_t *o = column->view.buf;
    if (o[0] != 0 || o[count] != column->data.len) return -1;
    const Py_ssize_t lo = start < count ? start : count;
    const Py_ssize_t hi = stop < 0 || stop > count ? count : stop;
    if (o[lo] < 0 || o[hi] > column->data.len) return -1;
    for (Py_ssize_t i = lo; i < hi; i++)
        if (o[i + 1] < o[i]) return -1;
    return plain_bytes((const unsigned char *)column->data.buf + o[lo], o[hi] - o[lo]) ? 1 : -1;
}

/* 1: set up (for items start .. stop - 1; stop -1: to the last); 0: an error is set; -1: not
 * a column written here. */
static int open_column(PyObject *obj, column_t *column, Py_ssize_t start, Py_ssize_t stop) {
    column->has_view = 0;
    column->has_data = 0;
    if (PyList_CheckExact(obj)) {
        column->kind = C_LIST;
        column->list = obj;
        return 1;
    }
    if (PyTuple_CheckExact(obj)) return open_strings(obj, column, start, stop);
    if (!PyObject_CheckBuffer(obj)) return -1;
    if (PyObject_GetBuffer(obj, &column->view, PyBUF_RECORDS_RO) != 0) {
        PyErr_Clear();
        return -1;
    }
    column->has_view = 1;
    const char *f = column->view.format ? column->view.format : "B";
    if (*f == '=' || *f == '@' || (*f == '<' && PY_LITTLE_ENDIAN)) f++;
    Py_ssize_t size = column->view.itemsize;
    if (column->view.ndim != 1 || f[0] == 0 || f[1] != 0) return -1;
    if (f[0] == 'd' && size == 8)
        column->kind = C_F64;
    else if ((f[0] == 'l' || f[0] == 'q') && size == 8)
        column->kind = C_I64;
    else if (f[0] == '?' && size == 1)
        column->kind = C_BOOL;
    else
        return -1;
    return 1;
}

static Py_ssize_t column_length(const column_t *column) {
    if (column->kind == C_STRS) return column->view.len / 8 - 1;
    return column->kind == C_LIST ? PyList_GET_SIZE(column->list) : column->view.shape[0];
}

/* 1: written; 0: an error is set; -1: a value not written here. */
static inline int put_leaf(out_t *out, const column_t *column, Py_ssize_t i, PyObject *escape) {
    if (column->kind == C_LIST) {
        if (i >= PyList_GET_SIZE(column->list)) {  // only if the escaper changed it
            PyErr_SetString(PyExc_RuntimeError, "a column changed size while it was written");
            return 0;
        }
        return put_object(out, PyList_GET_ITEM(column->list, i), escape);
    }
    if (column->kind == C_STRS) {
        const int64_t *o = column->view.buf;
        const size_t n = (size_t)(o[i + 1] - o[i]);
        if (!reserve(out, n + 2 + LEAF_MAX)) return 0;
        out->data[out->len++] = '"';
        put(out, (const char *)column->data.buf + o[i], n);
        out->data[out->len++] = '"';
        return 1;
    }
    const char *at = (const char *)column->view.buf + i * column->view.strides[0];
    if (column->kind == C_F64) {
        double v;
        memcpy(&v, at, sizeof v);
        out->len = (size_t)(write_double(out->data + out->len, v) - out->data);
    } else if (column->kind == C_I64) {
        int64_t v;
        memcpy(&v, at, sizeof v);
        out->len = (size_t)(write_int64(out->data + out->len, v) - out->data);
    } else if (*at) {
        put(out, "true", 4);
    } else {
        put(out, "false", 5);
    }
    return 1;
}

/* ---------------------------------------------------------------- table() */

typedef struct {
    const char *text;
    Py_ssize_t len;
} piece_t;

static int ascii_piece(PyObject *obj, piece_t *piece, const char *what) {
    if (!PyUnicode_Check(obj) || !PyUnicode_IS_ASCII(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be ASCII str", what);
        return 0;
    }
    piece->text = (const char *)PyUnicode_1BYTE_DATA(obj);
    piece->len = PyUnicode_GET_LENGTH(obj);
    return 1;
}

PyDoc_STRVAR(table_doc,
             "table(pieces, order, columns, inner, newline, escape, start=0, stop=items, /)\n"
             "    -> str | None\n\n"
             "The JSON text of the items the columns stand for, or of items start .. stop - 1\n"
             "(see _text.c).");

static PyObject *table(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6 && nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "table takes 6 or 8 arguments");
        return NULL;
    }
    Py_ssize_t start = 0, stop = -1;  // -1: the last item
    if (nargs == 8) {
        start = PyLong_AsSsize_t(args[6]);
        if (start == -1 && PyErr_Occurred()) return NULL;
        stop = PyLong_AsSsize_t(args[7]);
        if (stop == -1 && PyErr_Occurred()) return NULL;
        if (start < 0 || stop <= start) {
            PyErr_SetString(PyExc_ValueError, "table needs 0 <= start < stop");
            return NULL;
        }
    }
    PyObject *pieces_obj = args[0], *order_obj = args[1], *columns_obj = args[2];
    PyObject *escape = args[5];
    if (!PyList_Check(pieces_obj) || !PyList_Check(order_obj) || !PyList_Check(columns_obj)) {
        PyErr_SetString(PyExc_TypeError, "pieces, order and columns must be lists");
        return NULL;
    }
    Py_ssize_t leaves = PyList_GET_SIZE(order_obj);
    Py_ssize_t n_columns = PyList_GET_SIZE(columns_obj);
    if (PyList_GET_SIZE(pieces_obj) != leaves + 1) {
        PyErr_SetString(PyExc_ValueError, "pieces must be one longer than order");
        return NULL;
    }
    piece_t inner, newline;
    if (!ascii_piece(args[3], &inner, "inner") || !ascii_piece(args[4], &newline, "newline"))
        return NULL;
    PyObject *result = NULL;
    out_t out = {NULL, NULL, 0, 0};
    piece_t *pieces = PyMem_Calloc((size_t)leaves + 1, sizeof *pieces);
    Py_ssize_t *order = PyMem_Calloc((size_t)leaves + 1, sizeof *order);
    column_t *columns = PyMem_Calloc((size_t)n_columns + 1, sizeof *columns);
    Py_ssize_t opened = 0;
    if (!pieces || !order || !columns) {
        PyErr_NoMemory();
        goto done;
    }
    size_t fixed = (size_t)inner.len + 1;  // an item's bytes besides its strings and big ints
    for (Py_ssize_t j = 0; j <= leaves; j++) {
        if (!ascii_piece(PyList_GET_ITEM(pieces_obj, j), &pieces[j], "pieces")) goto done;
        fixed += (size_t)pieces[j].len + LEAF_MAX;
    }
    for (Py_ssize_t j = 0; j < leaves; j++) {
        order[j] = PyLong_AsSsize_t(PyList_GET_ITEM(order_obj, j));
        if (order[j] == -1 && PyErr_Occurred()) goto done;
        if (order[j] < 0 || order[j] >= n_columns) {
            PyErr_SetString(PyExc_IndexError, "order holds a column that is not there");
            goto done;
        }
    }
    Py_ssize_t items = -1;
    for (; opened < n_columns; opened++) {
        int ok = open_column(PyList_GET_ITEM(columns_obj, opened), &columns[opened], start, stop);
        if (ok <= 0) {
            opened++;  // release its view too
            if (ok < 0) result = Py_NewRef(Py_None);
            goto done;
        }
        Py_ssize_t n = column_length(&columns[opened]);
        if (items >= 0 && n != items) {
            opened++;
            PyErr_SetString(PyExc_ValueError, "the columns differ in length");
            goto done;
        }
        items = n;
    }
    if (stop > items) {
        PyErr_SetString(PyExc_ValueError, "table's stop is beyond the items");
        goto done;
    }
    if (items <= 0) {
        result = PyUnicode_FromString("[]");
        goto done;
    }
    if (stop < 0) stop = items;
    size_t guess = (size_t)(stop - start) * fixed + (size_t)newline.len + 2;  // unless strings are long
    if (!reserve(&out, guess < RESERVE_MAX ? guess : RESERVE_MAX)) goto done;
    if (start == 0) out.data[out.len++] = '[';
    for (Py_ssize_t i = start; i < stop; i++) {
        for (Py_ssize_t j = 0; j < n_columns; j++)  // lists' objects are anywhere: ask early
            if (columns[j].kind == C_LIST && i + PREFETCH < stop)
                __builtin_prefetch(PyList_GET_ITEM(columns[j].list, i + PREFETCH));
        if (!reserve(&out, fixed)) goto done;
        if (i) out.data[out.len++] = ',';
        put(&out, inner.text, (size_t)inner.len);
        for (Py_ssize_t j = 0; j < leaves; j++) {
            put(&out, pieces[j].text, (size_t)pieces[j].len);
            int ok = put_leaf(&out, &columns[order[j]], i, escape);
            if (ok <= 0) {
                if (ok < 0) result = Py_NewRef(Py_None);
                goto done;
            }
            if (!reserve(&out, fixed)) goto done;  // after a long string: room for the rest
        }
        put(&out, pieces[leaves].text, (size_t)pieces[leaves].len);
    }
    if (stop == items) {
        if (!reserve(&out, (size_t)newline.len + 1)) goto done;
        put(&out, newline.text, (size_t)newline.len);
        out.data[out.len++] = ']';
    }
    result = finish(&out);
done:
    for (Py_ssize_t j = 0; j < opened; j++) {
        if (columns[j].has_view) PyBuffer_Release(&columns[j].view);
        if (columns[j].has_data) PyBuffer_Release(&columns[j].data);
    }
    PyMem_Free(pieces);
    PyMem_Free(order);
    PyMem_Free(columns);
    Py_XDECREF(out.str);
    return result;
}

PyDoc_STRVAR(float_texts_doc,
             "float_texts(values, /) -> list[str] | None\n\n"
             "Each float64 of a buffer as table() writes it (for the tests).");

static PyObject *float_texts(PyObject *self, PyObject *values) {
    (void)self;
    column_t column;
    int ok = open_column(values, &column, 0, -1);
    if (ok <= 0 || column.kind != C_F64) {
        if (column.has_view) PyBuffer_Release(&column.view);
        if (ok == 0) return NULL;
        Py_RETURN_NONE;
    }
    Py_ssize_t n = column.view.shape[0];
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list && i < n; i++) {
        char text[LEAF_MAX];
        double v;
        memcpy(&v, (const char *)column.view.buf + i * column.view.strides[0], sizeof v);
        PyObject *s = PyUnicode_FromStringAndSize(text, write_double(text, v) - text);
        if (!s) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, s);
    }
    PyBuffer_Release(&column.view);
    return list;
}

static PyMethodDef methods[] = {
    {"table", (PyCFunction)(void (*)(void))table, METH_FASTCALL, table_doc},
    {"float_texts", float_texts, METH_O, float_texts_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "streammetric._text",
    "The JSON text of a table of results (internal; see _text.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__text(void) { return PyModule_Create(&module); }
