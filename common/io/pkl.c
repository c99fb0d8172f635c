/* pkl.c: a safe reader for the release's pickled scipy sparse matrices
 * (trnMat.pkl / valMat.pkl / tstMat.pkl); the API is in pkl.h.
 *
 * A small pickle virtual machine for protocols 2 to 5 that builds plain data
 * only: None, bools, ints, floats, str, bytes, tuples, lists, dicts, numpy
 * dtypes and 1-D..N-D arrays, and placeholders for scipy's coo/csr/csc
 * classes.  Nothing is ever imported or called: a GLOBAL must be one of the
 * names in pkl_allowed[] (anything else is refused by name), and REDUCE,
 * NEWOBJ and BUILD are interpreted for those few names only.  At STOP the
 * sparse object's state dict is validated and expanded to coordinates.
 *
 * Safety: every length read from the input is checked against the bytes left
 * before anything is allocated; the stack, mark stack, memo and object count
 * are capped, and memo keys may not exceed the bytes read so far, so memory
 * grows with the input actually present; a sparse shape's sides that no
 * array backs are capped at TS_DIM_MAX like every reader's (docs/STREAMS.md,
 * "Limits"); the interpreter never recurses.  All objects live in one list
 * owned by the VM and are freed in one sweep, so shared references (memo,
 * DUP) need no reference counting and an error at any point leaks nothing. */
#include "io/pkl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ts.h" /* TS_DIM_MAX: the size limit on dimensions no data backs, shared by every reader */

#define PKL_MAX_STACK (1u << 20) /* stack entries */
#define PKL_MAX_MARKS (1u << 16) /* nested MARKs */
#define PKL_MAX_MEMO (1u << 20)  /* largest memo key + 1 */
#define PKL_MAX_OBJS (1u << 20)  /* objects per pickle (~64 bytes each) */
#define PKL_MAX_NDIM 32          /* numpy's own limit is 64 */

typedef enum {
    PKL_NONE, PKL_BOOL, PKL_INT, PKL_FLOAT, PKL_STR, PKL_BYTES, PKL_TUPLE,
    PKL_LIST, PKL_DICT, PKL_GLOBAL, PKL_DTYPE, PKL_ARRAY, PKL_SPARSE
} pkl_type;

/* Each type with its article, for messages ("BUILD on a tuple"). */
static const char *const pkl_type_names[] = {
    "None", "a bool", "an int", "a float", "a str", "a bytes object", "a tuple", "a list",
    "a dict", "a global", "a numpy dtype", "a numpy array", "a scipy sparse matrix",
};

/* What an allowed global stands for. */
typedef enum {
    PKL_G_RECONSTRUCT, /* numpy _reconstruct(ndarray, shape, typecode) */
    PKL_G_SCALAR,      /* numpy scalar(dtype, bytes) */
    PKL_G_FROMBUFFER,  /* numpy _frombuffer(buf, dtype, shape, order) */
    PKL_G_NDARRAY,     /* numpy.ndarray, only as _reconstruct's argument */
    PKL_G_DTYPE,       /* numpy.dtype(spec, align, copy) */
    PKL_G_ENCODE,      /* _codecs.encode(str, 'latin1'): protocol-2 bytes */
    PKL_G_BYTES,       /* bytes(): protocol-2 empty bytes */
    PKL_G_COO, PKL_G_CSR, PKL_G_CSC /* scipy classes, for NEWOBJ */
} pkl_gid;

/* The allow-list.  numpy 2 renamed numpy.core to numpy._core (its dtypes
 * still pickle as numpy.dtype); scipy 1.8 moved scipy.sparse.coo to ._coo
 * etc., and 1.8-1.10 kept the *_array classes in scipy.sparse._arrays.
 * copyreg._reconstructor is not needed: only protocols 0 and 1 use it. */
static const struct { const char *module, *name; pkl_gid id; } pkl_allowed[] = {
    {"numpy.core.multiarray", "_reconstruct", PKL_G_RECONSTRUCT},
    {"numpy._core.multiarray", "_reconstruct", PKL_G_RECONSTRUCT},
    {"numpy.core.multiarray", "scalar", PKL_G_SCALAR},
    {"numpy._core.multiarray", "scalar", PKL_G_SCALAR},
    {"numpy.core.numeric", "_frombuffer", PKL_G_FROMBUFFER},
    {"numpy._core.numeric", "_frombuffer", PKL_G_FROMBUFFER},
    {"numpy", "ndarray", PKL_G_NDARRAY},
    {"numpy", "dtype", PKL_G_DTYPE},
    {"_codecs", "encode", PKL_G_ENCODE},
    {"__builtin__", "bytes", PKL_G_BYTES}, /* Python 3's protocol-2 spelling */
    {"builtins", "bytes", PKL_G_BYTES},
    {"scipy.sparse.coo", "coo_matrix", PKL_G_COO},
    {"scipy.sparse._coo", "coo_matrix", PKL_G_COO},
    {"scipy.sparse._coo", "coo_array", PKL_G_COO},
    {"scipy.sparse._arrays", "coo_array", PKL_G_COO},
    {"scipy.sparse.csr", "csr_matrix", PKL_G_CSR},
    {"scipy.sparse._csr", "csr_matrix", PKL_G_CSR},
    {"scipy.sparse._csr", "csr_array", PKL_G_CSR},
    {"scipy.sparse._arrays", "csr_array", PKL_G_CSR},
    {"scipy.sparse.csc", "csc_matrix", PKL_G_CSC},
    {"scipy.sparse._csc", "csc_matrix", PKL_G_CSC},
    {"scipy.sparse._csc", "csc_array", PKL_G_CSC},
    {"scipy.sparse._arrays", "csc_array", PKL_G_CSC},
};
#define PKL_NALLOWED (sizeof pkl_allowed / sizeof pkl_allowed[0])

/* A numpy element type: kind 'b' (bool), 'i', 'u' or 'f'; size in bytes;
 * byte order '<' or '>' ('=' and '|' are resolved when parsed). */
typedef struct { char kind; uint8_t size; char order; } pkl_dt;

typedef struct pkl_obj pkl_obj;
struct pkl_obj {
    pkl_type t;
    union {
        int64_t i;  /* BOOL (0 or 1), INT */
        double f;   /* FLOAT */
        struct {    /* STR (UTF-8, or a Python 2 str), BYTES */
            const uint8_t *p; /* n bytes, inside the input or at own */
            size_t n;
            uint8_t *own;     /* heap copy freed with the object, or NULL */
            int py2;          /* STR from (SHORT_)BINSTRING: also bytes */
        } s;
        struct { pkl_obj **v; size_t n, cap; } seq; /* TUPLE, LIST; DICT as k,v pairs */
        size_t g;   /* GLOBAL: index in pkl_allowed */
        pkl_dt dt;  /* DTYPE */
        struct {    /* ARRAY */
            pkl_dt dt;
            int built;          /* data set (by BUILD or _frombuffer) */
            int ndim;
            int64_t count;      /* elements: product of the shape */
            const uint8_t *data;/* count * dt.size bytes, owned by a STR/BYTES */
        } a;
        struct { pkl_gid kind; pkl_obj *state; } sp; /* SPARSE: class, BUILD's dict */
    } u;
};

typedef struct {
    const uint8_t *buf;
    size_t len, pos;      /* input and read position */
    size_t op_pos;        /* offset of the current opcode */
    const char *op_name;  /* its name, for messages */
    pkl_obj **stack;
    size_t sp, stack_cap;
    size_t *marks;        /* stack heights at each MARK */
    size_t nmarks, marks_cap;
    pkl_obj **memo;       /* memo[key], NULL if unset */
    size_t memo_cap, memo_count;
    pkl_obj **objs;       /* every object, for the final sweep */
    size_t nobjs, objs_cap;
    size_t encoded;       /* bytes allocated by _codecs.encode so far */
    char *err;
    size_t errlen;
    int failed;
} pkl_vm;

