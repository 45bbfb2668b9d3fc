// The whole-array fast paths of the public fills (issue 12, per-call overhead): fill_whole,
// sparse_whole, raw_whole and the FastEntry callables built on them (section at the end).
//
// A public fill such as `normal(None, seed=0, out=buf)` spends most of a small call in Python:
// argument checks, then _core.fill, whose pybind11 dispatch converts twelve arguments (three of
// them vectors) and releases the GIL. Most calls are of one shape: a whole, aligned, writable
// C-contiguous NumPy array of a float dtype, plain int or float arguments. fill_whole takes such
// a call as it was made, checks it here and fills `out`; for anything else it returns None and
// the Python function runs its full checks, which are the only source of error messages. So it
// accepts a subset of what the Python checks accept (each check below names its Python
// counterpart), and writes the same bits: the same kernel, the same parameters.
//
// A raw METH_FASTCALL function rather than a pybind11 one: pybind11's dispatcher costs about
// 0.4 us for ten arguments, more than the whole call may take (the target is 3x NumPy's
// 0.7 us for 16 values).
#include "pybind11.hpp"

#include <structmember.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <new>
#include <stdexcept>
#include <vector>

#include "../parallel/sparse.hpp"
#include "../simd/dispatch.hpp"

namespace weightfill::bindings {
namespace {

// Kinds of fill: the random ones are Dist values; kConstant is a memory fill of `a`; kDiagonal
// (2-D only) writes `a` at [i, i] and zeros elsewhere (schemes.eye, identity).
constexpr long kConstant = 100;
constexpr long kDiagonal = 102;
constexpr long kDirac = 103;  // schemes.dirac: `a` the groups, by a FastEntry only

// Fills of fewer elements run on the calling thread with the GIL held: they take at most tens of
// microseconds (16384 float32 normals: about 15 us), less than releasing the GIL and waking the
// threads would cost them. Larger ones go through run_plan, as _core.fill does.
constexpr uint64_t kDirectElements = uint64_t{1} << 14;

struct Settings {
    // Descriptor objects of float32, float64, float16 and bfloat16, indexed by DType. NumPy's
    // native descriptors are singletons, so a pointer comparison identifies them; an equal but
    // distinct descriptor (a byte-swapped or rebuilt one) takes the Python path.
    PyObject* descr[kNumDTypes] = {};
    PyObject* scalar_type[kNumDTypes] = {};  // np.float32 etc.: dtype=np.float32 is common
    double largest[kNumDTypes] = {};          // the dtype's largest finite value
    PyTypeObject* array_type = nullptr;       // numpy.ndarray
    PyObject* u32 = nullptr;                  // numpy.dtype(numpy.uint32)
    PyObject* streams = nullptr;              // streams._NAMED: str -> stream id, exact str keys
    PyObject* named_stream = nullptr;         // streams._named_stream: hashes and caches a name
    PyObject* memo = nullptr;                 // schemes._common._MEMO (see memo_whole)
    PyObject* known = nullptr;                // _truncnorm._KNOWN (see memo_whole)
    PyObject* array_view = nullptr;           // _backends.array_view (see entry_call)
    bool ready = false;
};
Settings g;

// Threads inside a weightfill deferred() block: their fills must be recorded in the block's plan
// (Python), so while any block is open every call takes the Python path.
std::atomic<int> g_deferred{0};

PyObject* new_ref(PyObject* o) {  // Py_NewRef, which Python 3.9 lacks
    Py_INCREF(o);
    return o;
}

// An exact Python int in [0, 2^64) (streams.normalize_seed / normalize_stream's fast paths).
bool as_u64(PyObject* o, uint64_t& v) {
    if (!PyLong_CheckExact(o)) return false;
    v = PyLong_AsUnsignedLongLong(o);
    if (v == uint64_t(-1) && PyErr_Occurred()) {  // negative or too large
        PyErr_Clear();
        return false;
    }
    return true;
}

// An exact float, or an exact int that converts to a finite float (_args.finite_param's fast
// path: float(value)). Bools are ints but not exact ones, so they take the Python path.
bool as_real(PyObject* o, double& v) {
    if (PyFloat_CheckExact(o)) {
        v = PyFloat_AS_DOUBLE(o);
        return true;
    }
    if (!PyLong_CheckExact(o)) return false;
    v = PyLong_AsDouble(o);  // correctly rounded, as float(int)
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
    }
    return true;
}

// An exact int in [lo, hi] (Python's _as_index for plain ints).
bool as_index(PyObject* o, long long lo, long long hi, long long& v) {
    if (!PyLong_CheckExact(o)) return false;
    v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
    }
    return lo <= v && v <= hi;
}

// finite_param: |v| <= the dtype's largest value (false for NaN and infinities).
bool within(double v, DType t) { return std::fabs(v) <= g.largest[int(t)]; }

// The DType of `descr` when it is one of the four, else -1.
int dtype_of(PyObject* descr) {
    for (int t = 0; t < kNumDTypes; ++t)
        if (g.descr[t] && g.descr[t] == descr) return t;
    return -1;
}

// `extra` of a kind that takes no constants: None or ().
bool no_extra(PyObject* extra) {
    return extra == Py_None || (PyTuple_CheckExact(extra) && PyTuple_GET_SIZE(extra) == 0);
}

