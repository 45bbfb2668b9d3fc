#include "pybind11.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string>
#include <stdexcept>
#include <vector>

#include "../parallel/fill.hpp"
#include "../parallel/sparse.hpp"

namespace weightfill::bindings {

// A new C-contiguous array whose data is 64-byte aligned and owned by the array (freed with
// it): the kernels write straight into it, no copy follows. Large buffers are 2 MiB aligned and,
// with `huge_pages`, marked MADV_HUGEPAGE, as NumPy does for its own arrays: on kernels that give
// huge pages only on request, first-touch page faults on 4 KiB pages would otherwise cost as
// much as the fill. (Without it the system's default applies; weightfill.torch allocates so,
// see python/weightfill/torch/_tensors.py.) Raw NumPy C API rather than py::array's constructor,
// which builds shape and stride vectors: the fast paths make small arrays with it, where those
// were a third of a 16-value call (fast_fill.cpp).
PyObject* new_aligned_array(PyObject* descr, size_t itemsize, int nd, const Py_intptr_t* dims,
                            bool huge_pages) {
    // NumPy's limit: the nonzero dimensions' product times the itemsize below 2**63 (so it also
    // refuses (0, 2**62, 2**62)); checked before anything is allocated.
    size_t nonzero = itemsize;
    bool overflow = false, empty = false;
    for (int d = 0; d < nd; ++d) {
        if (dims[d] < 0) {
            PyErr_SetString(PyExc_ValueError, "shape: negative dimension");
            return nullptr;
        }
        if (dims[d] == 0)
            empty = true;
        else
            overflow |= __builtin_mul_overflow(nonzero, size_t(dims[d]), &nonzero);
    }
    if (overflow || nonzero > size_t(PTRDIFF_MAX)) {
        PyObject* shape = PyTuple_New(nd);  // for the message only
        for (int d = 0; shape && d < nd; ++d) {
            PyObject* v = PyLong_FromSsize_t(dims[d]);
            if (!v) Py_CLEAR(shape);  // MemoryError set; a tuple frees its unset items as NULL
            else PyTuple_SET_ITEM(shape, d, v);
        }
        if (shape)
            PyErr_Format(PyExc_ValueError, "shape %R of %S needs more bytes than an array can "
                         "address (2**63 - 1)", shape, descr);
        Py_XDECREF(shape);
        return nullptr;
    }
    const size_t bytes = empty ? 0 : nonzero;
    constexpr size_t kHuge = size_t{1} << 21;
    const size_t align = bytes >= 2 * kHuge ? kHuge : 64;
    const size_t padded = bytes ? (bytes + align - 1) / align * align : align;
    void* p = std::aligned_alloc(align, padded);
    if (!p) return PyErr_NoMemory();
#ifdef MADV_HUGEPAGE
    // Advice only: failure is harmless.
    if (align == kHuge && huge_pages) madvise(p, padded, MADV_HUGEPAGE);
#endif
    PyObject* owner = PyCapsule_New(p, nullptr, [](PyObject* c) {
        std::free(PyCapsule_GetPointer(c, nullptr));
    });
    if (!owner) {
        std::free(p);
        return nullptr;
    }
    const auto& api = py::detail::npy_api::get();
    constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                           py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                           py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    Py_INCREF(descr);  // PyArray_NewFromDescr steals it, also on failure
    PyObject* arr = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, dims, nullptr, p,
                                              kFlags, nullptr);
    if (!arr) {
        Py_DECREF(owner);
        return nullptr;
    }
    if (api.PyArray_SetBaseObject_(arr, owner) < 0) {  // steals owner, also on failure
        Py_DECREF(arr);
        return nullptr;
    }
    return arr;
}

py::array empty_aligned(const std::vector<py::ssize_t>& shape, const py::dtype& dtype, bool huge_pages) {
    PyObject* arr = new_aligned_array(dtype.ptr(), size_t(dtype.itemsize()), int(shape.size()),
                                      shape.data(), huge_pages);
    if (!arr) throw py::error_already_set();
    return py::reinterpret_steal<py::array>(arr);
}