/* ---- errors ---------------------------------------------------------- */

static int pkl_vfail(pkl_vm *vm, int at_op, const char *fmt, va_list ap)
{
    if (vm->failed) return -1;
    vm->failed = 1;
    if (!vm->err || vm->errlen == 0) return -1;
    vsnprintf(vm->err, vm->errlen, fmt, ap);
    if (at_op) {
        size_t used = strlen(vm->err);
        snprintf(vm->err + used, vm->errlen - used, " (%s at byte %zu)", vm->op_name, vm->op_pos);
    }
    return -1;
}

/* Record a one-line error (the first one wins); always returns -1. */
__attribute__((format(printf, 2, 3)))
static int pkl_fail(pkl_vm *vm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pkl_vfail(vm, 0, fmt, ap);
    va_end(ap);
    return -1;
}

/* Same, followed by " (OPCODE at byte N)". */
__attribute__((format(printf, 2, 3)))
static int pkl_opfail(pkl_vm *vm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pkl_vfail(vm, 1, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- opcodes ---------------------------------------------------------- */

/* Names of all pickle opcodes (NULL: not an opcode), for messages. */
static const char *const pkl_opnames[256] = {
    ['('] = "MARK", ['.'] = "STOP", ['0'] = "POP", ['1'] = "POP_MARK", ['2'] = "DUP",
    ['F'] = "FLOAT", ['I'] = "INT", ['J'] = "BININT", ['K'] = "BININT1", ['L'] = "LONG",
    ['M'] = "BININT2", ['N'] = "NONE", ['P'] = "PERSID", ['Q'] = "BINPERSID",
    ['R'] = "REDUCE", ['S'] = "STRING", ['T'] = "BINSTRING", ['U'] = "SHORT_BINSTRING",
    ['V'] = "UNICODE", ['X'] = "BINUNICODE", ['a'] = "APPEND", ['b'] = "BUILD",
    ['c'] = "GLOBAL", ['d'] = "DICT", ['}'] = "EMPTY_DICT", ['e'] = "APPENDS",
    ['g'] = "GET", ['h'] = "BINGET", ['i'] = "INST", ['j'] = "LONG_BINGET", ['l'] = "LIST",
    [']'] = "EMPTY_LIST", ['o'] = "OBJ", ['p'] = "PUT", ['q'] = "BINPUT",
    ['r'] = "LONG_BINPUT", ['s'] = "SETITEM", ['t'] = "TUPLE", [')'] = "EMPTY_TUPLE",
    ['u'] = "SETITEMS", ['G'] = "BINFLOAT", [0x80] = "PROTO", [0x81] = "NEWOBJ",
    [0x82] = "EXT1", [0x83] = "EXT2", [0x84] = "EXT4", [0x85] = "TUPLE1", [0x86] = "TUPLE2",
    [0x87] = "TUPLE3", [0x88] = "NEWTRUE", [0x89] = "NEWFALSE", [0x8a] = "LONG1",
    [0x8b] = "LONG4", ['B'] = "BINBYTES", ['C'] = "SHORT_BINBYTES",
    [0x8c] = "SHORT_BINUNICODE", [0x8d] = "BINUNICODE8", [0x8e] = "BINBYTES8",
    [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS", [0x91] = "FROZENSET", [0x92] = "NEWOBJ_EX",
    [0x93] = "STACK_GLOBAL", [0x94] = "MEMOIZE", [0x95] = "FRAME", [0x96] = "BYTEARRAY8",
    [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
};

/* ---- reading the input ------------------------------------------------ */

/* The next n argument bytes of the current opcode, or NULL (and an error)
 * if the input ends first.  Nothing is allocated from n before this check. */
static const uint8_t *pkl_take(pkl_vm *vm, uint64_t n)
{
    size_t left = vm->len - vm->pos;
    if (n > left) {
        pkl_fail(vm, "truncated at byte %zu in %s (needs %llu bytes, %zu left)",
                 vm->op_pos, vm->op_name, (unsigned long long)n, left);
        return NULL;
    }
    const uint8_t *p = vm->buf + vm->pos;
    vm->pos += (size_t)n;
    return p;
}

/* n-byte little-endian unsigned integer (n <= 8). */
static uint64_t pkl_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

/* Read an n-byte little-endian length argument (n = 1, 4 or 8). */
static int pkl_len_arg(pkl_vm *vm, int n, uint64_t *len)
{
    const uint8_t *p = pkl_take(vm, (uint64_t)n);
    if (!p) return -1;
    *len = pkl_le(p, n);
    return 0;
}

/* A text argument ending in '\n' (INT, GET, PUT, GLOBAL); *n excludes it. */
static const uint8_t *pkl_line(pkl_vm *vm, size_t *n)
{
    const uint8_t *p = vm->buf + vm->pos;
    const uint8_t *nl = memchr(p, '\n', vm->len - vm->pos);
    if (!nl) {
        pkl_fail(vm, "truncated at byte %zu in %s (no end of line)", vm->op_pos, vm->op_name);
        return NULL;
    }
    *n = (size_t)(nl - p);
    vm->pos += *n + 1;
    return p;
}

/* Parse a decimal int64 ("-12"); -1 if malformed or out of range. */
static int pkl_parse_dec(const uint8_t *p, size_t n, int64_t *v)
{
    size_t k = 0;
    int neg = 0;
    if (k < n && (p[k] == '-' || p[k] == '+')) neg = p[k++] == '-';
    if (k == n) return -1;
    uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; k < n; k++) {
        if (p[k] < '0' || p[k] > '9') return -1;
        unsigned d = p[k] - '0';
        if (u > (lim - d) / 10) return -1;
        u = u * 10 + d;
    }
    *v = !neg ? (int64_t)u : u > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)u;
    return 0;
}

/* A LONG1/LONG4 payload: n-byte little-endian two's complement; -1 if the
 * value does not fit in int64. */
static int pkl_parse_long(const uint8_t *p, uint64_t n, int64_t *v)
{
    if (n == 0) { *v = 0; return 0; }
    uint8_t sign = (p[n - 1] & 0x80) ? 0xff : 0;
    uint64_t m = n < 8 ? n : 8;
    for (uint64_t k = 8; k < n; k++)
        if (p[k] != sign) return -1;
    if (n > 8 && ((p[7] & 0x80) ? 0xff : 0) != sign) return -1;
    uint64_t u = pkl_le(p, (int)m);
    if (m < 8 && sign) u |= ~0ull << (8 * m);
    memcpy(v, &u, sizeof u);
    return 0;
}

/* ---- objects and the stacks ------------------------------------------- */

static pkl_obj *pkl_new(pkl_vm *vm, pkl_type t)
{
    if (vm->nobjs == vm->objs_cap) {
        if (vm->objs_cap >= PKL_MAX_OBJS) {
            pkl_opfail(vm, "too many objects (more than %u)", PKL_MAX_OBJS);
            return NULL;
        }
        size_t cap = vm->objs_cap ? 2 * vm->objs_cap : 64;
        pkl_obj **objs = realloc(vm->objs, cap * sizeof *objs);
        if (!objs) { pkl_fail(vm, "out of memory"); return NULL; }
        vm->objs = objs;
        vm->objs_cap = cap;
    }
    pkl_obj *o = calloc(1, sizeof *o);
    if (!o) { pkl_fail(vm, "out of memory"); return NULL; }
    o->t = t;
    vm->objs[vm->nobjs++] = o;
    return o;
}

static void pkl_free_obj(pkl_obj *o)
{
    if (o->t == PKL_TUPLE || o->t == PKL_LIST || o->t == PKL_DICT) free(o->u.seq.v);
    if (o->t == PKL_STR || o->t == PKL_BYTES) free(o->u.s.own);
    free(o);
}

static int pkl_push(pkl_vm *vm, pkl_obj *o)
{
    if (!o) return -1;
    if (vm->sp == vm->stack_cap) {
        if (vm->stack_cap >= PKL_MAX_STACK) return pkl_opfail(vm, "stack deeper than %u", PKL_MAX_STACK);
        size_t cap = vm->stack_cap ? 2 * vm->stack_cap : 64;
        pkl_obj **s = realloc(vm->stack, cap * sizeof *s);
        if (!s) return pkl_fail(vm, "out of memory");
        vm->stack = s;
        vm->stack_cap = cap;
    }
    vm->stack[vm->sp++] = o;
    return 0;
}

/* Lowest stack index the current opcode may touch: the innermost MARK. */
static size_t pkl_fence(const pkl_vm *vm)
{
    return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
}

static pkl_obj *pkl_pop(pkl_vm *vm)
{
    if (vm->sp <= pkl_fence(vm)) { pkl_opfail(vm, "stack underflow"); return NULL; }
    return vm->stack[--vm->sp];
}

static pkl_obj *pkl_top(pkl_vm *vm)
{
    if (vm->sp <= pkl_fence(vm)) { pkl_opfail(vm, "stack underflow"); return NULL; }
    return vm->stack[vm->sp - 1];
}

/* Pop the innermost MARK; *base is the stack height it recorded. */
static int pkl_pop_mark(pkl_vm *vm, size_t *base)
{
    if (!vm->nmarks) return pkl_opfail(vm, "no MARK");
    *base = vm->marks[--vm->nmarks];
    return 0;
}

/* Append an item to a TUPLE, LIST or DICT being built. */
static int pkl_seq_add(pkl_vm *vm, pkl_obj *o, pkl_obj *item)
{
    if (o->u.seq.n == o->u.seq.cap) {
        size_t cap = o->u.seq.cap ? 2 * o->u.seq.cap : 4;
        pkl_obj **v = realloc(o->u.seq.v, cap * sizeof *v);
        if (!v) return pkl_fail(vm, "out of memory");
        o->u.seq.v = v;
        o->u.seq.cap = cap;
    }
    o->u.seq.v[o->u.seq.n++] = item;
    return 0;
}

/* A new TUPLE, LIST or DICT holding stack[base..sp), which are popped. */
static pkl_obj *pkl_collect(pkl_vm *vm, pkl_type t, size_t base)
{
    pkl_obj *o = pkl_new(vm, t);
    if (!o) return NULL;
    size_t n = vm->sp - base;
    if (n) {
        o->u.seq.v = malloc(n * sizeof *o->u.seq.v);
        if (!o->u.seq.v) { pkl_fail(vm, "out of memory"); return NULL; }
        memcpy(o->u.seq.v, vm->stack + base, n * sizeof *o->u.seq.v);
        o->u.seq.n = o->u.seq.cap = n;
    }
    vm->sp = base;
    return o;
}

static pkl_obj *pkl_new_int(pkl_vm *vm, pkl_type t, int64_t v)
{
    pkl_obj *o = pkl_new(vm, t);
    if (o) o->u.i = v;
    return o;
}

/* A STR or BYTES referring to n bytes of the input at p (no copy). */
static pkl_obj *pkl_new_str(pkl_vm *vm, pkl_type t, const uint8_t *p, size_t n, int py2)
{
    pkl_obj *o = pkl_new(vm, t);
    if (!o) return NULL;
    o->u.s.p = p;
    o->u.s.n = n;
    o->u.s.py2 = py2;
    return o;
}

/* Is o a str (of either Python) equal to the C string s? */
static int pkl_str_is(const pkl_obj *o, const char *s)
{
    size_t n = strlen(s);
    return o->t == PKL_STR && o->u.s.n == n && memcmp(o->u.s.p, s, n) == 0;
}

/* Raw bytes of a BYTES or of a Python 2 str (which doubles as bytes). */
static int pkl_is_bytes(const pkl_obj *o)
{
    return o->t == PKL_BYTES || (o->t == PKL_STR && o->u.s.py2);
}

/* Last value stored under key in a DICT (later SETITEMs win), or NULL. */
static pkl_obj *pkl_dict_get(const pkl_obj *d, const char *key)
{
    for (size_t k = d->u.seq.n; k >= 2; k -= 2)
        if (pkl_str_is(d->u.seq.v[k - 2], key)) return d->u.seq.v[k - 1];
    return NULL;
}

/* ---- globals ----------------------------------------------------------- */

/* Printable copy of a name for messages: at most 120 bytes, odd bytes as '?'. */
static void pkl_printable(char *dst, size_t cap, const uint8_t *p, size_t n)
{
    size_t k = 0;
    for (; k < n && k + 1 < cap && k < 120; k++) dst[k] = (p[k] >= 32 && p[k] < 127) ? (char)p[k] : '?';
    dst[k] = 0;
}

static pkl_obj *pkl_find_global(pkl_vm *vm, const uint8_t *mod, size_t modn,
                                const uint8_t *name, size_t namen)
{
    for (size_t k = 0; k < PKL_NALLOWED; k++)
        if (strlen(pkl_allowed[k].module) == modn && memcmp(pkl_allowed[k].module, mod, modn) == 0 &&
            strlen(pkl_allowed[k].name) == namen && memcmp(pkl_allowed[k].name, name, namen) == 0) {
            pkl_obj *o = pkl_new(vm, PKL_GLOBAL);
            if (o) o->u.g = k;
            return o;
        }
    char m[128], n[128];
    pkl_printable(m, sizeof m, mod, modn);
    pkl_printable(n, sizeof n, name, namen);
    pkl_opfail(vm, "refused global '%s.%s'", m, n);
    return NULL;
}

/* ---- numpy dtypes, arrays, scalars ------------------------------------ */

static char pkl_native_order(void)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return '>';
#else
    return '<';
#endif
}

/* Parse a dtype spec such as "i4", "<f8", "b1", "u2". */
static int pkl_parse_dtype(pkl_vm *vm, const pkl_obj *spec, pkl_dt *dt)
{
    if (spec->t != PKL_STR) return pkl_opfail(vm, "dtype spec is %s, not a str", pkl_type_names[spec->t]);
    const uint8_t *p = spec->u.s.p;
    size_t n = spec->u.s.n;
    char order = '=';
    if (n && (p[0] == '<' || p[0] == '>' || p[0] == '|' || p[0] == '=')) {
        order = (char)p[0];
        p++, n--;
    }
    int ok = n == 2 && (p[0] == 'b' || p[0] == 'i' || p[0] == 'u' || p[0] == 'f') &&
             p[1] >= '1' && p[1] <= '8';
    if (ok) {
        dt->kind = (char)p[0];
        dt->size = (uint8_t)(p[1] - '0');
        ok = dt->kind == 'b' ? dt->size == 1
           : dt->kind == 'f' ? dt->size == 4 || dt->size == 8
           : dt->size == 1 || dt->size == 2 || dt->size == 4 || dt->size == 8;
    }
    if (!ok) {
        char s[128];
        pkl_printable(s, sizeof s, spec->u.s.p, spec->u.s.n);
        return pkl_opfail(vm, "unsupported dtype '%s'", s);
    }
    dt->order = (order == '>' || order == '<') ? order : pkl_native_order();
    return 0;
}

static const char *pkl_dt_name(const pkl_dt *dt, char buf[4])
{
    buf[0] = dt->size == 1 ? '|' : dt->order;
    buf[1] = dt->kind;
    buf[2] = (char)('0' + dt->size);
    buf[3] = 0;
    return buf;
}

/* Element k of an array as raw bits (zero-extended). */
static uint64_t pkl_elem_bits(const pkl_obj *a, int64_t k)
{
    int size = a->u.a.dt.size;
    const uint8_t *p = a->u.a.data + (size_t)k * (size_t)size;
    uint64_t v = 0;
    for (int b = 0; b < size; b++) v = (v << 8) | p[a->u.a.dt.order == '>' ? b : size - 1 - b];
    return v;
}

/* Element k as a signed integer (integer and bool kinds); *too_big is set
 * for uint64 values above INT64_MAX. */
static int64_t pkl_elem_int(const pkl_obj *a, int64_t k, int *too_big)
{
    uint64_t v = pkl_elem_bits(a, k);
    int bits = 8 * a->u.a.dt.size;
    *too_big = 0;
    if (a->u.a.dt.kind == 'i') {
        if (bits < 64 && (v >> (bits - 1)) & 1) v |= ~0ull << bits;
        int64_t s;
        memcpy(&s, &v, sizeof s);
        return s;
    }
    if (v > (uint64_t)INT64_MAX) { *too_big = 1; return INT64_MAX; }
    return (int64_t)v;
}

/* Element k converted to double, whatever the kind. */
static double pkl_elem_double(const pkl_obj *a, int64_t k)
{
    uint64_t v = pkl_elem_bits(a, k);
    switch (a->u.a.dt.kind) {
    case 'f':
        if (a->u.a.dt.size == 4) {
            uint32_t w = (uint32_t)v;
            float f;
            memcpy(&f, &w, sizeof f);
            return f;
        } else {
            double d;
            memcpy(&d, &v, sizeof d);
            return d;
        }
    case 'b': return v != 0;
    case 'u': return (double)v;
    default: {
        int too_big;
        return (double)pkl_elem_int(a, k, &too_big);
    }
    }
}

/* Shape tuple -> ndim and element count, checking the byte size fits. */
static int pkl_shape(pkl_vm *vm, const pkl_obj *shape, const pkl_dt *dt, int *ndim, int64_t *count)
{
    if (shape->t != PKL_TUPLE)
        return pkl_opfail(vm, "array shape is %s, not a tuple", pkl_type_names[shape->t]);
    if (shape->u.seq.n > PKL_MAX_NDIM) return pkl_opfail(vm, "array has %zu dimensions", shape->u.seq.n);
    int64_t c = 1;
    for (size_t k = 0; k < shape->u.seq.n; k++) {
        const pkl_obj *d = shape->u.seq.v[k];
        if (d->t != PKL_INT) return pkl_opfail(vm, "array dimension is %s, not an int", pkl_type_names[d->t]);
        if (d->u.i < 0) return pkl_opfail(vm, "negative array dimension %lld", (long long)d->u.i);
        if (d->u.i && c > INT64_MAX / dt->size / d->u.i) return pkl_opfail(vm, "array too large");
        c *= d->u.i;
    }
    *ndim = (int)shape->u.seq.n;
    *count = c;
    return 0;
}

/* Fill an array from raw bytes, which must be exactly count * size long. */
static int pkl_array_fill(pkl_vm *vm, pkl_obj *a, const pkl_dt *dt, const pkl_obj *shape, const pkl_obj *raw)
{
    int ndim = 0;
    int64_t count = 0;
    if (pkl_shape(vm, shape, dt, &ndim, &count)) return -1;
    if (!pkl_is_bytes(raw))
        return pkl_opfail(vm, "array data is %s, not bytes (object arrays are not supported)",
                          pkl_type_names[raw->t]);
    if ((uint64_t)raw->u.s.n != (uint64_t)count * dt->size) {
        char nm[4];
        return pkl_opfail(vm, "array data has %zu bytes but %lld elements of %s need %llu", raw->u.s.n,
                          (long long)count, pkl_dt_name(dt, nm), (unsigned long long)count * dt->size);
    }
    a->u.a.dt = *dt;
    a->u.a.ndim = ndim;
    a->u.a.count = count;
    a->u.a.data = raw->u.s.p;
    a->u.a.built = 1;
    return 0;
}

/* BUILD on an array from _reconstruct: state (version, shape, dtype,
 * is_fortran, rawdata), or the old 4-tuple without version.  The order flag
 * only matters for N-D arrays, and only 1-D ones are ever read. */
static int pkl_build_array(pkl_vm *vm, pkl_obj *a, const pkl_obj *st)
{
    if (a->u.a.built) return pkl_opfail(vm, "BUILD on an array that already has data");
    if (st->t != PKL_TUPLE || (st->u.seq.n != 5 && st->u.seq.n != 4))
        return pkl_opfail(vm, "array state is not a 4- or 5-tuple");
    pkl_obj *const *v = st->u.seq.v + (st->u.seq.n == 5);
    if (st->u.seq.n == 5 && st->u.seq.v[0]->t != PKL_INT)
        return pkl_opfail(vm, "array state version is not an int");
    if (v[1]->t != PKL_DTYPE) return pkl_opfail(vm, "array dtype is %s", pkl_type_names[v[1]->t]);
    if (v[2]->t != PKL_BOOL && v[2]->t != PKL_INT)
        return pkl_opfail(vm, "array order flag is %s", pkl_type_names[v[2]->t]);
    return pkl_array_fill(vm, a, &v[1]->u.dt, v[0], v[3]);
}

/* BUILD on a dtype: state (version, byteorder, ...); only the order is used. */
static int pkl_build_dtype(pkl_vm *vm, pkl_obj *d, const pkl_obj *st)
{
    if (st->t != PKL_TUPLE || st->u.seq.n < 2) return pkl_opfail(vm, "dtype state is not a tuple");
    const pkl_obj *o = st->u.seq.v[1];
    char c = (o->t == PKL_STR && o->u.s.n == 1) ? (char)o->u.s.p[0] : 0;
    if (c != '<' && c != '>' && c != '|' && c != '=')
        return pkl_opfail(vm, "dtype byte order is not one of < > | =");
    d->u.dt.order = (c == '<' || c == '>') ? c : pkl_native_order();
    return 0;
}

/* ---- calls: REDUCE, NEWOBJ, BUILD -------------------------------------- */

#define PKL_ANY SIZE_MAX /* any number of arguments */

/* Check that args is a tuple of n arguments (or PKL_ANY) for what. */
static int pkl_args(pkl_vm *vm, const pkl_obj *args, size_t n, const char *what)
{
    if (args->t != PKL_TUPLE) return pkl_opfail(vm, "arguments are %s, not a tuple", pkl_type_names[args->t]);
    if (n != PKL_ANY && args->u.seq.n != n)
        return pkl_opfail(vm, "%s takes %zu arguments, got %zu", what, n, args->u.seq.n);
    return 0;
}

/* _codecs.encode(s, 'latin1'): code points below 256 become bytes. */
static pkl_obj *pkl_call_encode(pkl_vm *vm, const pkl_obj *args)
{
    if (pkl_args(vm, args, 2, "_codecs.encode")) return NULL;
    const pkl_obj *s = args->u.seq.v[0], *enc = args->u.seq.v[1];
    if (s->t != PKL_STR || !(pkl_str_is(enc, "latin1") || pkl_str_is(enc, "latin-1"))) {
        pkl_opfail(vm, "_codecs.encode accepts only (str, 'latin1')");
        return NULL;
    }
    /* A real pickle encodes each string once, so all output fits in the
     * input size; this stops one memoized string being encoded over and over. */
    if (s->u.s.n > vm->len - vm->encoded) {
        pkl_opfail(vm, "_codecs.encode output exceeds the input size");
        return NULL;
    }
    vm->encoded += s->u.s.n;
    pkl_obj *o = pkl_new(vm, PKL_BYTES);
    if (!o) return NULL;
    o->u.s.own = malloc(s->u.s.n ? s->u.s.n : 1); /* never longer than the UTF-8 */
    if (!o->u.s.own) { pkl_fail(vm, "out of memory"); return NULL; }
    const uint8_t *p = s->u.s.p;
    size_t n = 0;
    for (size_t k = 0; k < s->u.s.n; k++) {
        if (p[k] < 0x80) {
            o->u.s.own[n++] = p[k];
        } else if ((p[k] == 0xc2 || p[k] == 0xc3) && k + 1 < s->u.s.n && (p[k + 1] & 0xc0) == 0x80) {
            o->u.s.own[n++] = (uint8_t)(((p[k] & 0x1f) << 6) | (p[k + 1] & 0x3f));
            k++;
        } else {
            pkl_opfail(vm, "_codecs.encode: character at offset %zu is not latin1", k);
            return NULL;
        }
    }
    o->u.s.p = o->u.s.own;
    o->u.s.n = n;
    return o;
}

/* numpy scalar(dtype, bytes) -> bool, int or float. */
static pkl_obj *pkl_call_scalar(pkl_vm *vm, const pkl_obj *args)
{
    if (pkl_args(vm, args, 2, "numpy scalar")) return NULL;
    const pkl_obj *d = args->u.seq.v[0], *raw = args->u.seq.v[1];
    if (d->t != PKL_DTYPE || !pkl_is_bytes(raw) || raw->u.s.n != d->u.dt.size) {
        pkl_opfail(vm, "numpy scalar needs a dtype and its bytes");
        return NULL;
    }
    pkl_obj tmp = {.t = PKL_ARRAY};
    tmp.u.a.dt = d->u.dt;
    tmp.u.a.count = 1;
    tmp.u.a.data = raw->u.s.p;
    if (d->u.dt.kind == 'f') {
        pkl_obj *o = pkl_new(vm, PKL_FLOAT);
        if (o) o->u.f = pkl_elem_double(&tmp, 0);
        return o;
    }
    int too_big;
    int64_t v = pkl_elem_int(&tmp, 0, &too_big);
    if (too_big) { pkl_opfail(vm, "numpy uint64 scalar too large"); return NULL; }
    return pkl_new_int(vm, d->u.dt.kind == 'b' ? PKL_BOOL : PKL_INT, v);
}

/* numpy _frombuffer(buf, dtype, shape, order): protocol 5 in-band arrays. */
static pkl_obj *pkl_call_frombuffer(pkl_vm *vm, const pkl_obj *args)
{
    if (pkl_args(vm, args, 4, "numpy _frombuffer")) return NULL;
    pkl_obj *const *v = args->u.seq.v;
    if (v[1]->t != PKL_DTYPE) {
        pkl_opfail(vm, "_frombuffer dtype is %s", pkl_type_names[v[1]->t]);
        return NULL;
    }
    if (!pkl_str_is(v[3], "C") && !pkl_str_is(v[3], "F")) {
        pkl_opfail(vm, "_frombuffer order is not 'C' or 'F'");
        return NULL;
    }
    pkl_obj *a = pkl_new(vm, PKL_ARRAY);
    if (!a || pkl_array_fill(vm, a, &v[1]->u.dt, v[2], v[0])) return NULL;
    return a;
}

/* REDUCE: call an allowed global with a tuple of arguments. */
static pkl_obj *pkl_reduce(pkl_vm *vm, const pkl_obj *fn, const pkl_obj *args)
{
    if (fn->t != PKL_GLOBAL) {
        pkl_opfail(vm, "cannot call %s", pkl_type_names[fn->t]);
        return NULL;
    }
    if (pkl_args(vm, args, PKL_ANY, "REDUCE")) return NULL;
    pkl_obj *const *v = args->u.seq.v;
    switch (pkl_allowed[fn->u.g].id) {
    case PKL_G_RECONSTRUCT: {
        /* _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills */
        if (pkl_args(vm, args, 3, "numpy _reconstruct")) return NULL;
        if (v[0]->t != PKL_GLOBAL || pkl_allowed[v[0]->u.g].id != PKL_G_NDARRAY) {
            pkl_opfail(vm, "_reconstruct of something other than numpy.ndarray");
            return NULL;
        }
        return pkl_new(vm, PKL_ARRAY);
    }
    case PKL_G_DTYPE: {
        /* dtype('i4', False, True): native order until BUILD says otherwise */
        if (args->u.seq.n < 1 || args->u.seq.n > 3) {
            pkl_opfail(vm, "numpy dtype takes 1 to 3 arguments");
            return NULL;
        }
        pkl_obj *d = pkl_new(vm, PKL_DTYPE);
        if (!d || pkl_parse_dtype(vm, v[0], &d->u.dt)) return NULL;
        return d;
    }
    case PKL_G_SCALAR: return pkl_call_scalar(vm, args);
    case PKL_G_FROMBUFFER: return pkl_call_frombuffer(vm, args);
    case PKL_G_ENCODE: return pkl_call_encode(vm, args);
    case PKL_G_BYTES:
        if (pkl_args(vm, args, 0, "bytes")) return NULL;
        return pkl_new_str(vm, PKL_BYTES, vm->buf, 0, 0);
    default:
        pkl_opfail(vm, "cannot call %s.%s", pkl_allowed[fn->u.g].module, pkl_allowed[fn->u.g].name);
        return NULL;
    }
}

/* NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args, **kwargs) for scipy classes. */
static pkl_obj *pkl_newobj(pkl_vm *vm, const pkl_obj *cls, const pkl_obj *args, const pkl_obj *kwargs)
{
    if (pkl_args(vm, args, PKL_ANY, "NEWOBJ")) return NULL;
    if (kwargs && kwargs->t != PKL_DICT) {
        pkl_opfail(vm, "keyword arguments are %s, not a dict", pkl_type_names[kwargs->t]);
        return NULL;
    }
    if (cls->t != PKL_GLOBAL) {
        pkl_opfail(vm, "cannot instantiate %s", pkl_type_names[cls->t]);
        return NULL;
    }
    pkl_gid id = pkl_allowed[cls->u.g].id;
    if (id != PKL_G_COO && id != PKL_G_CSR && id != PKL_G_CSC) {
        pkl_opfail(vm, "cannot instantiate %s.%s", pkl_allowed[cls->u.g].module, pkl_allowed[cls->u.g].name);
        return NULL;
    }
    pkl_obj *o = pkl_new(vm, PKL_SPARSE);
    if (o) o->u.sp.kind = id;
    return o;
}

/* BUILD: obj.__setstate__(state) for dtypes, arrays and sparse objects. */
static int pkl_build(pkl_vm *vm, pkl_obj *obj, pkl_obj *st)
{
    switch (obj->t) {
    case PKL_DTYPE: return pkl_build_dtype(vm, obj, st);
    case PKL_ARRAY: return pkl_build_array(vm, obj, st);
    case PKL_SPARSE:
        if (st->t != PKL_DICT)
            return pkl_opfail(vm, "sparse matrix state is %s, not a dict", pkl_type_names[st->t]);
        if (obj->u.sp.state) return pkl_opfail(vm, "second BUILD on a sparse matrix");
        obj->u.sp.state = st;
        return 0;
    default: return pkl_opfail(vm, "BUILD on %s", pkl_type_names[obj->t]);
    }
}

/* ---- the interpreter --------------------------------------------------- */

static int pkl_memo_put(pkl_vm *vm, uint64_t key)
{
    pkl_obj *o = pkl_top(vm);
    if (!o) return -1;
    if (key >= PKL_MAX_MEMO) return pkl_opfail(vm, "memo key %llu too large", (unsigned long long)key);
    /* the memo grows with the pickle read so far, not with a key it declares
     * (a pickler numbers its memo entries 0, 1, 2, ..., each costing bytes) */
    if (key > vm->pos)
        return pkl_opfail(vm, "memo key %llu is larger than the %zu bytes read so far", (unsigned long long)key,
                          vm->pos);
    if (key >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 64;
        while (cap <= key) cap *= 2;
        pkl_obj **m = realloc(vm->memo, cap * sizeof *m);
        if (!m) return pkl_fail(vm, "out of memory");
        memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof *m);
        vm->memo = m;
        vm->memo_cap = cap;
    }
    if (!vm->memo[key]) vm->memo_count++;
    vm->memo[key] = o;
    return 0;
}