// The Python-side parameter checks of each kind, for the arguments fill_whole accepts; false
// sends the call to Python (which raises, or handles the rarer case). May adjust `p`.
bool check_params(long kind, DType t, PyObject* extra, FillParams& p) {
    const double a = p.a, b = p.b;
    switch (kind) {
        case long(Dist::uniform): {
            // distributions.uniform: finite bounds, low <= high; 16-bit outputs need a ceiling
            // computed in Python; bounds outside +-max/2 need Python's overflow test of high - low.
            if (t != DType::f32 && t != DType::f64) return false;
            if (!within(a, t) || !within(b, t) || !(a <= b)) return false;
            const double half = 0.5 * g.largest[int(t)];
            if (!(-half <= a && b <= half)) return false;
            // Stream-spec 3.1: low == high gives +0.0 when both are zeros (of either sign, also
            // after rounding to float32); the kernels' clamp would give high's sign.
            if ((a == 0.0 && b == 0.0) ||
                (t == DType::f32 && std::fabs(a) < 1e-37 && std::fabs(b) < 1e-37 &&
                 float(a) == 0.0f && float(b) == 0.0f))
                p.a = p.b = 0.0;
            return no_extra(extra);
        }
        case long(Dist::normal): {
            // distributions._mean_std(bounded=False): finite, std >= 0, and the largest |z|
            // (6.6605 for 32-bit draws, 8.5717 for float64) cannot overflow.
            if (!within(a, t) || !within(b, t) || !(b >= 0.0)) return false;
            const double zmax = t == DType::f64 ? 8.5717 : 6.6605;
            if (std::fabs(a) + zmax * b > g.largest[int(t)]) return false;
            return no_extra(extra);
        }
        case long(Dist::truncated_normal): {
            // _mean_std(bounded=True); the bounds and the constants `extra` come from
            // _truncnorm._KNOWN, which only holds constants of arguments Python has checked.
            if (!within(a, t) || !within(b, t) || !(b >= 0.0)) return false;
            if (!PyTuple_CheckExact(extra) || PyTuple_GET_SIZE(extra) != 6) return false;
            for (Py_ssize_t i = 0; i < 6; ++i) {
                PyObject* c = PyTuple_GET_ITEM(extra, i);
                if (!PyFloat_CheckExact(c)) return false;
                p.extra[i] = PyFloat_AS_DOUBLE(c);
            }
            return true;
        }
        case kConstant:
        case kDiagonal:
            // schemes.constant, and schemes._diagonal's finite_param: a finite value within
            // range (infinities, NaN and the 16-bit roundings take the Python path).
            return (t == DType::f32 || t == DType::f64) && within(a, t) && no_extra(extra);
        default:
            return false;
    }
}

// Sets the Python error for the C++ exception being handled (in a catch block) as pybind11's
// bound functions translate it (a Python error restored, std::invalid_argument a ValueError,
// std::bad_alloc a MemoryError, ...), so that a call fails alike on either path. Raw CPython
// functions must not let an exception through their C callers.
void set_python_error() { py::detail::translate_exception(std::current_exception()); }

// WEIGHTFILL_ISA and WEIGHTFILL_THREADING are checked by every fill, also by the small ones
// that start no thread or (a constant fill) run no kernel: a bad value is the same
// std::invalid_argument wherever it is met first.
void check_environment() {
    dispatch::active();
    thread_backend();
}

// Fills `n` elements at `data`. Returns false with a Python exception set.
bool run(long kind, DType t, const FillParams& p, uint64_t n, void* data) {
    try {
        if (kind == kConstant) {
            uint64_t bits;
            size_t size;
            if (t == DType::f32) {
                const float f = float(p.a);  // round to nearest even, as np.asarray(v, float32)
                uint32_t u;
                std::memcpy(&u, &f, 4);
                bits = u, size = 4;
            } else {
                std::memcpy(&bits, &p.a, 8);
                size = 8;
            }
            if (n < kDirectElements) {
                write_pattern(data, n * size, pattern_word(bits, size));
                return true;
            }
            PlanItem item;
            item.pattern = true;
            item.count = n;
            item.itemsize = size;
            item.bits = bits;
            item.out = data;
            run_plan({item});
            return true;
        }
        const Dist dist = Dist(kind);
        if (n < kDirectElements) {
            RangeFn fn = dispatch::active().lookup(dist, t);
            if (!fn) throw std::invalid_argument("dtype: not supported by this distribution");
            fn(p, 0, n, data);
            return true;
        }
        PlanItem item;
        item.dist = dist;
        item.dtype = t;
        item.params = p;
        item.region = Region{{n}, {0}, {n}};  // a whole array: its flat C order is the tensor's
        item.out = data;
        run_plan({item});
        return true;
    } catch (...) {
        set_python_error();
        return false;
    }
}

// A whole-array target: the caller's `out`, or a new array that new_result() makes once every
// argument has passed (so that a call handed to Python has allocated nothing).
struct Whole {
    DType t;
    uint64_t n;  // elements
    char* data;  // nullptr until new_result() for a new array
    int nd;
    const Py_intptr_t* dims;  // out's shape, or `shape` below
    PyObject* out;            // borrowed; nullptr: a new array
    Py_intptr_t shape[32];    // a new array's shape (more dimensions take the Python path)
    Whole() = default;
    Whole(const Whole&) = delete;  // `dims` may point into the object itself
};

// The DType a `dtype` argument names: with out of DType out_t (>= 0), out_t when dtype is None,
// out's descriptor or its scalar type; without out (out_t -1), the default float32 or one of
// the four by descriptor or scalar type. -1 for anything else (a string, another dtype): the
// Python path's normalize_dtype.
int target_dtype(PyObject* dtype, int out_t) {
    if (out_t >= 0)
        return dtype == Py_None || dtype == g.descr[out_t] || dtype == g.scalar_type[out_t]
                   ? out_t
                   : -1;
    if (dtype == Py_None) return int(DType::f32);
    for (int t = 0; t < kNumDTypes; ++t)
        if (g.descr[t] && (dtype == g.descr[t] || dtype == g.scalar_type[t])) return t;
    return -1;
}

// A new array's shape: an exact tuple of at most 32 exact ints >= 0, or one exact int, of fewer
// than kDirectElements elements in all (normalize_shape's fast path; a larger array is made by
// _engine.empty in Python, which a deferred block's plan must see).
bool new_shape(PyObject* shape, Whole& w) {
    PyObject* const* dims = &shape;
    Py_ssize_t nd = 1;
    if (PyTuple_CheckExact(shape)) {
        dims = &PyTuple_GET_ITEM(shape, 0);
        nd = PyTuple_GET_SIZE(shape);
    } else if (!PyLong_CheckExact(shape)) {
        return false;
    }
    if (nd > Py_ssize_t(std::size(w.shape))) return false;
    uint64_t n = 1;
    for (Py_ssize_t d = 0; d < nd; ++d) {
        long long v;
        if (!as_index(dims[d], 0, (long long)kDirectElements, v)) return false;
        w.shape[d] = Py_intptr_t(v);
        n = std::min(n * uint64_t(v), kDirectElements);  // < 2^28: no overflow
    }
    if (n >= kDirectElements) return false;
    w.n = n;
    w.nd = int(nd);
    w.dims = w.shape;
    w.out = nullptr;
    w.data = nullptr;
    return true;
}

