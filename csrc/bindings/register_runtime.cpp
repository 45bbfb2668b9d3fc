#include "pybind11.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "../parallel/fill.hpp"
#include "../simd/dispatch.hpp"

namespace weightfill::bindings {
namespace {

// For tests of run_parallel's error path: the first runner waits (up to 2 s) for a second one,
// runner `thrower` (0 or 1) throws. Returns how many runners entered when nothing threw.
int parallel_probe(int nthreads, int thrower) {
    std::atomic<int> entered{0};
    {
        py::gil_scoped_release nogil;  // the runners touch only `entered`
        run_parallel(nthreads, [&] {
            const int me = entered.fetch_add(1);
            if (me == 0) {
                const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
                while (entered.load() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
                std::this_thread::sleep_for(std::chrono::milliseconds(20));  // runner 1 is still inside
            }
            if (me == thrower) throw std::runtime_error("runner " + std::to_string(me));
        });
    }
    return entered.load();
}

}  // namespace

void register_runtime(py::module_& m) {
    m.def("set_num_threads", &set_num_threads, py::arg("n"));
    m.def("get_num_threads", &get_num_threads);
    m.def("thread_backend", &thread_backend);
    m.def("isa", [] { return dispatch::active().name; });
    m.def("available_isas", &dispatch::available_isas);
    m.def("force_isa", &dispatch::force, py::arg("name"));
    m.def("_parallel_probe", &parallel_probe, py::arg("nthreads"), py::arg("thrower"));
}

}  // namespace weightfill::bindings