static int pkl_memo_get(pkl_vm *vm, uint64_t key)
{
    if (key >= vm->memo_cap || !vm->memo[key])
        return pkl_opfail(vm, "memo key %llu not set", (unsigned long long)key);
    return pkl_push(vm, vm->memo[key]);
}

/* Push a STR or BYTES whose length is an n-byte little-endian prefix. */
static int pkl_op_string(pkl_vm *vm, pkl_type t, int n, int py2)
{
    uint64_t len;
    if (pkl_len_arg(vm, n, &len)) return -1;
    if (py2 && n == 4 && len > INT32_MAX) return pkl_opfail(vm, "negative BINSTRING length");
    const uint8_t *p = pkl_take(vm, len);
    if (!p) return -1;
    return pkl_push(vm, pkl_new_str(vm, t, p, (size_t)len, py2));
}

/* Execute one opcode; 1 after STOP (result in *res), 0 to go on, -1 on error. */
static int pkl_step(pkl_vm *vm, pkl_obj **res)
{
    vm->op_pos = vm->pos;
    if (vm->pos >= vm->len) return pkl_fail(vm, "truncated at byte %zu: no STOP opcode", vm->pos);
    uint8_t op = vm->buf[vm->pos++];
    vm->op_name = pkl_opnames[op];
    if (!vm->op_name) {
        vm->op_name = "?";
        return pkl_fail(vm, "unknown opcode 0x%02x at byte %zu", op, vm->op_pos);
    }
    const uint8_t *p;
    uint64_t u;
    int64_t i;
    size_t n = 0, base = 0;
    pkl_obj *a, *b, *c;
    switch (op) {
    case 0x80: /* PROTO */
        if (!(p = pkl_take(vm, 1))) return -1;
        if (p[0] < 2 || p[0] > 5) return pkl_opfail(vm, "unsupported pickle protocol %u", p[0]);
        return 0;
    case 0x95: /* FRAME: a length prefix for what follows; only checked */
        if (pkl_len_arg(vm, 8, &u)) return -1;
        if (u > vm->len - vm->pos)
            return pkl_fail(vm, "truncated at byte %zu in FRAME (needs %llu bytes, %zu left)",
                            vm->op_pos, (unsigned long long)u, vm->len - vm->pos);
        return 0;
    case '.': /* STOP */
        if (!(*res = pkl_pop(vm))) return -1;
        return 1;
    case '(': /* MARK */
        if (vm->nmarks == vm->marks_cap) {
            if (vm->marks_cap >= PKL_MAX_MARKS)
                return pkl_opfail(vm, "more than %u nested MARKs", PKL_MAX_MARKS);
            size_t cap = vm->marks_cap ? 2 * vm->marks_cap : 16;
            size_t *m = realloc(vm->marks, cap * sizeof *m);
            if (!m) return pkl_fail(vm, "out of memory");
            vm->marks = m;
            vm->marks_cap = cap;
        }
        vm->marks[vm->nmarks++] = vm->sp;
        return 0;
    case '0': /* POP: an object, or a MARK with nothing above it (as CPython) */
        if (vm->nmarks && vm->marks[vm->nmarks - 1] == vm->sp) { vm->nmarks--; return 0; }
        return pkl_pop(vm) ? 0 : -1;
    case '1': /* POP_MARK */
        if (pkl_pop_mark(vm, &base)) return -1;
        vm->sp = base;
        return 0;
    case '2': /* DUP */
        return (a = pkl_top(vm)) ? pkl_push(vm, a) : -1;
    case 'c': { /* GLOBAL "module\nname\n" */
        size_t mn, nn;
        const uint8_t *m = pkl_line(vm, &mn), *nm = m ? pkl_line(vm, &nn) : NULL;
        if (!nm) return -1;
        return pkl_push(vm, pkl_find_global(vm, m, mn, nm, nn));
    }
    case 0x93: /* STACK_GLOBAL */
        if (!(b = pkl_pop(vm)) || !(a = pkl_pop(vm))) return -1;
        if (a->t != PKL_STR || b->t != PKL_STR) return pkl_opfail(vm, "module and name are not str");
        return pkl_push(vm, pkl_find_global(vm, a->u.s.p, a->u.s.n, b->u.s.p, b->u.s.n));
    case 'p': /* PUT "key\n" */
        if (!(p = pkl_line(vm, &n))) return -1;
        if (pkl_parse_dec(p, n, &i) || i < 0) return pkl_opfail(vm, "bad memo key");
        return pkl_memo_put(vm, (uint64_t)i);
    case 'q': return pkl_len_arg(vm, 1, &u) ? -1 : pkl_memo_put(vm, u);  /* BINPUT */
    case 'r': return pkl_len_arg(vm, 4, &u) ? -1 : pkl_memo_put(vm, u);  /* LONG_BINPUT */
    case 0x94: return pkl_memo_put(vm, vm->memo_count);                  /* MEMOIZE */
    case 'g': /* GET "key\n" */
        if (!(p = pkl_line(vm, &n))) return -1;
        if (pkl_parse_dec(p, n, &i) || i < 0) return pkl_opfail(vm, "bad memo key");
        return pkl_memo_get(vm, (uint64_t)i);
    case 'h': return pkl_len_arg(vm, 1, &u) ? -1 : pkl_memo_get(vm, u);  /* BINGET */
    case 'j': return pkl_len_arg(vm, 4, &u) ? -1 : pkl_memo_get(vm, u);  /* LONG_BINGET */
    case 'N': return pkl_push(vm, pkl_new(vm, PKL_NONE));
    case 0x88: return pkl_push(vm, pkl_new_int(vm, PKL_BOOL, 1));         /* NEWTRUE */
    case 0x89: return pkl_push(vm, pkl_new_int(vm, PKL_BOOL, 0));         /* NEWFALSE */
    case 'I': /* INT "123\n"; "01"/"00" are True/False */
        if (!(p = pkl_line(vm, &n))) return -1;
        if (n == 2 && p[0] == '0' && (p[1] == '0' || p[1] == '1'))
            return pkl_push(vm, pkl_new_int(vm, PKL_BOOL, p[1] == '1'));
        if (pkl_parse_dec(p, n, &i)) return pkl_opfail(vm, "bad or too large integer");
        return pkl_push(vm, pkl_new_int(vm, PKL_INT, i));
    case 'J': /* BININT: 4-byte signed */
        if (!(p = pkl_take(vm, 4))) return -1;
        u = pkl_le(p, 4);
        return pkl_push(vm, pkl_new_int(vm, PKL_INT, (int64_t)u - (u >> 31 ? (int64_t)1 << 32 : 0)));
    case 'K': case 'M': /* BININT1, BININT2: unsigned */
        if (!(p = pkl_take(vm, op == 'K' ? 1 : 2))) return -1;
        return pkl_push(vm, pkl_new_int(vm, PKL_INT, (int64_t)pkl_le(p, op == 'K' ? 1 : 2)));
    case 0x8a: case 0x8b: /* LONG1, LONG4 */
        if (pkl_len_arg(vm, op == 0x8a ? 1 : 4, &u)) return -1;
        if (op == 0x8b && u > INT32_MAX) return pkl_opfail(vm, "negative LONG4 length");
        if (!(p = pkl_take(vm, u))) return -1;
        if (pkl_parse_long(p, u, &i)) return pkl_opfail(vm, "integer does not fit in 64 bits");
        return pkl_push(vm, pkl_new_int(vm, PKL_INT, i));
    case 'G': { /* BINFLOAT: 8-byte big-endian double */
        if (!(p = pkl_take(vm, 8))) return -1;
        uint64_t bits = 0;
        for (int k = 0; k < 8; k++) bits = (bits << 8) | p[k];
        if (!(a = pkl_new(vm, PKL_FLOAT))) return -1;
        memcpy(&a->u.f, &bits, sizeof bits);
        return pkl_push(vm, a);
    }
    case 0x8c: return pkl_op_string(vm, PKL_STR, 1, 0);   /* SHORT_BINUNICODE */
    case 'X':  return pkl_op_string(vm, PKL_STR, 4, 0);   /* BINUNICODE */
    case 0x8d: return pkl_op_string(vm, PKL_STR, 8, 0);   /* BINUNICODE8 */
    case 'U':  return pkl_op_string(vm, PKL_STR, 1, 1);   /* SHORT_BINSTRING */
    case 'T':  return pkl_op_string(vm, PKL_STR, 4, 1);   /* BINSTRING */
    case 'C':  return pkl_op_string(vm, PKL_BYTES, 1, 0); /* SHORT_BINBYTES */
    case 'B':  return pkl_op_string(vm, PKL_BYTES, 4, 0); /* BINBYTES */
    case 0x8e: return pkl_op_string(vm, PKL_BYTES, 8, 0); /* BINBYTES8 */
    case 0x96: return pkl_op_string(vm, PKL_BYTES, 8, 0); /* BYTEARRAY8 */
    case ')': return pkl_push(vm, pkl_new(vm, PKL_TUPLE));  /* EMPTY_TUPLE */
    case ']': return pkl_push(vm, pkl_new(vm, PKL_LIST));   /* EMPTY_LIST */
    case '}': return pkl_push(vm, pkl_new(vm, PKL_DICT));   /* EMPTY_DICT */
    case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
        n = (size_t)(op - 0x84);
        if (vm->sp - pkl_fence(vm) < n) return pkl_opfail(vm, "stack underflow");
        return pkl_push(vm, pkl_collect(vm, PKL_TUPLE, vm->sp - n));
    case 't': case 'l': /* TUPLE, LIST: items since MARK */
        if (pkl_pop_mark(vm, &base)) return -1;
        return pkl_push(vm, pkl_collect(vm, op == 't' ? PKL_TUPLE : PKL_LIST, base));
    case 'd': /* DICT: key, value pairs since MARK */
        if (pkl_pop_mark(vm, &base)) return -1;
        if ((vm->sp - base) % 2) return pkl_opfail(vm, "odd number of items");
        return pkl_push(vm, pkl_collect(vm, PKL_DICT, base));
    case 'a': /* APPEND */
        if (!(b = pkl_pop(vm)) || !(a = pkl_top(vm))) return -1;
        if (a->t != PKL_LIST) return pkl_opfail(vm, "APPEND to %s", pkl_type_names[a->t]);
        return pkl_seq_add(vm, a, b);
    case 's': /* SETITEM */
        if (!(c = pkl_pop(vm)) || !(b = pkl_pop(vm)) || !(a = pkl_top(vm))) return -1;
        if (a->t != PKL_DICT) return pkl_opfail(vm, "SETITEM on %s", pkl_type_names[a->t]);
        return (pkl_seq_add(vm, a, b) || pkl_seq_add(vm, a, c)) ? -1 : 0;
    case 'e': case 'u': /* APPENDS, SETITEMS: items since MARK into the object below it */
        if (pkl_pop_mark(vm, &base)) return -1;
        if (base <= pkl_fence(vm)) return pkl_opfail(vm, "stack underflow");
        a = vm->stack[base - 1];
        if (a->t != (op == 'e' ? PKL_LIST : PKL_DICT))
            return pkl_opfail(vm, "%s on %s", vm->op_name, pkl_type_names[a->t]);
        if (op == 'u' && (vm->sp - base) % 2) return pkl_opfail(vm, "odd number of items");
        for (size_t k = base; k < vm->sp; k++)
            if (pkl_seq_add(vm, a, vm->stack[k])) return -1;
        vm->sp = base;
        return 0;
    case 'R': /* REDUCE */
        if (!(b = pkl_pop(vm)) || !(a = pkl_pop(vm))) return -1;
        return pkl_push(vm, pkl_reduce(vm, a, b));
    case 0x81: /* NEWOBJ */
        if (!(b = pkl_pop(vm)) || !(a = pkl_pop(vm))) return -1;
        return pkl_push(vm, pkl_newobj(vm, a, b, NULL));
    case 0x92: /* NEWOBJ_EX */
        if (!(c = pkl_pop(vm)) || !(b = pkl_pop(vm)) || !(a = pkl_pop(vm))) return -1;
        return pkl_push(vm, pkl_newobj(vm, a, b, c));
    case 'b': /* BUILD */
        if (!(b = pkl_pop(vm)) || !(a = pkl_top(vm))) return -1;
        return pkl_build(vm, a, b);
    case 0x97: case 0x98: /* NEXT_BUFFER, READONLY_BUFFER */
        return pkl_fail(vm, "unsupported opcode %s at byte %zu: out-of-band buffers are not supported",
                        vm->op_name, vm->op_pos);
    default:
        return pkl_fail(vm, "unsupported opcode %s at byte %zu", vm->op_name, vm->op_pos);
    }
}