// Whether (shape, dtype, out, region) name a whole array this path fills (resolve_target's fast
// path): no region, no deferred block open, and either out an exact ndarray, C-contiguous,
// aligned and writable, of one of the four float dtypes, with dtype None, out's descriptor or
// its scalar type and shape None or an exact tuple of exact ints equal to out's shape; or out
// None, a small new_shape() and target_dtype()'s dtype.
bool whole_target(PyObject* shape, PyObject* dtype, PyObject* out, PyObject* region, Whole& w) {
    if (!g.ready || region != Py_None || g_deferred.load(std::memory_order_relaxed) != 0)
        return false;
    if (out == Py_None) {
        const int ti = target_dtype(dtype, -1);
        if (ti < 0 || !new_shape(shape, w)) return false;
        w.t = DType(ti);
        return true;
    }
    if (Py_TYPE(out) != g.array_type) return false;
    const auto* arr = py::detail::array_proxy(out);
    constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                           py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                           py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    if ((arr->flags & kFlags) != kFlags) return false;
    const int out_t = dtype_of(arr->descr);
    if (out_t < 0) return false;
    const int ti = target_dtype(dtype, out_t);
    if (ti < 0) return false;
    w.t = DType(ti);
    w.nd = arr->nd;
    w.dims = arr->dimensions;
    w.data = arr->data;
    w.out = out;
    w.n = 1;
    for (int d = 0; d < arr->nd; ++d) w.n *= uint64_t(arr->dimensions[d]);
    if (shape == Py_None) return true;
    if (!PyTuple_CheckExact(shape) || PyTuple_GET_SIZE(shape) != arr->nd) return false;
    for (int d = 0; d < arr->nd; ++d) {
        PyObject* s = PyTuple_GET_ITEM(shape, d);
        if (!PyLong_CheckExact(s)) return false;
        const Py_ssize_t v = PyLong_AsSsize_t(s);
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return false;
        }
        if (v != arr->dimensions[d]) return false;
    }
    return true;
}

// What the fill returns (a new reference): the caller's out, or the new array of a target
// without one, made here as _engine.empty makes it (_core.empty_aligned: 64-byte aligned,
// owning its memory); w.data then points into it. nullptr with an error (MemoryError, or
// check_environment's ValueError).
PyObject* new_result(Whole& w) {
    try {
        check_environment();
    } catch (...) {
        set_python_error();
        return nullptr;
    }
    if (w.out) return new_ref(w.out);
    PyObject* arr = new_aligned_array(g.descr[int(w.t)], dtype_size(w.t), w.nd, w.dims, true);
    if (arr) w.data = py::detail::array_proxy(arr)->data;
    return arr;
}

// seed: an int (None, fresh entropy, is Python's); stream: an int or an exact str. 1: `key` is
// made; 0: not arguments this path takes (the Python function decides, and words any error);
// -1: an error to propagate (a KeyboardInterrupt). A name not in streams._NAMED is hashed by
// streams._named_stream (SHA-256 by hashlib, about 1 us), which caches it: weightfill.torch.init
// names every call's stream afresh ("torch.nn.init#k"), and each of those calls took the whole
// Python path. That runs Python code, so callers call this before borrowing anything.
int stream_key(PyObject* seed_o, PyObject* stream_o, StreamKey& key) {
    uint64_t seed, stream;
    if (!g.ready || !as_u64(seed_o, seed)) return 0;  // g.streams is set with g.ready
    if (PyUnicode_CheckExact(stream_o)) {
        PyObject* id = PyDict_GetItemWithError(g.streams, stream_o);  // borrowed
        if (id) {
            if (!as_u64(id, stream)) return 0;
        } else {
            PyErr_Clear();  // an exact str hashes and compares without raising: a miss
            PyObject* sid = PyObject_CallOneArg(g.named_stream, stream_o);
            if (!sid) {
                if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
                PyErr_Clear();  // a name with no UTF-8 form: the Python function says so
                return 0;
            }
            const bool ok = as_u64(sid, stream);
            Py_DECREF(sid);
            if (!ok) return 0;
        }
    } else if (!as_u64(stream_o, stream)) {
        return 0;
    }
    key = StreamKey::make(seed, stream);
    return 1;
}

// Whether a raw function got its `n` positional arguments; else a TypeError.
bool arity(Py_ssize_t nargs, Py_ssize_t n, const char* name) {
    if (nargs == n) return true;
    PyErr_Format(PyExc_TypeError, "%s takes %zd positional arguments (%zd given)", name, n, nargs);
    return false;
}

// The fill of fill_whole, memo_whole and FastEntry: out or the new array (a new reference),
// None, or nullptr with an error.
PyObject* whole(long kind, PyObject* shape, PyObject* a, PyObject* b, PyObject* seed,
                PyObject* stream, PyObject* dtype, PyObject* out, PyObject* region,
                PyObject* extra) {
    Whole w;
    FillParams p{};
    const int keyed = stream_key(seed, stream, p.key);  // first: it may run Python code
    if (keyed < 0) return nullptr;
    if (!keyed || !whole_target(shape, dtype, out, region, w) || !as_real(a, p.a) ||
        !as_real(b, p.b) || !check_params(kind, w.t, extra, p) || (kind == kDiagonal && w.nd != 2))
        Py_RETURN_NONE;
    PyObject* result = new_result(w);
    if (!result) return nullptr;
    if (kind == kDiagonal) {
        // Zeros, then the diagonal, rounded as np.asarray(value, float64).astype(dtype).
        FillParams zero = p;
        zero.a = 0.0;
        if (w.n && !run(kConstant, w.t, zero, w.n, w.data)) {
            Py_DECREF(result);
            return nullptr;
        }
        const uint64_t cols = uint64_t(w.dims[1]);
        const uint64_t diag = std::min(uint64_t(w.dims[0]), cols);
        for (uint64_t i = 0; i < diag; ++i) {
            if (w.t == DType::f32)
                reinterpret_cast<float*>(w.data)[i * cols + i] = float(p.a);
            else
                reinterpret_cast<double*>(w.data)[i * cols + i] = p.a;
        }
    } else if (w.n && !run(kind, w.t, p, w.n, w.data)) {
        Py_DECREF(result);
        return nullptr;
    }
    return result;
}

// fill_whole(kind, shape, a, b, seed, stream, dtype, out, region, extra) -> out (or, out None,
// a new array), or None when the call is not one this path takes.
PyObject* fill_whole(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (!arity(nargs, 10, "fill_whole")) return nullptr;
    const long kind = PyLong_AsLong(args[0]);
    if (kind == -1 && PyErr_Occurred()) return nullptr;
    return whole(kind, args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8],
                 args[9]);
}

