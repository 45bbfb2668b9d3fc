// Included first by every binding translation unit.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace weightfill::bindings {
void register_fill(py::module_& m);
void register_runtime(py::module_& m);
}  // namespace weightfill::bindings