/* ---- sparse matrix to coordinates ------------------------------------- */

/* The state entry o (called key in messages) as a filled 1-D array; NULL and
 * an error if absent, not an array, or not of the wanted kind ('i': integer
 * dtypes, 0: any). */
static const pkl_obj *pkl_state_array(pkl_vm *vm, const char *key, const pkl_obj *o, char want)
{
    char nm[4];
    if (!o)
        pkl_fail(vm, "sparse matrix state has no '%s'", key);
    else if (o->t != PKL_ARRAY)
        pkl_fail(vm, "'%s' is %s, not a numpy array", key, pkl_type_names[o->t]);
    else if (!o->u.a.built)
        pkl_fail(vm, "'%s' array has no data (no BUILD)", key);
    else if (o->u.a.ndim != 1)
        pkl_fail(vm, "'%s' array has %d dimensions, expected 1", key, o->u.a.ndim);
    else if (want == 'i' && o->u.a.dt.kind != 'i' && o->u.a.dt.kind != 'u')
        pkl_fail(vm, "'%s' array has dtype %s, expected integers", key, pkl_dt_name(&o->u.a.dt, nm));
    else
        return o;
    return NULL;
}

/* Index k of an integer array into *out, checked to be in [0, dim); what is
 * "row" or "column" (messages say e.g. "row index 7 out of range for 6 rows"). */