// truncated_normal for a whole array: its constants come from _truncnorm._KNOWN, which holds
// those of argument sets the Python checks passed, keyed (mean, std, lower, upper, the result's
// dtype) and compared by value. The bounds must be floats and mean and std exact ints or floats,
// so that the lookup's hashing and comparisons run no Python code.
PyObject* truncated_whole(PyObject* shape, PyObject* mean, PyObject* std_dev, PyObject* lower,
                          PyObject* upper, PyObject* seed, PyObject* stream, PyObject* dtype,
                          PyObject* out, PyObject* region) {
    auto number = [](PyObject* o) { return PyFloat_CheckExact(o) || PyLong_CheckExact(o); };
    if (!g.ready || !g.known || !PyFloat_CheckExact(lower) || !PyFloat_CheckExact(upper) ||
        !number(mean) || !number(std_dev))
        Py_RETURN_NONE;
    PyObject* descr;  // whole() checks that dtype agrees with out's
    if (Py_TYPE(out) == g.array_type) {
        descr = reinterpret_cast<PyObject*>(py::detail::array_proxy(out)->descr);
    } else {
        const int t = out == Py_None ? target_dtype(dtype, -1) : -1;
        if (t < 0) Py_RETURN_NONE;
        descr = g.descr[t];
    }
    PyObject* key = PyTuple_Pack(5, mean, std_dev, lower, upper, descr);
    if (!key) return nullptr;
    PyObject* extra = PyDict_GetItemWithError(g.known, key);  // borrowed
    Py_DECREF(key);
    if (!extra) {
        if (PyErr_Occurred()) return nullptr;  // the key holds only numbers and a dtype
        Py_RETURN_NONE;
    }
    // Held: whole() may run Python code (a new stream name) before check_params copies them.
    Py_INCREF(extra);
    PyObject* r = whole(long(Dist::truncated_normal), shape, mean, std_dev, seed, stream, dtype,
                        out, region, extra);
    Py_DECREF(extra);
    return r;
}

// memo_whole's fill for the memo entry `hit` of `key`.
PyObject* memo_hit(PyObject* hit, PyObject* key, PyObject* seed, PyObject* stream,
                   PyObject* dtype, PyObject* out, PyObject* region) {
    if (!PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 2) Py_RETURN_NONE;
    PyObject *kind_o = PyTuple_GET_ITEM(hit, 0), *params = PyTuple_GET_ITEM(hit, 1);
    const long kind = PyLong_AsLong(kind_o);
    if (kind == -1 && PyErr_Occurred()) return nullptr;
    if (!PyTuple_CheckExact(params)) Py_RETURN_NONE;
    PyObject* const shape = PyTuple_GET_ITEM(key, 1);
    if (kind != long(Dist::truncated_normal)) {
        if (PyTuple_GET_SIZE(params) != 2) Py_RETURN_NONE;
        return whole(kind, shape, PyTuple_GET_ITEM(params, 0), PyTuple_GET_ITEM(params, 1), seed,
                     stream, dtype, out, region, Py_None);
    }
    if (PyTuple_GET_SIZE(params) != 4) Py_RETURN_NONE;  // (mean, std, lower, upper)
    return truncated_whole(shape, PyTuple_GET_ITEM(params, 0), PyTuple_GET_ITEM(params, 1),
                           PyTuple_GET_ITEM(params, 2), PyTuple_GET_ITEM(params, 3), seed, stream,
                           dtype, out, region);
}

// The fill a scheme's memoized derivation gives (weightfill.schemes._common._MEMO: key ->
// (kind, params), key[1] the shape), through whole(): out, None, or nullptr with an error. A
// truncated normal's constants come from _truncnorm._KNOWN (truncated_whole). None for an
// unknown key (the scheme then derives and checks in Python).
PyObject* memo_whole(PyObject* key, PyObject* seed, PyObject* stream, PyObject* dtype,
                     PyObject* out, PyObject* region) {
    if (!g.memo || !g.known) Py_RETURN_NONE;
    PyObject* hit = PyDict_GetItemWithError(g.memo, key);  // borrowed
    if (!hit) {
        PyErr_Clear();  // unknown, or an unhashable shape (the full path refuses or takes it)
        Py_RETURN_NONE;
    }
    Py_INCREF(hit);  // holds the floats passed on, whatever the lookup's comparisons ran
    PyObject* r = memo_hit(hit, key, seed, stream, dtype, out, region);
    Py_DECREF(hit);
    return r;
}

// sparse_whole(shape, sparsity, nonzeros, std, axis, seed, stream, dtype, out, region, method)
// -> out (or a new array), or None: distributions.sparse for a whole 2-D array of fewer than
// kDirectElements elements (larger ones gain nothing here and take the Python path, which
// releases the GIL). Each check names the Python check it stands for; the counts are computed
// as there.
PyObject* sparse_whole(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (!arity(nargs, 11, "sparse_whole")) return nullptr;
    PyObject *sparsity = args[1], *nonzeros = args[2], *method_o = args[10];
    Whole w;
    FillParams p{};
    const int keyed = stream_key(args[5], args[6], p.key);  // first: it may run Python code
    if (keyed < 0) return nullptr;
    if (!keyed || !whole_target(args[0], args[7], args[8], args[9], w) || w.nd != 2 ||
        w.n >= kDirectElements)
        Py_RETURN_NONE;
    long long axis;
    if (!as_index(args[4], -2, 1, axis)) Py_RETURN_NONE;  // axis in (0, 1, -1, -2)
    const int ax = int((axis + 2) % 2);
    // method: "floyd" (stream-spec 3.8) or "keys" (3.9), as _engine.SPARSE_METHODS.
    if (!PyUnicode_CheckExact(method_o)) Py_RETURN_NONE;
    SparseMethod method;
    if (PyUnicode_CompareWithASCIIString(method_o, "floyd") == 0)
        method = SparseMethod::floyd;
    else if (PyUnicode_CompareWithASCIIString(method_o, "keys") == 0)
        method = SparseMethod::keys;
    else
        Py_RETURN_NONE;
    // The size limits (fewer than 2^31 lines, shorter than 2^32 or, for keys, 2^31 positions)
    // cannot bind below kDirectElements elements.
    const uint64_t n = uint64_t(w.dims[ax]);
    uint64_t zeros;
    if (nonzeros == Py_None) {
        // sparsity: a real number in [0, 1] (an exact float or int); zeros = ceil(sparsity * n)
        // in double arithmetic, as math.ceil(float(sparsity) * n) (n < 2^53 converts exactly).
        double s;
        if (!as_real(sparsity, s) || !(0.0 <= s && s <= 1.0)) Py_RETURN_NONE;
        zeros = uint64_t(std::ceil(s * double(n)));
    } else {
        long long k;
        if (sparsity != Py_None || !as_index(nonzeros, 0, (long long)n, k)) Py_RETURN_NONE;
        zeros = n - uint64_t(k);
    }
    // std: distributions._mean_std(0, std, bounded=False), as fill_whole's normal.
    p.a = 0.0;
    if (!as_real(args[3], p.b) || !check_params(long(Dist::normal), w.t, Py_None, p))
        Py_RETURN_NONE;
    // Draw whichever of the zeros and the kept positions is fewer (distributions.sparse).
    const bool sampled_are_zero = zeros <= n - zeros;
    const uint64_t rows = uint64_t(w.dims[0]), cols = uint64_t(w.dims[1]);
    const SparseSpec spec{rows, cols, ax, sampled_are_zero ? zeros : n - zeros, sampled_are_zero,
                          0, rows, 0, cols, method};
    PyObject* result = new_result(w);
    if (!result) return nullptr;
    try {
        // On the calling thread with the GIL held, not interruptible: at most 2^14 elements
        // (sparse_fill runs such small work on the calling thread).
        sparse_fill(p, w.t, spec, w.data, {});
    } catch (...) {
        set_python_error();
        Py_DECREF(result);
        return nullptr;
    }
    return result;
}

