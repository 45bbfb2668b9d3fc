// The elementwise steps of the orthogonal schemes' Householder product
// (python/weightfill/_haar.py, orthonormal_columns). Their values are defined by the NumPy calls
// they replace, listed at each function: every operation here is the same IEEE operation in the
// same precision (a float64 product, sum or quotient rounded once, then, where NumPy casts, one
// rounding to the matrix's dtype), and no two are fused (-ffp-contract=off), so the results are
// bit for bit NumPy's. The matrix products, einsum reductions and the inverse stay NumPy's: their
// rounding depends on the BLAS build, which docs/schemes.md states.
//
// Why compiled: a small matrix's product is about twenty NumPy calls of about a microsecond each;
// the eleven elementwise ones were half of a 4 x 4 orthogonal (issue 12, per-call overhead).
#include "pybind11.hpp"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace weightfill::bindings {
namespace {

// A writable 2-D float32 or float64 array (any strides), as element (r, c) = base + r*rs + c*cs.
struct Matrix {
    char* base;
    py::ssize_t rows, cols, rs, cs;
    bool f64;
    template <class T>
    T& at(py::ssize_t r, py::ssize_t c) const {
        return *reinterpret_cast<T*>(base + r * rs + c * cs);
    }
    // Calls f(r, c) for every element of the top `rows_` rows, in memory order (rows outer for
    // a row-major view, columns outer for a transposed one): a 4096 x 4096 matrix visited
    // against its layout takes several times longer (a cache line per element).
    template <class F>
    void visit(py::ssize_t rows_, F&& f) const {
        if (std::abs(rs) >= std::abs(cs)) {
            for (py::ssize_t r = 0; r < rows_; ++r)
                for (py::ssize_t c = 0; c < cols; ++c) f(r, c);
        } else {
            for (py::ssize_t c = 0; c < cols; ++c)
                for (py::ssize_t r = 0; r < rows_; ++r) f(r, c);
        }
    }
};

// Native float32 / float64 by equivalence (PyArray_EquivTypes), not by descriptor identity: an
// array that came through pickle (a dask worker's) has an equal descriptor of its own.
bool is_f64(const py::array& a) { return py::array_t<double>::check_(a); }
bool is_f32(const py::array& a) { return py::array_t<float>::check_(a); }

Matrix matrix(py::array& a, const char* name) {
    const bool f64 = is_f64(a);
    if (!f64 && !is_f32(a))
        throw py::type_error(std::string(name) + ": must be native float32 or float64");
    if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + ": must be 2-D");
    if (!a.writeable()) throw std::invalid_argument(std::string(name) + ": read-only");
    return {static_cast<char*>(a.mutable_data()), a.shape(0), a.shape(1), a.strides(0),
            a.strides(1), f64};
}

// A contiguous float64 vector of n elements, writable when the step writes it (`write`).
double* vector(py::array& a, py::ssize_t n, const char* name, bool write = false) {
    if (!is_f64(a) || a.ndim() != 1 || a.shape(0) != n ||
        !(a.flags() & py::array::c_style) || (write && !a.writeable()))
        throw std::invalid_argument(std::string(name) + ": need a " + (write ? "writable " : "") +
                                    "contiguous float64 vector of " + std::to_string(n) +
                                    " elements");
    return static_cast<double*>(const_cast<void*>(a.data()));
}

// q[...] = 0; q[i, i] = 1 for i < cols.
template <class T>
void unit(const Matrix& q) {
    q.visit(q.rows, [&](py::ssize_t r, py::ssize_t c) { q.at<T>(r, c) = T(r == c); });
}

// np.copyto(v[:b], 0, where=strictly upper), b = v's columns: +0.0 above the diagonal.
template <class T>
void zero_above(const Matrix& v) {
    v.visit(v.cols, [&](py::ssize_t r, py::ssize_t c) {
        if (c > r) v.at<T>(r, c) = T(0);
    });
}