static int pkl_index(pkl_vm *vm, const pkl_obj *a, int64_t k, int64_t dim, const char *what, int64_t *out)
{
    int too_big;
    int64_t v = pkl_elem_int(a, k, &too_big);
    if (too_big)
        return pkl_fail(vm, "%s index %llu out of range for %lld %ss", what,
                        (unsigned long long)pkl_elem_bits(a, k), (long long)dim, what);
    if (v < 0 || v >= dim)
        return pkl_fail(vm, "%s index %lld out of range for %lld %ss", what, (long long)v, (long long)dim, what);
    *out = v;
    return 0;
}

static int pkl_alloc_coo(pkl_vm *vm, pkl_coo *out, int64_t n)
{
    size_t m = n ? (size_t)n : 1;
    out->n = n;
    out->row = malloc(m * sizeof *out->row);
    out->col = malloc(m * sizeof *out->col);
    out->val = malloc(m * sizeof *out->val);
    return (out->row && out->col && out->val) ? 0 : pkl_fail(vm, "out of memory");
}

/* coo: row/col (or scipy >= 1.13's coords tuple) and data, all of length n. */
static int pkl_coo_from_state(pkl_vm *vm, const pkl_obj *st, pkl_coo *out)
{
    const pkl_obj *coords = pkl_dict_get(st, "coords"), *row, *col;
    if (coords) {
        if (coords->t != PKL_TUPLE || coords->u.seq.n != 2)
            return pkl_fail(vm, "'coords' is not a tuple of 2 arrays");
        row = pkl_state_array(vm, "coords[0]", coords->u.seq.v[0], 'i');
        col = row ? pkl_state_array(vm, "coords[1]", coords->u.seq.v[1], 'i') : NULL;
    } else {
        row = pkl_state_array(vm, "row", pkl_dict_get(st, "row"), 'i');
        col = row ? pkl_state_array(vm, "col", pkl_dict_get(st, "col"), 'i') : NULL;
    }
    const pkl_obj *data = col ? pkl_state_array(vm, "data", pkl_dict_get(st, "data"), 0) : NULL;
    if (!data) return -1;
    int64_t n = data->u.a.count;
    if (row->u.a.count != n || col->u.a.count != n)
        return pkl_fail(vm, "coo arrays differ in length: row %lld, col %lld, data %lld",
                        (long long)row->u.a.count, (long long)col->u.a.count, (long long)n);
    if (pkl_alloc_coo(vm, out, n)) return -1;
    for (int64_t k = 0; k < n; k++) {
        if (pkl_index(vm, row, k, out->rows, "row", &out->row[k]) ||
            pkl_index(vm, col, k, out->cols, "column", &out->col[k]))
            return -1;
        out->val[k] = pkl_elem_double(data, k);
    }
    return 0;
}