// schemes.dirac for a whole float32/float64 array (3-, 4- or 5-D) and plain arguments: zeros,
// and ones at (out = g * per + d, in = d, kernel centre) for each group g and d < min(per, in),
// per = out channels / groups; `torch_layout` says the axes are (out, in, *kernel), else
// (*kernel, in, out) (schemes._common._conv_axes). Out or the new array, None, or nullptr with
// an error.
PyObject* dirac_whole(PyObject* shape, PyObject* groups_o, bool torch_layout, PyObject* dtype,
                      PyObject* out, PyObject* region) {
    Whole w;
    long long groups;
    if (!whole_target(shape, dtype, out, region, w) || w.nd < 3 || w.nd > 5 ||
        (w.t != DType::f32 && w.t != DType::f64) ||
        !as_index(groups_o, 1, (long long)(uint64_t(1) << 62), groups))  // _as_index, >= 1
        Py_RETURN_NONE;
    const int nd = w.nd, o_ax = torch_layout ? 0 : nd - 1, i_ax = torch_layout ? 1 : nd - 2;
    uint64_t stride[5], centre = 0;
    stride[nd - 1] = 1;
    for (int d = nd - 2; d >= 0; --d) stride[d] = stride[d + 1] * uint64_t(w.dims[d + 1]);
    for (int d = 0; d < nd; ++d)
        if (d != o_ax && d != i_ax) centre += uint64_t(w.dims[d]) / 2 * stride[d];
    const uint64_t outs = uint64_t(w.dims[o_ax]), ins = uint64_t(w.dims[i_ax]);
    if (outs % uint64_t(groups) != 0) Py_RETURN_NONE;  // Python names the divisibility error
    PyObject* result = new_result(w);
    if (!result || w.n == 0) return result;  // an empty kernel axis: no centre, nothing to write
    FillParams zero{};
    if (!run(kConstant, w.t, zero, w.n, w.data)) {
        Py_DECREF(result);
        return nullptr;
    }
    const uint64_t per = outs / uint64_t(groups), diag = std::min(per, ins);
    for (uint64_t g = 0; g < uint64_t(groups); ++g) {
        for (uint64_t d = 0; d < diag; ++d) {
            const uint64_t at = (g * per + d) * stride[o_ax] + d * stride[i_ax] + centre;
            if (w.t == DType::f32)
                reinterpret_cast<float*>(w.data)[at] = 1.0f;
            else
                reinterpret_cast<double*>(w.data)[at] = 1.0;
        }
    }
    return result;
}

// raw_whole(n, seed, stream, offset) -> a new uint32 array, or None: distributions.random_raw
// for n < kDirectElements words and plain arguments (n and offset exact ints, offset < 2^64),
// in the array the Python path makes (_engine.empty: 64-byte aligned, owning its memory).
PyObject* raw_whole(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (!arity(nargs, 4, "raw_whole")) return nullptr;
    long long n;
    uint64_t offset;
    FillParams p{};
    if (!g.ready || g_deferred.load(std::memory_order_relaxed) != 0 ||
        !as_index(args[0], 0, (long long)kDirectElements - 1, n) || !as_u64(args[3], offset))
        Py_RETURN_NONE;
    const int keyed = stream_key(args[1], args[2], p.key);
    if (keyed < 0) return nullptr;
    if (!keyed) Py_RETURN_NONE;
    // Word `offset + k` is word (offset + k) % 4 of block (offset + k) / 4, as the Python path
    // splits it: block base offset / 4, then a region from offset % 4.
    p.block_base = offset / 4;
    PyObject* out = nullptr;
    try {
        check_environment();
        RangeFn fn = dispatch::active().lookup(Dist::raw, DType::u32);
        if (!fn) throw std::logic_error("no raw kernel");
        const Py_intptr_t dims[1] = {Py_intptr_t(n)};
        out = new_aligned_array(g.u32, 4, 1, dims, false);
        if (out && n) fn(p, offset % 4, uint64_t(n), py::detail::array_proxy(out)->data);
        return out;
    } catch (...) {
        Py_XDECREF(out);
        set_python_error();
        return nullptr;
    }
}

// ---------------------------------------------------------------------------------------------
// FastEntry: a public fill as a C callable. A Python function's frame, keyword binding and global
// lookups cost about 0.1 us, a third of a 256-value uniform and more than NumPy's whole
// ndarray.fill; so the public fills whose plain calls this file can take (uniform, normal,
// truncated_normal, constant, zeros, ones, eye, identity, dirac, and the schemes with a
// memoized derivation) are FastEntry objects that bind their arguments here, try the
// whole-array path, and otherwise call the Python function with the arguments untouched.
// weightfill._engine.fast_entry builds them from the function's signature and gives them its
// name, docstring and __wrapped__ (functools' update_wrapper), so inspect.signature, help()
// and pickle see the Python function.
//
// A scheme's entry (kind kMemo) builds the memo key its Python function stores derivations under
// (_engine.memo_key): (tag, shape, v1, type(v1), v2, type(v2), ...) over its other arguments and
// fixed values, each a plain atom (None, a bool, an exact int, float or str, or ()); a call with
// any other argument is the Python function's. The types keep True from 1's entry and -2.0 from
// -2's; atoms hash without running Python code.

// The arguments whole() takes, in its order; kKey marks a parameter that goes into a memo key.
// kLayout is checked, not passed on: a layout name that the result does not depend on (eye's).
// kLower and kUpper are a truncated normal's bounds.
enum Role { kShape, kA, kB, kSeed, kStream, kDType, kOut, kRegion, kLayout, kLower, kUpper,
            kNumRoles, kKey = kNumRoles };
constexpr int kMaxParams = 16;
constexpr long kMemo = 101;  // the kind of a scheme's entry

