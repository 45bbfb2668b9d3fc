#include "fill.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "../simd/dispatch.hpp"

#ifdef WEIGHTFILL_OPENMP
#include <omp.h>
#endif

namespace weightfill {

namespace {

std::atomic<int> g_num_threads{0};  // 0: not chosen yet
std::atomic<bool> g_forked_child{false};

int default_threads() {
#ifdef WEIGHTFILL_OPENMP
    return std::max(1, omp_get_max_threads());  // honours OMP_NUM_THREADS
#else
    return std::max(1u, std::thread::hardware_concurrency());
#endif
}

// GNU libgomp keeps its worker pool across fork() although the child has none of those
// threads, and the child's next parallel region waits for them forever. A child therefore
// switches to plain std::thread workers, which it creates itself.
[[maybe_unused]] const bool g_atfork_registered = [] {
    pthread_atfork(nullptr, nullptr, [] { g_forked_child.store(true); });
    return true;
}();

template <class Fn>
void run_threads(int nt, const Fn& body) {
    if (nt <= 1) {
        body();
        return;
    }
#ifdef WEIGHTFILL_OPENMP
    if (!g_forked_child.load(std::memory_order_relaxed)) {
#pragma omp parallel num_threads(nt)
        body();
        return;
    }
#endif
    std::vector<std::thread> workers;
    workers.reserve(size_t(nt - 1));
    for (int t = 1; t < nt; ++t) workers.emplace_back([&body] { body(); });
    body();
    for (auto& w : workers) w.join();
}

// Iterates the contiguous runs of a region: after merging trailing axes that the region spans
// whole, the region is `outer` runs of `run_len` consecutive global indices each.
struct RunMap {
    std::vector<uint64_t> outer_len, outer_stride;  // axes 0 .. k-1 of the region
    uint64_t base = 0;                              // global index of the first run's start
    uint64_t run_len = 1;

    explicit RunMap(const Region& r) {
        const size_t nd = r.shape.size();
        if (nd == 0) return;  // a 0-d tensor: one element, index 0
        size_t k = nd;
        do {
            --k;
            run_len *= r.len[k];
        } while (k > 0 && r.len[k] == r.shape[k] && r.start[k] == 0);
        std::vector<uint64_t> stride(nd, 1);
        for (size_t d = nd - 1; d > 0; --d) stride[d - 1] = stride[d] * r.shape[d];
        for (size_t d = 0; d <= k; ++d) base += r.start[d] * stride[d];
        outer_len.assign(r.len.begin(), r.len.begin() + long(k));
        outer_stride.assign(stride.begin(), stride.begin() + long(k));
    }

    // Global index of the start of run `run` (mixed-radix digits of `run` over outer_len).
    uint64_t run_start(uint64_t run) const {
        uint64_t g = base;
        for (size_t d = outer_len.size(); d-- > 0;) {
            g += (run % outer_len[d]) * outer_stride[d];
            run /= outer_len[d];
        }
        return g;
    }
};

}  // namespace

void run_parallel(int nthreads, const std::function<void()>& body) { run_threads(nthreads, body); }

void set_num_threads(int n) { g_num_threads.store(std::max(1, n)); }

int get_num_threads() {
    int n = g_num_threads.load();
    if (n == 0) {
        n = default_threads();
        g_num_threads.store(n);
    }
    return n;
}

const char* thread_backend() {
#ifdef WEIGHTFILL_OPENMP
    return g_forked_child.load() ? "threads" : "openmp";
#else
    return "threads";
#endif
}

bool fill(Dist dist, DType dtype, const FillParams& params, const Region& r, void* out,
          const std::function<bool()>& interrupted) {
    const RangeFn fn = dispatch::active().lookup(dist, dtype);
    if (!fn) throw std::invalid_argument("dtype: not supported by this distribution");
    uint64_t total = 1;
    for (uint64_t l : r.len) total *= l;
    if (total == 0) return true;

    const RunMap runs(r);
    const size_t esize = dtype_size(dtype);
    char* const base = static_cast<char*>(out);
    // Fills output elements [a, b), which may span several runs.
    auto fill_out = [&](uint64_t a, uint64_t b) {
        uint64_t run = a / runs.run_len, off = a % runs.run_len;
        while (a < b) {
            const uint64_t take = std::min(runs.run_len - off, b - a);
            fn(params, runs.run_start(run) + off, take, base + a * esize);
            a += take;
            ++run;
            off = 0;
        }
    };

    // One parallel region for the whole fill: threads take chunks of kChunk elements from a
    // shared counter, so a thread that the OS deschedules (another process on the core) delays
    // one chunk, not a fixed share; there is a single barrier, at the end. kChunk is a multiple
    // of every kernel's batch, so chunks start on batch boundaries.
    constexpr uint64_t kChunk = uint64_t{1} << 16;
    const uint64_t chunks = (total + kChunk - 1) / kChunk;
    const int nt = int(std::min<uint64_t>(uint64_t(get_num_threads()), chunks));
    std::atomic<uint64_t> next{0};
    std::atomic<bool> stop{false};
    // The calling thread (a member of every team) polls `interrupted` every kPollInterval: it is
    // the thread that released the GIL, so it may take it back for the poll.
    const std::thread::id caller = std::this_thread::get_id();
    auto last_poll = std::chrono::steady_clock::now();
    run_threads(nt, [&] {
        const bool polls = interrupted && std::this_thread::get_id() == caller;
        for (uint64_t c; !stop.load(std::memory_order_relaxed) &&
                         (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
            const uint64_t a = c * kChunk;
            fill_out(a, std::min(a + kChunk, total));
            if (polls && std::chrono::steady_clock::now() - last_poll > kPollInterval) {
                last_poll = std::chrono::steady_clock::now();
                if (interrupted()) stop.store(true);
            }
        }
    });
    if (stop.load()) return false;
    return true;
}

}  // namespace weightfill