/* csr / csc: indptr over rows (csr) or columns (csc), indices, data. */
static int pkl_cs_from_state(pkl_vm *vm, const pkl_obj *st, int csc, pkl_coo *out)
{
    const pkl_obj *indptr = pkl_state_array(vm, "indptr", pkl_dict_get(st, "indptr"), 'i');
    const pkl_obj *indices = indptr ? pkl_state_array(vm, "indices", pkl_dict_get(st, "indices"), 'i') : NULL;
    const pkl_obj *data = indices ? pkl_state_array(vm, "data", pkl_dict_get(st, "data"), 0) : NULL;
    if (!data) return -1;
    int64_t major = csc ? out->cols : out->rows, minor = csc ? out->rows : out->cols;
    int64_t nnz = data->u.a.count;
    if (indices->u.a.count != nnz)
        return pkl_fail(vm, "indices has %lld entries but data has %lld", (long long)indices->u.a.count,
                        (long long)nnz);
    if (indptr->u.a.count == 0 || indptr->u.a.count - 1 != major)
        return pkl_fail(vm, "indptr has %lld entries for %lld %s (needs one more)", (long long)indptr->u.a.count,
                        (long long)major, csc ? "columns" : "rows");
    int64_t prev = 0;
    for (int64_t k = 0; k <= major; k++) {
        int too_big;
        int64_t v = pkl_elem_int(indptr, k, &too_big);
        if (k == 0 && v != 0) return pkl_fail(vm, "indptr starts at %lld, not 0", (long long)v);
        if (v < prev)
            return pkl_fail(vm, "indptr decreases: indptr[%lld] = %lld after %lld", (long long)k, (long long)v,
                            (long long)prev);
        if (too_big || v > nnz)
            return pkl_fail(vm, "indptr[%lld] = %lld exceeds the %lld entries", (long long)k, (long long)v,
                            (long long)nnz);
        prev = v;
    }
    if (prev != nnz)
        return pkl_fail(vm, "indptr ends at %lld but there are %lld entries", (long long)prev, (long long)nnz);
    if (pkl_alloc_coo(vm, out, nnz)) return -1;
    int too_big;
    for (int64_t m = 0; m < major; m++) {
        int64_t lo = pkl_elem_int(indptr, m, &too_big), hi = pkl_elem_int(indptr, m + 1, &too_big);
        for (int64_t k = lo; k < hi; k++) {
            int64_t *maj = csc ? &out->col[k] : &out->row[k], *min = csc ? &out->row[k] : &out->col[k];
            *maj = m;
            if (pkl_index(vm, indices, k, minor, csc ? "row" : "column", min)) return -1;
            out->val[k] = pkl_elem_double(data, k);
        }
    }
    return 0;
}