struct Entry {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject* dict;      // __dict__: the wrapped function's attributes
    PyObject* fallback;  // the Python function: every call this path does not take
    long kind;
    int npos;     // parameters that may be given by position (the first npos)
    int nparams;  // all parameters
    PyObject* names[kMaxParams];     // parameter names (interned)
    int role[kMaxParams];            // Role of each parameter
    PyObject* defaults[kMaxParams];  // default of each parameter; nullptr: required
    PyObject* fixed[kNumRoles];      // values of the roles no parameter gives (nullptr: none)
    bool has_layout;                 // a parameter has role kLayout
    PyObject* tag;                   // a scheme's memo key tag; nullptr for the others
    int nkey;                        // items of the memo key after (tag, shape)
    int key_param[kMaxParams];       // the parameter of each item, or -1: key_fixed's value
    PyObject* key_fixed[kMaxParams];
};

bool is_atom(PyObject* v) {
    return v == Py_None || PyBool_Check(v) || PyLong_CheckExact(v) || PyFloat_CheckExact(v) ||
           PyUnicode_CheckExact(v) || (PyTuple_CheckExact(v) && PyTuple_GET_SIZE(v) == 0);
}

// fans.check_layout: one of LAYOUTS.
bool valid_layout(PyObject* v) {
    return PyUnicode_CheckExact(v) && (PyUnicode_CompareWithASCIIString(v, "torch") == 0 ||
                                       PyUnicode_CompareWithASCIIString(v, "keras") == 0 ||
                                       PyUnicode_CompareWithASCIIString(v, "jax") == 0);
}

// The fill of a bound call: out, None (the Python function's call), or nullptr with an error.
PyObject* entry_fill(const Entry* e, PyObject* const* value, PyObject* const* slot) {
    if (e->has_layout && !valid_layout(slot[kLayout])) Py_RETURN_NONE;
    if (e->kind == long(Dist::truncated_normal))
        return truncated_whole(slot[kShape], slot[kA], slot[kB], slot[kLower], slot[kUpper],
                               slot[kSeed], slot[kStream], slot[kDType], slot[kOut],
                               slot[kRegion]);
    if (e->kind == kDirac)
        return dirac_whole(slot[kShape], slot[kA],
                           PyUnicode_CompareWithASCIIString(slot[kLayout], "torch") == 0,
                           slot[kDType], slot[kOut], slot[kRegion]);
    if (!e->tag)
        return whole(e->kind, slot[kShape], slot[kA], slot[kB], slot[kSeed], slot[kStream],
                     slot[kDType], slot[kOut], slot[kRegion], Py_None);
    PyObject* key = PyTuple_New(2 + 2 * e->nkey);
    if (!key) return nullptr;
    PyTuple_SET_ITEM(key, 0, new_ref(e->tag));
    PyTuple_SET_ITEM(key, 1, new_ref(slot[kShape]));
    for (int i = 0; i < e->nkey; ++i) {
        PyObject* v = e->key_param[i] >= 0 ? value[e->key_param[i]] : e->key_fixed[i];
        if (!is_atom(v)) {
            Py_DECREF(key);
            Py_RETURN_NONE;
        }
        PyTuple_SET_ITEM(key, 2 + 2 * i, new_ref(v));
        PyTuple_SET_ITEM(key, 3 + 2 * i, new_ref(reinterpret_cast<PyObject*>(Py_TYPE(v))));
    }
    PyObject* r = memo_whole(key, slot[kSeed], slot[kStream], slot[kDType], slot[kOut],
                             slot[kRegion]);
    Py_DECREF(key);
    return r;
}

// A framework tensor as `out` (torch's): the NumPy view over its memory that
// _backends.array_view makes (after its checks), or nullptr for any other object, or when the
// view is refused with an Exception (the Python function then raises it, naming `out`).
// nullptr with an error set only for what must propagate (KeyboardInterrupt). Not tried for a
// call whole() refuses anyway (a region, a deferred block): the Python function would make the
// view a second time.
PyObject* tensor_view(PyObject* out, PyObject* region, bool& failed) {
    failed = false;
    if (out == Py_None || Py_TYPE(out) == g.array_type || !g.array_view || region != Py_None ||
        g_deferred.load(std::memory_order_relaxed) != 0)
        return nullptr;
    PyObject* view = PyObject_CallFunctionObjArgs(g.array_view, out, nullptr);
    if (!view) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
        } else {
            failed = true;
        }
        return nullptr;
    }
    if (Py_TYPE(view) != g.array_type) {  // None: not a tensor weightfill knows
        Py_DECREF(view);
        return nullptr;
    }
    return view;
}

PyObject* entry_call(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    const auto* e = reinterpret_cast<const Entry*>(self);
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject* value[kMaxParams] = {};
    PyObject* slot[kNumRoles];
    std::memcpy(slot, e->fixed, sizeof slot);
    if (nargs > e->npos) goto python;
    for (Py_ssize_t i = 0; i < nargs; ++i) value[i] = args[i];
    if (kwnames) {
        for (Py_ssize_t j = 0, nk = PyTuple_GET_SIZE(kwnames); j < nk; ++j) {
            PyObject* name = PyTuple_GET_ITEM(kwnames, j);
            int k = 0;
            while (k < e->nparams && e->names[k] != name) ++k;  // keywords are usually interned
            if (k == e->nparams) {
                k = 0;
                while (k < e->nparams && PyUnicode_Compare(e->names[k], name) != 0) ++k;
                if (PyErr_Occurred()) PyErr_Clear();
            }
            if (k == e->nparams || value[k]) goto python;  // unknown or repeated: Python's error
            value[k] = args[nargs + j];
        }
    }
    for (int k = 0; k < e->nparams; ++k) {
        if (!value[k]) value[k] = e->defaults[k];
        if (!value[k]) goto python;  // a required argument is missing
        if (e->role[k] != kKey) slot[e->role[k]] = value[k];
    }
    {
        // A tuple subclass that hashes and compares as a tuple (torch.Size, so `t.shape`) is
        // taken as its exact tuple, as _engine.memo_key takes it.
        PyObject* const shape = slot[kShape];
        PyObject* exact = nullptr;
        if (PyTuple_Check(shape) && !PyTuple_CheckExact(shape) &&
            Py_TYPE(shape)->tp_hash == PyTuple_Type.tp_hash &&
            Py_TYPE(shape)->tp_richcompare == PyTuple_Type.tp_richcompare) {
            exact = PyTuple_GetSlice(shape, 0, PyTuple_GET_SIZE(shape));  // a new exact tuple
            if (!exact) return nullptr;
            slot[kShape] = exact;
        }
        // A torch tensor is filled through a NumPy view of its memory, and returned itself.
        PyObject* const out = slot[kOut];
        bool failed;
        PyObject* view = tensor_view(out, slot[kRegion], failed);
        if (failed) {
            Py_XDECREF(exact);
            return nullptr;
        }
        if (view) slot[kOut] = view;
        PyObject* r = entry_fill(e, value, slot);
        Py_XDECREF(exact);
        if (view) {
            Py_DECREF(view);
            if (r == view) {  // entry_fill returned the view it was given: done
                Py_DECREF(r);
                return new_ref(out);
            }
        }
        if (r != Py_None) return r;  // out, or nullptr with an error set
        Py_DECREF(r);
    }
python:
    return PyObject_Vectorcall(e->fallback, args, nargsf, kwnames);
}

