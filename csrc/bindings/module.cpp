#include "pybind11.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "weightfill's compiled engine; use the weightfill package, not this module.";
    weightfill::bindings::register_runtime(m);
    weightfill::bindings::register_fill(m);
    weightfill::bindings::register_fast_fill(m);
    weightfill::bindings::register_haar(m);
}