static int pkl_to_coo(pkl_vm *vm, const pkl_obj *o, pkl_coo *out)
{
    if (o->t != PKL_SPARSE)
        return pkl_fail(vm, "pickle holds %s, not a scipy sparse matrix", pkl_type_names[o->t]);
    const pkl_obj *st = o->u.sp.state;
    if (!st) return pkl_fail(vm, "sparse matrix has no state (no BUILD)");
    const pkl_obj *shape = pkl_dict_get(st, "_shape");
    if (!shape) shape = pkl_dict_get(st, "shape");
    if (!shape) return pkl_fail(vm, "sparse matrix state has no '_shape'");
    if (shape->t != PKL_TUPLE || shape->u.seq.n != 2)
        return pkl_fail(vm, "sparse shape is not a tuple of 2 ints");
    for (int k = 0; k < 2; k++) {
        const pkl_obj *d = shape->u.seq.v[k];
        if (d->t != PKL_INT) return pkl_fail(vm, "sparse shape holds %s, not an int", pkl_type_names[d->t]);
        if (d->u.i < 0) return pkl_fail(vm, "negative sparse shape %lld", (long long)d->u.i);
    }
    out->rows = shape->u.seq.v[0]->u.i;
    out->cols = shape->u.seq.v[1]->u.i;
    /* Sizes no bytes in the pickle back get the cap every reader applies
     * (docs/STREAMS.md, "Limits"): both sides of a coo matrix, the minor
     * side of a csr/csc one.  Its major side is backed by indptr, whose
     * length must match it (below).  Without this a few hundred bytes
     * could declare 2^26 users, and a csr of them needs a gigabyte. */
    int major = o->u.sp.kind == PKL_G_CSR ? 0 : o->u.sp.kind == PKL_G_CSC ? 1 : -1;
    for (int k = 0; k < 2; k++)
        if (k != major && shape->u.seq.v[k]->u.i > TS_DIM_MAX)
            return pkl_fail(vm, "sparse shape %lld x %lld: %lld %s, more than the %lld a matrix may have",
                            (long long)out->rows, (long long)out->cols, (long long)shape->u.seq.v[k]->u.i,
                            k ? "columns" : "rows", (long long)TS_DIM_MAX);
    if (o->u.sp.kind == PKL_G_COO) return pkl_coo_from_state(vm, st, out);
    return pkl_cs_from_state(vm, st, o->u.sp.kind == PKL_G_CSC, out);
}

/* ---- API --------------------------------------------------------------- */

void pkl_coo_free(pkl_coo *m)
{
    if (!m) return;
    free(m->row);
    free(m->col);
    free(m->val);
    memset(m, 0, sizeof *m);
}

int pkl_read_coo(const uint8_t *buf, size_t len, pkl_coo *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = 0;
    pkl_vm vm = {.buf = buf, .len = len, .err = err, .errlen = errlen, .op_name = "?"};
    int rc;
    if (len == 0)
        rc = pkl_fail(&vm, "empty input, not a pickle");
    else if (buf[0] != 0x80)
        rc = pkl_fail(&vm, "not a pickle of protocol 2 to 5 (starts with byte 0x%02x, not PROTO)", buf[0]);
    else {
        pkl_obj *res = NULL;
        while ((rc = pkl_step(&vm, &res)) == 0) {}
        rc = rc > 0 ? pkl_to_coo(&vm, res, out) : -1;
    }
    for (size_t k = 0; k < vm.nobjs; k++) pkl_free_obj(vm.objs[k]);
    free(vm.objs);
    free(vm.stack);
    free(vm.marks);
    free(vm.memo);
    if (rc) pkl_coo_free(out);
    return rc;
}