namespace {

// The memory of `out`, which must be writable and C-contiguous. NumPy arrays are read through
// NumPy's C API rather than a buffer request, which builds a format description and shape
// vectors each time: a 16-value _core.fill_pattern call took 260 ns so, 310 ns with the
// request (best of 7 x 20000 calls, three processes each).
struct OutBuffer {
    py::object owner;  // keeps the memory alive while the GIL is released
    void* ptr = nullptr;
    uint64_t size = 0;
    size_t itemsize = 0;
    std::optional<py::buffer_info> info;  // for objects other than NumPy arrays
};

OutBuffer writable_c_contiguous(const py::handle& out) {
    OutBuffer b;
    b.owner = py::reinterpret_borrow<py::object>(out);
    if (py::isinstance<py::array>(out)) {
        auto arr = py::reinterpret_borrow<py::array>(out);
        if (!arr.writeable()) throw std::invalid_argument("out: read-only buffer");
        if (!(arr.flags() & py::array::c_style))
            throw std::invalid_argument("out: not C-contiguous");
        b.ptr = arr.mutable_data();
        b.size = uint64_t(arr.size());
        b.itemsize = size_t(arr.itemsize());
        return b;
    }
    py::buffer_info info = py::reinterpret_borrow<py::buffer>(out).request(/*writable=*/true);
    if (info.readonly) throw std::invalid_argument("out: read-only buffer");
    py::ssize_t expect = info.itemsize;
    for (size_t d = info.ndim; d-- > 0;) {
        if (info.shape[d] > 1 && info.strides[d] != expect)
            throw std::invalid_argument("out: not C-contiguous");
        expect *= info.shape[d];
    }
    b.ptr = info.ptr;
    b.size = uint64_t(info.size);
    b.itemsize = size_t(info.itemsize);
    b.info.emplace(std::move(info));
    return b;
}

// Runs the Python signal handlers (Ctrl-C) from a thread that released the GIL.
bool signalled() {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
}

// A fill's PlanItem, with `buf` holding out's memory. The Python layer validates everything;
// these checks only keep a direct caller of _core from writing out of bounds.
PlanItem fill_item(Dist dist, DType t, double a, double b, uint64_t seed, uint64_t stream,
                   uint64_t block_base, std::vector<uint64_t> shape, std::vector<uint64_t> start,
                   std::vector<uint64_t> len, const py::handle& out, const std::vector<double>& extra,
                   OutBuffer& buf) {
    if (shape.size() != start.size() || shape.size() != len.size())
        throw std::invalid_argument("region: rank differs from the shape's");
    uint64_t count = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
        if (start[d] > shape[d] || len[d] > shape[d] - start[d])
            throw std::invalid_argument("region: outside the shape");
        count *= len[d];
    }
    buf = writable_c_contiguous(out);
    if (buf.itemsize != dtype_size(t)) throw std::invalid_argument("out: wrong item size");
    if (buf.size != count) throw std::invalid_argument("out: wrong number of elements");
    PlanItem item;
    item.dist = dist;
    item.dtype = t;
    item.params = FillParams{StreamKey::make(seed, stream), a, b, block_base};
    if (extra.size() > std::size(item.params.extra)) throw std::invalid_argument("extra: too many constants");
    std::copy(extra.begin(), extra.end(), item.params.extra);
    item.region = Region{std::move(shape), std::move(start), std::move(len)};
    item.out = buf.ptr;
    return item;
}

// A memory fill's PlanItem: every element of `out` (item size 1, 2, 4 or 8) set to the element
// whose bytes are the low bytes of `bits`, little-endian.
PlanItem pattern_item(const py::handle& out, uint64_t bits, OutBuffer& buf) {
    buf = writable_c_contiguous(out);
    PlanItem item;
    item.pattern = true;
    item.count = buf.size;
    item.itemsize = buf.itemsize;
    item.bits = bits;
    item.out = buf.ptr;
    return item;
}

void fill_buffer(Dist dist, DType t, double a, double b, uint64_t seed, uint64_t stream,
                 uint64_t block_base, std::vector<uint64_t> shape, std::vector<uint64_t> start,
                 std::vector<uint64_t> len, const py::handle& out, const std::vector<double>& extra) {
    OutBuffer info;
    std::vector<PlanItem> plan;
    plan.push_back(fill_item(dist, t, a, b, seed, stream, block_base, std::move(shape),
                             std::move(start), std::move(len), out, extra, info));
    run_plan(plan);
}

void fill_pattern_buffer(const py::handle& out, uint64_t bits) {
    OutBuffer info;
    std::vector<PlanItem> plan;
    plan.push_back(pattern_item(out, bits, info));
    run_plan(plan);
}

