// _core.fill_whole: the whole-array fast path of the public fills (issue 12, per-call overhead).
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

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>

#include "../simd/dispatch.hpp"

namespace weightfill::bindings {
namespace {

// Kinds of fill: the random ones are Dist values; kConstant is a memory fill of `a`.
constexpr long kConstant = 100;

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
    PyObject* streams = nullptr;              // streams._NAMED: str -> stream id, exact str keys
    bool ready = false;
};
Settings g;

// Threads inside a weightfill deferred() block: their fills must be recorded in the block's plan
// (Python), so while any block is open every call takes the Python path.
std::atomic<int> g_deferred{0};

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
            // _truncnorm.known(), which only holds constants of arguments Python has checked.
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
            // schemes.constant: a finite value within range (infinities, NaN and the 16-bit
            // roundings take the Python path).
            return (t == DType::f32 || t == DType::f64) && within(a, t) && no_extra(extra);
        default:
            return false;
    }
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
    } catch (py::error_already_set& e) {  // a signal handler raised (KeyboardInterrupt)
        e.restore();
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return false;
}

// fill_whole(kind, shape, a, b, seed, stream, dtype, out, region, extra) -> out, or None when
// the call is not one this path takes.
PyObject* fill_whole(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "fill_whole takes 10 positional arguments");
        return nullptr;
    }
    PyObject *kind_o = args[0], *shape = args[1], *seed_o = args[4], *stream_o = args[5],
             *dtype = args[6], *out = args[7], *region = args[8], *extra = args[9];
    if (!g.ready || region != Py_None || g_deferred.load(std::memory_order_relaxed) != 0)
        Py_RETURN_NONE;
    // out: an exact ndarray, C-contiguous, aligned and writable (resolve_target's fast path).
    auto& api = py::detail::npy_api::get();
    if (Py_TYPE(out) != api.PyArray_Type_) Py_RETURN_NONE;
    const auto* arr = py::detail::array_proxy(out);
    constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                           py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                           py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    if ((arr->flags & kFlags) != kFlags) Py_RETURN_NONE;
    const int ti = dtype_of(arr->descr);
    if (ti < 0) Py_RETURN_NONE;
    const DType t = DType(ti);
    // dtype: None, out's descriptor or its scalar type.
    if (dtype != Py_None && dtype != g.descr[ti] && dtype != g.scalar_type[ti]) Py_RETURN_NONE;
    // shape: None, or an exact tuple of exact ints equal to out's shape.
    uint64_t n = 1;
    for (int d = 0; d < arr->nd; ++d) n *= uint64_t(arr->dimensions[d]);
    if (shape != Py_None) {
        if (!PyTuple_CheckExact(shape) || PyTuple_GET_SIZE(shape) != arr->nd) Py_RETURN_NONE;
        for (int d = 0; d < arr->nd; ++d) {
            PyObject* s = PyTuple_GET_ITEM(shape, d);
            if (!PyLong_CheckExact(s)) Py_RETURN_NONE;
            const Py_ssize_t v = PyLong_AsSsize_t(s);
            if (v == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                Py_RETURN_NONE;
            }
            if (v != arr->dimensions[d]) Py_RETURN_NONE;
        }
    }
    // seed: an int (None, fresh entropy, is Python's); stream: an int or a known exact str.
    uint64_t seed, stream;
    if (!as_u64(seed_o, seed)) Py_RETURN_NONE;
    if (PyUnicode_CheckExact(stream_o)) {
        PyObject* id = PyDict_GetItemWithError(g.streams, stream_o);  // borrowed
        if (!id) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        if (!as_u64(id, stream)) Py_RETURN_NONE;
    } else if (!as_u64(stream_o, stream)) {
        Py_RETURN_NONE;
    }
    FillParams p{StreamKey::make(seed, stream), 0.0, 0.0, 0};
    if (!as_real(args[2], p.a) || !as_real(args[3], p.b)) Py_RETURN_NONE;
    const long kind = PyLong_AsLong(kind_o);
    if (kind == -1 && PyErr_Occurred()) return nullptr;
    if (!check_params(kind, t, extra, p)) Py_RETURN_NONE;
    if (n && !run(kind, t, p, n, arr->data)) return nullptr;
    Py_INCREF(out);
    return out;
}

// _fill_whole_setup(descrs, scalar_types, largest, streams): the four float dtypes in DType
// order from f32 (numpy.dtype objects, their scalar types, their largest values) and the dict
// of named streams. Called once by weightfill._engine.
void setup(const py::tuple& descrs, const py::tuple& types, const std::vector<double>& largest,
           const py::dict& streams) {
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
    g.ready = true;
}

PyMethodDef g_methods[] = {
    {"fill_whole", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fill_whole)),
     METH_FASTCALL,
     "fill_whole(kind, shape, a, b, seed, stream, dtype, out, region, extra) -> out or None\n\n"
     "Fills a whole NumPy array when every argument is of the common, plainly valid kind; "
     "None otherwise (the caller then runs its full checks). kind: a Dist value, or 100 for "
     "a constant fill of a."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void register_fast_fill(py::module_& m) {
    if (PyModule_AddFunctions(m.ptr(), g_methods) != 0) throw py::error_already_set();
    m.def("_fill_whole_setup", &setup, py::arg("descrs"), py::arg("scalar_types"),
          py::arg("largest"), py::arg("streams"));
    m.def("_deferred_blocks", [](int delta) { return g_deferred.fetch_add(delta) + delta; },
          py::arg("delta"),
          "Adds delta to the count of open deferred() blocks (all threads); returns the new count.");
    m.attr("FILL_CONSTANT") = kConstant;
}

}  // namespace weightfill::bindings
