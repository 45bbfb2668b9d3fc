#include "pybind11.hpp"

#include "../parallel/fill.hpp"
#include "../simd/dispatch.hpp"

namespace weightfill::bindings {

void register_runtime(py::module_& m) {
    m.def("set_num_threads", &set_num_threads, py::arg("n"));
    m.def("get_num_threads", &get_num_threads);
    m.def("thread_backend", &thread_backend);
    m.def("isa", [] { return dispatch::active().name; });
    m.def("available_isas", &dispatch::available_isas);
    m.def("force_isa", &dispatch::force, py::arg("name"));
}

}  // namespace weightfill::bindings