int entry_traverse(PyObject* self, visitproc visit, void* arg) {
    auto* e = reinterpret_cast<Entry*>(self);
    Py_VISIT(e->dict);
    Py_VISIT(e->fallback);
    for (int k = 0; k < e->nparams; ++k) {
        Py_VISIT(e->names[k]);
        Py_VISIT(e->defaults[k]);
    }
    for (PyObject* v : e->fixed) Py_VISIT(v);
    Py_VISIT(e->tag);
    for (int i = 0; i < e->nkey; ++i) Py_VISIT(e->key_fixed[i]);
    return 0;
}

int entry_clear(PyObject* self) {
    auto* e = reinterpret_cast<Entry*>(self);
    Py_CLEAR(e->dict);
    Py_CLEAR(e->fallback);
    for (int k = 0; k < e->nparams; ++k) {
        Py_CLEAR(e->names[k]);
        Py_CLEAR(e->defaults[k]);
    }
    e->nparams = 0;
    for (PyObject*& v : e->fixed) Py_CLEAR(v);
    Py_CLEAR(e->tag);
    for (int i = 0; i < e->nkey; ++i) Py_CLEAR(e->key_fixed[i]);
    e->nkey = 0;
    return 0;
}

void entry_dealloc(PyObject* self) {
    PyObject_GC_UnTrack(self);
    entry_clear(self);
    Py_TYPE(self)->tp_free(self);
}

// FastEntry(fallback, kind, names, npos, roles, defaults, fixed, required, tag=None, key=()):
// the parameters' names, how many may be positional, their Roles and defaults (`required` marks
// a parameter without one), and a value for each Role no parameter gives (`required` where one
// does). A scheme's entry (kind kMemo; a and b unused) also has its memo key's tag and items:
// each the index of a kKey parameter, or (value,) for a fixed value.
PyObject* entry_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    PyObject *fallback, *names, *roles, *defaults, *fixed, *required;
    PyObject *tag = Py_None, *key = nullptr;
    long kind;
    int npos;
    static const char* kw[] = {"fallback", "kind", "names", "npos", "roles", "defaults", "fixed",
                               "required", "tag", "key", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OlO!iO!O!O!O|OO!:FastEntry",
                                     const_cast<char**>(kw), &fallback, &kind, &PyTuple_Type,
                                     &names, &npos, &PyTuple_Type, &roles, &PyTuple_Type,
                                     &defaults, &PyTuple_Type, &fixed, &required, &tag,
                                     &PyTuple_Type, &key))
        return nullptr;
    const Py_ssize_t n = PyTuple_GET_SIZE(names), nkey = key ? PyTuple_GET_SIZE(key) : 0;
    if (!PyCallable_Check(fallback) || n > kMaxParams || PyTuple_GET_SIZE(roles) != n ||
        PyTuple_GET_SIZE(defaults) != n || npos < 0 || npos > n ||
        PyTuple_GET_SIZE(fixed) != kNumRoles || nkey > kMaxParams ||
        (kind == kMemo) != (tag != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "FastEntry: inconsistent parameter description");
        return nullptr;
    }
    auto fail = [](Entry* e, const char* what) -> PyObject* {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, what);
        Py_DECREF(e);
        return nullptr;
    };
    auto* e = reinterpret_cast<Entry*>(type->tp_alloc(type, 0));
    if (!e) return nullptr;
    e->vectorcall = entry_call;
    e->fallback = new_ref(fallback);
    e->kind = kind;
    e->npos = npos;
    bool covered[kNumRoles] = {};
    for (Py_ssize_t k = 0; k < n; ++k) {
        PyObject* name = PyTuple_GET_ITEM(names, k);
        const long r = PyLong_AsLong(PyTuple_GET_ITEM(roles, k));
        if (!PyUnicode_CheckExact(name) || r < 0 || r > kKey || (r < kNumRoles && covered[r]) ||
            (r == kKey && kind != kMemo))
            return fail(e, "FastEntry: a bad name or role");
        if (r < kNumRoles) covered[r] = true;
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        e->names[k] = name;
        e->role[k] = int(r);
        PyObject* d = PyTuple_GET_ITEM(defaults, k);
        e->defaults[k] = d == required ? nullptr : new_ref(d);
        e->nparams = int(k + 1);
    }
    for (int r = 0; r < kNumRoles; ++r) {
        PyObject* v = PyTuple_GET_ITEM(fixed, r);
        if ((v == required) != covered[r])
            return fail(e, "FastEntry: every role needs one parameter or value");
        e->fixed[r] = v == required ? nullptr : new_ref(v);
    }
    e->has_layout = covered[kLayout];
    if (kind == kDirac && !e->has_layout)  // its axes come from the layout
        return fail(e, "FastEntry: a Dirac fill needs a layout parameter");
    if (kind != kMemo) return reinterpret_cast<PyObject*>(e);
    // Every kKey parameter goes into the key exactly once: a derivation depends on all of them.
    e->tag = new_ref(tag);
    int uses[kMaxParams] = {};
    for (Py_ssize_t i = 0; i < nkey; ++i) {
        PyObject* item = PyTuple_GET_ITEM(key, i);
        e->key_param[i] = -1;
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 1) {
            e->key_fixed[i] = new_ref(PyTuple_GET_ITEM(item, 0));
        } else {
            const long k = PyLong_AsLong(item);
            if (k < 0 || k >= n || e->role[k] != kKey)
                return fail(e, "FastEntry: a key item is neither (value,) nor a key parameter");
            e->key_param[i] = int(k);
            ++uses[k];
        }
        e->nkey = int(i + 1);
    }
    for (int k = 0; k < e->nparams; ++k)
        if ((e->role[k] == kKey) != (uses[k] == 1))
            return fail(e, "FastEntry: every key parameter goes into the key once");
    return reinterpret_cast<PyObject*>(e);
}

