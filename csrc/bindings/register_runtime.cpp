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

// For tests of run_parallel: the first runner waits (up to 2 s) for a second one; the others
// stay inside for 50 ms, longer than the first; runner `thrower` (0 or 1, -1: none) throws on
// its way out. Raises if run_parallel returned (or threw) while a runner was still inside;
// otherwise returns how many runners entered.
int parallel_probe(int nthreads, int thrower) {
    std::atomic<int> entered{0}, inside{0};
    struct Leave {
        std::atomic<int>& inside;
        ~Leave() { inside.fetch_sub(1); }
    };
    auto check = [&] {
        if (inside.load() != 0) throw std::logic_error("run_parallel returned with a runner inside");
    };
    {
        py::gil_scoped_release nogil;  // the runners touch only the counters
        try {
            run_parallel(nthreads, [&] {
                inside.fetch_add(1);
                const Leave leave{inside};
                const int me = entered.fetch_add(1);
                if (me == 0) {
                    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
                    while (entered.load() < 2 && std::chrono::steady_clock::now() < until)
                        std::this_thread::yield();
                } else {
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
                if (me == thrower) throw std::runtime_error("runner " + std::to_string(me));
            });
        } catch (const std::runtime_error&) {
            check();
            throw;
        }
        check();
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