// A list of fills run as one plan (fill_plan): each item is a tuple of _core.fill's arguments
// (dist, dtype, a, b, seed, stream, block_base, shape, start, len, out, extra) or of
// _core.fill_pattern's (out, bits). Every item is checked before anything is written.
void fill_plan_buffers(const py::list& items) {
    std::vector<OutBuffer> infos(items.size());
    std::vector<PlanItem> plan;
    plan.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        const py::tuple t = items[i].cast<py::tuple>();
        using Dims = std::vector<uint64_t>;
        if (t.size() == 2) {
            plan.push_back(pattern_item(t[0], t[1].cast<uint64_t>(), infos[i]));
        } else if (t.size() == 12) {
            plan.push_back(fill_item(t[0].cast<Dist>(), t[1].cast<DType>(), t[2].cast<double>(),
                                     t[3].cast<double>(), t[4].cast<uint64_t>(),
                                     t[5].cast<uint64_t>(), t[6].cast<uint64_t>(),
                                     t[7].cast<Dims>(), t[8].cast<Dims>(), t[9].cast<Dims>(),
                                     t[10], t[11].cast<std::vector<double>>(), infos[i]));
        } else {
            throw std::invalid_argument("items[" + std::to_string(i) +
                                        "]: a tuple of 12 (a fill) or 2 (a pattern)");
        }
    }
    run_plan(plan);
}

void sparse_buffer(uint64_t seed, uint64_t stream, double std_dev, DType t, uint64_t rows,
                   uint64_t cols, int axis, uint64_t sampled, bool sampled_are_zero, uint64_t r0,
                   uint64_t nr, uint64_t c0, uint64_t nc, const py::buffer& out, int method) {
    if (axis != 0 && axis != 1) throw std::invalid_argument("axis: must be 0 or 1");
    if (method != int(SparseMethod::floyd) && method != int(SparseMethod::keys))
        throw std::invalid_argument("method: must be 0 (floyd) or 1 (keys)");
    if (r0 > rows || nr > rows - r0 || c0 > cols || nc > cols - c0)
        throw std::invalid_argument("region: outside the shape");
    if (sampled > (axis == 0 ? rows : cols)) throw std::invalid_argument("sampled: more than a line holds");
    if ((axis == 0 ? cols : rows) >= (uint64_t{1} << 31))  // the reserved ranges hold 2^31 lines
        throw std::invalid_argument("shape: sparse needs fewer than 2^31 lines");
    if (method == int(SparseMethod::keys) && (axis == 0 ? rows : cols) >= (uint64_t{1} << 31))
        throw std::invalid_argument("method: keys needs lines shorter than 2^31 positions");
    py::buffer_info info = out.request(/*writable=*/true);
    if (info.readonly || uint64_t(info.size) != nr * nc || size_t(info.itemsize) != dtype_size(t))
        throw std::invalid_argument("out: wrong buffer");
    const SparseSpec spec{rows, cols, axis, sampled, sampled_are_zero, r0, nr, c0, nc, SparseMethod(method)};
    const FillParams p{StreamKey::make(seed, stream), 0.0, std_dev};
    bool finished;
    {
        py::gil_scoped_release nogil;  // touches only out's buffer, which `out` keeps alive
        finished = sparse_fill(p, t, spec, info.ptr, signalled);
    }
    if (!finished) throw py::error_already_set();
}

}  // namespace

// Runs the items with the GIL released. Safe without the GIL: the kernels touch only the
// items' buffers (their OutBuffers keep them alive for the whole call), and the settings read
// through atomics.
void run_plan(const std::vector<PlanItem>& items) {
    bool finished;
    {
        py::gil_scoped_release nogil;
        finished = fill_plan(items, signalled);
    }
    if (!finished) throw py::error_already_set();
}

void register_fill(py::module_& m) {
    m.def("sparse", &sparse_buffer, py::arg("seed"), py::arg("stream"), py::arg("std"),
          py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("axis"), py::arg("sampled"),
          py::arg("sampled_are_zero"), py::arg("r0"), py::arg("nr"), py::arg("c0"), py::arg("nc"),
          py::arg("out"), py::arg("method") = 0);
    m.def("fill_pattern", &fill_pattern_buffer, py::arg("out"), py::arg("bits"));
    m.def("fill_plan", &fill_plan_buffers, py::arg("items"));
    m.def("_rank_ties", &rank_ties, py::arg("tie_keys"), py::arg("need"));
    m.def("empty_aligned", &empty_aligned, py::arg("shape"), py::arg("dtype"), py::arg("huge_pages") = true);
    m.def("fill", &fill_buffer, py::arg("dist"), py::arg("dtype"), py::arg("a"), py::arg("b"),
          py::arg("seed"), py::arg("stream"), py::arg("block_base"), py::arg("shape"), py::arg("start"), py::arg("len"),
          py::arg("out"), py::arg("extra") = std::vector<double>{});
    py::enum_<Dist>(m, "Dist").value("raw", Dist::raw).value("uniform", Dist::uniform).value("normal", Dist::normal)
        .value("truncated_normal", Dist::truncated_normal);
    py::enum_<DType>(m, "DType").value("u32", DType::u32).value("f32", DType::f32).value("f64", DType::f64)
        .value("f16", DType::f16).value("bf16", DType::bf16);
}

}  // namespace weightfill::bindings