// As a class attribute it stays unbound, like a builtin function (and inspect.isroutine holds,
// so help() documents it as a function).
PyObject* entry_get(PyObject* self, PyObject*, PyObject*) { return new_ref(self); }

PyObject* entry_repr(PyObject* self) {
    return PyObject_Repr(reinterpret_cast<Entry*>(self)->fallback);
}

// Pickled by reference, as a function is: the name of a global of its __module__.
PyObject* entry_reduce(PyObject* self, PyObject*) {
    return PyObject_GetAttrString(self, "__qualname__");
}

PyMethodDef g_entry_methods[] = {
    {"__reduce__", entry_reduce, METH_NOARGS, nullptr}, {nullptr, nullptr, 0, nullptr}};

PyGetSetDef g_entry_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMemberDef g_entry_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Entry, vectorcall), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // the rest of the slots: zero
PyTypeObject g_entry_type = [] {
    PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
    t.tp_name = "weightfill._core.FastEntry";
    t.tp_basicsize = sizeof(Entry);
    t.tp_dealloc = entry_dealloc;
    t.tp_vectorcall_offset = offsetof(Entry, vectorcall);
    t.tp_repr = entry_repr;
    t.tp_call = PyVectorcall_Call;
    t.tp_getattro = PyObject_GenericGetAttr;
    t.tp_setattro = PyObject_GenericSetAttr;
    t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL;
    t.tp_doc = "A public fill whose plainest calls are bound and filled in C (fast_fill.cpp).";
    t.tp_traverse = entry_traverse;
    t.tp_clear = entry_clear;
    t.tp_methods = g_entry_methods;
    t.tp_members = g_entry_members;
    t.tp_getset = g_entry_getset;
    t.tp_descr_get = entry_get;
    t.tp_dictoffset = offsetof(Entry, dict);
    t.tp_new = entry_new;
    return t;
}();
#pragma GCC diagnostic pop

// _fill_whole_setup(descrs, scalar_types, largest, streams, named_stream): the four float
// dtypes in DType order from f32 (numpy.dtype objects, their scalar types, their largest
// values), the dict of named streams and the function that adds a name to it. Called once by
// weightfill._engine.
void setup(const py::tuple& descrs, const py::tuple& types, const std::vector<double>& largest,
           const py::dict& streams, const py::function& named_stream) {
    const int first = int(DType::f32);
    if (descrs.size() != size_t(kNumDTypes - first) || types.size() != descrs.size() ||
        largest.size() != descrs.size())
        throw std::invalid_argument("setup: one entry per float dtype");
    for (size_t i = 0; i < descrs.size(); ++i) {
        g.descr[first + int(i)] = py::object(descrs[i]).release().ptr();  // kept for the process's life
        g.scalar_type[first + int(i)] = py::object(types[i]).release().ptr();
        g.largest[first + int(i)] = largest[i];
    }
    g.streams = py::object(streams).release().ptr();
    g.named_stream = py::object(named_stream).release().ptr();
    // Here rather than in the raw functions: the first npy_api::get() imports NumPy modules and
    // may throw (a KeyboardInterrupt during the import), which must not cross a C frame.
    g.array_type = py::detail::npy_api::get().PyArray_Type_;
    g.u32 = py::dtype::of<uint32_t>().release().ptr();
    g.ready = true;
}

// _memo_setup(memo, known): the dicts memo_whole reads (schemes._common._MEMO and
// _truncnorm._KNOWN), kept for the process's life. Called once by weightfill.schemes._common.
void memo_setup(const py::dict& memo, const py::dict& known) {
    g.memo = py::object(memo).release().ptr();
    g.known = py::object(known).release().ptr();
}

// _array_view_setup(fn): weightfill._backends.array_view, which FastEntry calls for an `out`
// that is not an ndarray; kept for the process's life. Called once by weightfill._engine.
void array_view_setup(const py::function& fn) { g.array_view = py::object(fn).release().ptr(); }

PyMethodDef g_methods[] = {
    {"fill_whole", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fill_whole)),
     METH_FASTCALL,
     "fill_whole(kind, shape, a, b, seed, stream, dtype, out, region, extra) -> out, a new "
     "array or None\n\n"
     "Fills a whole NumPy array (out, or a new one of fewer than 2**14 elements when out is "
     "None) when every argument is of the common, plainly valid kind; "
     "None otherwise (the caller then runs its full checks). kind: a Dist value, or 100 for "
     "a constant fill of a."},
    {"raw_whole", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(raw_whole)),
     METH_FASTCALL,
     "raw_whole(n, seed, stream, offset) -> uint32 array or None\n\n"
     "weightfill.random_raw for fewer than 2**14 words and plain arguments; None otherwise."},
    {"sparse_whole", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(sparse_whole)),
     METH_FASTCALL,
     "sparse_whole(shape, sparsity, nonzeros, std, axis, seed, stream, dtype, out, region, "
     "method) -> out, a new array or None\n\n"
     "weightfill.sparse for a small whole array of plain arguments; None otherwise."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void register_fast_fill(py::module_& m) {
    if (PyModule_AddFunctions(m.ptr(), g_methods) != 0) throw py::error_already_set();
    m.def("_fill_whole_setup", &setup, py::arg("descrs"), py::arg("scalar_types"),
          py::arg("largest"), py::arg("streams"), py::arg("named_stream"));
    m.def("_memo_setup", &memo_setup, py::arg("memo"), py::arg("known"));
    m.def("_array_view_setup", &array_view_setup, py::arg("fn"));
    m.def("_deferred_blocks", [](int delta) { return g_deferred.fetch_add(delta) + delta; },
          py::arg("delta"),
          "Adds delta to the count of open deferred() blocks (all threads); returns the new count.");
    m.attr("FILL_CONSTANT") = kConstant;
    if (PyType_Ready(&g_entry_type) < 0) throw py::error_already_set();
    Py_INCREF(&g_entry_type);
    if (PyModule_AddObject(m.ptr(), "FastEntry", reinterpret_cast<PyObject*>(&g_entry_type)) < 0)
        throw py::error_already_set();
    m.attr("FAST_ENTRY_ROLES") = py::make_tuple("shape", "a", "b", "seed", "stream", "dtype",
                                                "out", "region", "layout", "lower", "upper",
                                                "key");
    m.attr("FILL_MEMO") = kMemo;
    m.attr("FILL_DIAGONAL") = kDiagonal;
    m.attr("FILL_DIRAC") = kDirac;
}

}  // namespace weightfill::bindings
