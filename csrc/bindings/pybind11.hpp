// Included first by every binding translation unit.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "../parallel/fill.hpp"

namespace py = pybind11;

namespace weightfill::bindings {
void register_fill(py::module_& m);
void register_runtime(py::module_& m);
void register_fast_fill(py::module_& m);
void register_haar(py::module_& m);

// Runs a fill plan with the GIL released; throws py::error_already_set when a signal handler
// raised (register_fill.cpp).
void run_plan(const std::vector<PlanItem>& items);
// A new C-contiguous, 64-byte aligned array that owns its memory (register_fill.cpp); the raw
// form returns a new reference, or nullptr with a Python error set.
py::array empty_aligned(const std::vector<py::ssize_t>& shape, const py::dtype& dtype,
                        bool huge_pages);
PyObject* new_aligned_array(PyObject* descr, size_t itemsize, int nd, const Py_intptr_t* dims,
                            bool huge_pages);
}  // namespace weightfill::bindings