// With norm[c] the float64 norm of v's column c (m x b, diagonal of its top b x b block):
//   alpha = v[i, i].astype(float64); s = np.where(alpha < 0, -1.0, 1.0)
//   sign = np.where(norm > 0, -s, 1.0); inv = np.divide(1.0, norm, out=zeros, where=norm > 0)
//   v[i, i] = (alpha + s * norm).astype(T); v *= inv.astype(T)
//   if last: v[:, b - 1] = 0; sign[b - 1] = 1.0 if alpha[b - 1] >= 0 else -1.0
template <class T>
void reflectors(const Matrix& v, const double* norm, double* sign, bool last) {
    std::vector<T> inv(size_t(v.cols));
    double alpha = 0.0;
    for (py::ssize_t c = 0; c < v.cols; ++c) {
        alpha = double(v.at<T>(c, c));
        const double s = alpha < 0 ? -1.0 : 1.0;  // +1 for a zero (also -0.0): torch's sign fix
        const bool pos = norm[c] > 0;             // false for NaN, as np.where's test
        sign[c] = pos ? -s : 1.0;
        inv[size_t(c)] = T(pos ? 1.0 / norm[c] : 0.0);
        v.at<T>(c, c) = T(alpha + s * norm[c]);
    }
    v.visit(v.rows, [&](py::ssize_t r, py::ssize_t c) {
        v.at<T>(r, c) = v.at<T>(r, c) * inv[size_t(c)];
    });
    if (last && v.cols > 0) {
        for (py::ssize_t r = 0; r < v.rows; ++r) v.at<T>(r, v.cols - 1) = T(0);
        sign[v.cols - 1] = alpha >= 0 ? 1.0 : -1.0;
    }
}

void haar_unit(py::array q) {
    const Matrix m = matrix(q, "q");
    if (m.rows < m.cols) throw std::invalid_argument("q: need rows >= columns");
    m.f64 ? unit<double>(m) : unit<float>(m);
}

void haar_zero_above(py::array v) {
    const Matrix m = matrix(v, "v");
    if (m.rows < m.cols) throw std::invalid_argument("v: need rows >= columns");
    m.f64 ? zero_above<double>(m) : zero_above<float>(m);
}

void haar_reflectors(py::array v, py::array norm, py::array sign, bool last) {
    const Matrix m = matrix(v, "v");
    if (m.rows < m.cols) throw std::invalid_argument("v: need rows >= columns");
    const double* n = vector(norm, m.cols, "norm");
    double* s = vector(sign, m.cols, "sign", true);
    m.f64 ? reflectors<double>(m, n, s, last) : reflectors<float>(m, n, s, last);
}

// t_inv = np.triu(g, 1); t_inv[i, i] = np.where(vv > 0, 0.5 * vv, 1.0), in place on the
// float64 (b, b) matrix g (a zero v makes its row of T unused).
void haar_t_inverse(py::array g, py::array vv) {
    const Matrix m = matrix(g, "g");
    if (!m.f64 || m.rows != m.cols) throw std::invalid_argument("g: need a square float64 matrix");
    const double* d = vector(vv, m.cols, "vv");
    for (py::ssize_t r = 0; r < m.rows; ++r) {
        for (py::ssize_t c = 0; c < r; ++c) m.at<double>(r, c) = 0.0;
        m.at<double>(r, r) = d[r] > 0 ? 0.5 * d[r] : 1.0;
    }
}

// q *= (sign * scale).astype(T): column c times its sign and the scale, rounded once to T.
template <class T>
void scale_columns(const Matrix& q, const double* sign, double scale) {
    std::vector<T> f(size_t(q.cols));
    for (py::ssize_t c = 0; c < q.cols; ++c) f[size_t(c)] = T(sign[c] * scale);
    q.visit(q.rows, [&](py::ssize_t r, py::ssize_t c) {
        q.at<T>(r, c) = q.at<T>(r, c) * f[size_t(c)];
    });
}

void haar_scale(py::array q, py::array sign, double scale) {
    const Matrix m = matrix(q, "q");
    const double* s = vector(sign, m.cols, "sign");
    m.f64 ? scale_columns<double>(m, s, scale) : scale_columns<float>(m, s, scale);
}

}  // namespace

void register_haar(py::module_& m) {
    m.def("haar_unit", &haar_unit, py::arg("q"), "q[...] = 0 and ones on the diagonal.");
    m.def("haar_zero_above", &haar_zero_above, py::arg("v"),
          "Zeros above the diagonal of v's top square block.");
    m.def("haar_reflectors", &haar_reflectors, py::arg("v"), py::arg("norm"), py::arg("sign"),
          py::arg("last"),
          "A block's Householder vectors and signs from its column norms (weightfill._haar).");
    m.def("haar_t_inverse", &haar_t_inverse, py::arg("g"), py::arg("vv"),
          "T^-1 of the compact product from V^T V (in place) and the vectors' squared norms.");
    m.def("haar_scale", &haar_scale, py::arg("q"), py::arg("sign"), py::arg("scale"),
          "q's columns times sign * scale, rounded to q's dtype.");
}

}  // namespace weightfill::bindings
