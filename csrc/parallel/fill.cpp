#include "fill.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iterator>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "../simd/dispatch.hpp"

#ifdef WEIGHTFILL_OPENMP
#include <omp.h>
#endif

namespace weightfill {

namespace {

std::atomic<int> g_num_threads{0};  // 0: not chosen yet
std::atomic<bool> g_forked_child{false};
class Pool;
std::atomic<Pool*> g_pool{nullptr};  // created on first use

int default_threads() {
#ifdef WEIGHTFILL_OPENMP
    return std::max(1, omp_get_max_threads());  // honours OMP_NUM_THREADS
#else
    return std::max(1u, std::thread::hardware_concurrency());
#endif
}

// A forked child has none of its parent's worker threads: it starts a new pool (leaking the
// copied one) and leaves OpenMP, whose GNU pool survives fork() as a list of absent threads.
[[maybe_unused]] const bool g_atfork_registered = [] {
    pthread_atfork(nullptr, nullptr, [] {
        g_forked_child.store(true);
        g_pool.store(nullptr);
    });
    return true;
}();

// Persistent workers for parallel calls (WEIGHTFILL_THREADING=pool, and forked children). A
// call runs `body` on the calling thread and offers it to up to nt - 1 workers; it returns
// once its own share is done and every worker that joined has left. A worker that has not
// woken by then does not join: `body` must tolerate any number of runners from 1 to nt, as
// every chunk loop here does (threads take work from a shared counter). This is what OpenMP's
// barrier cannot do, and what matters on a virtual machine whose idle vCPU can take 2-8 ms to
// run again: a 2**20-value fill 0.2 s after the last took 7.6-7.9 ms with GNU OpenMP (the
// caller waited for the late thread at the barrier) and 0.5 ms with the pool; hot, 0.14 ms
// with either. Calls from several threads at once: one gets the workers, the others run alone.
//
// `state_` packs the open slots (high half) and the workers inside `body` (low half), so that
// joining (open - 1, active + 1) and closing (open = 0) are single atomic steps: a worker that
// joined is always waited for, and one that did not can no longer join.
class Pool {
  public:
    void run(int nt, const std::function<void()>& body) {
        // A call from inside a pool call (a worker, or the caller's body: a Python signal
        // handler run by the interrupt poll may start a fill) runs alone; so does a call made
        // while another thread's call holds the workers.
        if (t_in_pool) {
            body();
            return;
        }
        std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
        if (!busy) {
            body();
            return;
        }
        int offered;
        {
            std::lock_guard<std::mutex> lk(m_);
            try {
                while (workers_ < nt - 1) {
                    std::thread(&Pool::work, this).detach();  // lives until the process exits
                    ++workers_;
                }
            } catch (const std::system_error&) {  // no more threads: run with those there are
            }
            offered = std::min(nt - 1, workers_);
            body_.store(&body, std::memory_order_relaxed);
            state_.fetch_add(uint64_t(offered) << 32, std::memory_order_release);
        }
        if (offered > 0) cv_.notify_all();
        std::exception_ptr error;
        t_in_pool = true;
        try {
            body();
        } catch (...) {
            error = std::current_exception();
        }
        t_in_pool = false;
        state_.fetch_and(kActive, std::memory_order_acq_rel);  // close: no new joiners
        // The joined workers are inside `body` and about to leave: wait without sleeping (no
        // futex wake-up on the way out) and without `pause` loops, which a hypervisor may
        // treat as lock spinning and deschedule.
        while (state_.load(std::memory_order_acquire) & kActive) std::this_thread::yield();
        {
            std::lock_guard<std::mutex> lk(m_);
            if (!error) error = worker_error_;
            worker_error_ = nullptr;
        }
        if (error) std::rethrow_exception(error);  // only after every runner has left `body`
    }

  private:
    static constexpr uint64_t kActive = 0xFFFFFFFFu, kOpen = uint64_t{1} << 32;
    static constexpr std::chrono::milliseconds kStayAwake{20};

    bool try_join() {
        uint64_t s = state_.load(std::memory_order_acquire);
        while (s >= kOpen)
            if (state_.compare_exchange_weak(s, s - kOpen + 1, std::memory_order_acq_rel)) return true;
        return false;
    }

    void work() {
        t_in_pool = true;
        for (;;) {
            // After a call, stay awake for kStayAwake, yielding the CPU to anything else that
            // wants it: on a virtual machine a vCPU that goes idle for more than a few ms takes
            // 2-4 ms to run again (measured: a 2**24-value fill 10 ms after the last took
            // 4.1 ms with 0.2 ms of waiting and 2.1 ms with 20 ms; 50 ms after, 4.1 and 2.5 ms).
            // OpenMP runtimes spin for a similar time, with `pause` loops instead of yields.
            const auto until = std::chrono::steady_clock::now() + kStayAwake;
            bool joined = try_join();
            while (!joined && std::chrono::steady_clock::now() < until) {
                std::this_thread::yield();
                joined = try_join();
            }
            if (!joined) {
                std::unique_lock<std::mutex> lk(m_);
                cv_.wait(lk, [this] { return try_join(); });
            }
            try {
                (*body_.load(std::memory_order_relaxed))();  // published before the slots opened
            } catch (...) {  // handed to the caller, which rethrows it
                std::lock_guard<std::mutex> lk(m_);
                if (!worker_error_) worker_error_ = std::current_exception();
            }
            state_.fetch_sub(1, std::memory_order_release);
        }
    }

    static thread_local bool t_in_pool;

    std::mutex busy_, m_;
    std::condition_variable cv_;
    std::atomic<const std::function<void()>*> body_{nullptr};
    std::atomic<uint64_t> state_{0};
    std::exception_ptr worker_error_;  // guarded by m_
    int workers_ = 0;
};

thread_local bool Pool::t_in_pool = false;

Pool& pool() {
    Pool* p = g_pool.load(std::memory_order_acquire);
    if (!p) {  // no lock, so a child forked mid-creation cannot inherit a held one
        Pool* fresh = new Pool;
        if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return *fresh;
        delete fresh;  // another thread's pool won (it has started no workers yet)
    }
    return *p;
}

// WEIGHTFILL_THREADING: "openmp" (the default when built with OpenMP) or "pool"; read at the
// first parallel call. OpenMP is the default because a process that also runs PyTorch shares
// one GNU OpenMP runtime with it (torch's libgomp.so.1 satisfies ours): no second set of
// threads competes with torch's, whose threads spin for several ms after each operation (with
// the pool, a 2**27-value xavier_uniform right after torch's took 20 ms instead of 17.5).
// A forked child always uses a pool: GNU libgomp's pool survives fork() as a list of absent
// threads, and the child's next region would wait for them forever.
bool openmp_requested() {
    static const bool requested = [] {  // a throwing initializer runs again on the next call
        const char* e = std::getenv("WEIGHTFILL_THREADING");
        const std::string name = e ? e : "";
        if (name == "pool") return false;
        if (!name.empty() && name != "openmp")
            throw std::invalid_argument("WEIGHTFILL_THREADING: must be 'openmp' or 'pool', not '" + name + "'");
#ifdef WEIGHTFILL_OPENMP
        return true;
#else
        if (!name.empty()) throw std::invalid_argument("WEIGHTFILL_THREADING: this build has no OpenMP");
        return false;
#endif
    }();
    return requested;
}

bool use_openmp() { return openmp_requested() && !g_forked_child.load(std::memory_order_relaxed); }

template <class Fn>
void run_threads(int nt, const Fn& body) {
    [[maybe_unused]] const bool openmp = use_openmp();  // checks WEIGHTFILL_THREADING on every path
    if (nt <= 1) {
        body();
        return;
    }
#ifdef WEIGHTFILL_OPENMP
    if (openmp) {
        // An exception must not leave a parallel region (std::terminate): the first one is
        // kept and rethrown on the calling thread after the region.
        std::exception_ptr error;
        std::mutex error_mutex;
        auto guarded = [&] {
            try {
                body();
            } catch (...) {
                std::lock_guard<std::mutex> lk(error_mutex);
                if (!error) error = std::current_exception();
            }
        };
#pragma omp parallel num_threads(nt)
        guarded();
        if (error) std::rethrow_exception(error);
        return;
    }
#endif
    pool().run(nt, body);
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

// Runs work(c) for every c in [0, chunks) on the library's threads. Threads take chunks from a
// shared counter in one parallel region, so a thread that the OS deschedules (another process
// on the core) delays one chunk, not a fixed share; there is a single barrier, at the end. The
// calling thread (a member of every team) polls `interrupted` every kPollInterval: it is the
// thread that released the GIL, so it may take it back for the poll. Returns false when
// interrupted (the threads then stop taking chunks).
template <class Work>
bool for_chunks(uint64_t chunks, const std::function<bool()>& interrupted, const Work& work) {
    const int nt = int(std::min<uint64_t>(uint64_t(get_num_threads()), chunks));
    std::atomic<uint64_t> next{0};
    std::atomic<bool> stop{false};
    const std::thread::id caller = std::this_thread::get_id();
    auto last_poll = std::chrono::steady_clock::now();
    run_threads(nt, [&] {
        const bool polls = interrupted && std::this_thread::get_id() == caller;
        try {
            for (uint64_t c; !stop.load(std::memory_order_relaxed) &&
                             (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
                work(c);
                if (polls && std::chrono::steady_clock::now() - last_poll > kPollInterval) {
                    last_poll = std::chrono::steady_clock::now();
                    if (interrupted()) stop.store(true);
                }
            }
        } catch (...) {
            stop.store(true);  // the other runners stop taking chunks
            throw;
        }
    });
    return !stop.load();
}

}  // namespace

void run_parallel(int nthreads, const std::function<void()>& body) { run_threads(nthreads, body); }

uint64_t pattern_word(uint64_t bits, size_t itemsize) {
    uint64_t word = 0;
    for (size_t i = 0; i < 8; ++i) word |= ((bits >> (8 * (i % itemsize))) & 0xFF) << (8 * i);
    return word;
}

void write_pattern(void* out, uint64_t bytes, uint64_t word) {
    unsigned char* p = static_cast<unsigned char*>(out);
    const uint64_t body = bytes / 8 * 8;
#if defined(__x86_64__)
    // `rep stosq`, the CPU's string store (fast on CPUs with ERMS, as glibc's memset knows):
    // 64 MiB on 2 threads in 1 MiB chunks took 0.77 ms here, SSE2 stores (the baseline
    // instruction set) 1.04 ms and AVX-512 stores 0.80-0.88 ms.
    uint64_t words = bytes / 8;
    void* dst = p;
    asm volatile("rep stosq" : "+D"(dst), "+c"(words) : "a"(word) : "memory");
#else
    for (uint64_t i = 0; i < body; i += 8) std::memcpy(p + i, &word, 8);
#endif
    std::memcpy(p + body, &word, bytes - body);  // the last partial word (0-7 bytes)
}

void set_num_threads(int n) { g_num_threads.store(std::max(1, n)); }

int get_num_threads() {
    int n = g_num_threads.load();
    if (n == 0) {
        n = default_threads();
        g_num_threads.store(n);
    }
    return n;
}

const char* thread_backend() { return use_openmp() ? "openmp" : "pool"; }

namespace {

// Pieces of work: fill chunks of kChunk elements, a multiple of every kernel's batch (so chunks
// start on batch boundaries), or of 2 MiB (below); memory-fill chunks of 1 MiB (multiples of 8
// bytes from the buffer's start, so each starts in phase with the repeated word). Items smaller
// than a chunk are grouped into pieces of at least kGroupBytes of output, so ten thousand
// small tensors cost a few hundred counter steps, not ten thousand.
constexpr uint64_t kChunk = uint64_t{1} << 16;
constexpr uint64_t kPatternChunk = uint64_t{1} << 20;
constexpr uint64_t kGroupBytes = uint64_t{1} << 18;
// Fills of 16 MiB and more go in 2 MiB chunks (a multiple of kChunk elements for every dtype):
// in new memory from the engine's allocator (2 MiB aligned, MADV_HUGEPAGE) each chunk is then
// one huge page, whose first-touch fault (the kernel zeroing 2 MiB) one thread takes while the
// other faults another page, instead of both waiting on the same one. A plan of 16 new
// 16 MiB float32 uniform fills on 2 threads: 87-99 ms against 98-111 ms with 2^16-element
// chunks (medians of 15, three processes each, loaded machine); in faulted-in memory no
// difference beyond the noise.
constexpr uint64_t kHugeChunk = uint64_t{2} << 20;
constexpr uint64_t kHugeChunkFrom = uint64_t{16} << 20;

// Faults in the whole pages of [begin, end) in one system call when the first of them is not
// resident yet (new memory): MADV_POPULATE_WRITE (Linux 5.14) allocates and zeroes them without
// a page-fault exception per 4 KiB page. The chunk's thread does it right before writing the
// chunk. materialize of GPT-2-medium (1354 MiB, new storage on 4 KiB pages) in fresh processes
// on the development VM, six alternating pairs: kernel time 0.46-0.58 s against 0.53-0.76 s
// when the writes fault the pages in (wall time within the noise of the loaded machine).
// Faulted-in memory is left alone: populating it anyway walked its page tables for nothing and
// made init_module's fills of the same model 40-60% slower; with the mincore() check they take
// the same time as without prefaulting. Any failure (an older kernel) leaves the pages to the
// writes.
void prefault(char* begin, char* end) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t lo = (reinterpret_cast<uintptr_t>(begin) + page - 1) & ~(page - 1);
    const uintptr_t hi = reinterpret_cast<uintptr_t>(end) & ~(page - 1);
    if (hi <= lo) return;
    unsigned char resident = 0;
    if (mincore(reinterpret_cast<void*>(lo), page, &resident) != 0 || (resident & 1)) return;
    madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);  // advice: may fail
#else
    (void)begin;
    (void)end;
#endif
}

// A plan item checked and ready for the threads: its work is `units` elements (fills) or bytes
// (patterns), any sub-range of which run() writes.
struct Prepared {
    const PlanItem* item;
    RangeFn fn = nullptr;
    RunMap runs;
    uint64_t units = 0, chunk = 0, bytes = 0;
    uint64_t word = 0;  // patterns: the element repeated over 8 bytes

    explicit Prepared(const PlanItem& it) : item(&it), runs(it.region) {
        if (it.pattern) {
            const size_t sz = it.itemsize;
            if (sz != 1 && sz != 2 && sz != 4 && sz != 8)
                throw std::invalid_argument("itemsize: must be 1, 2, 4 or 8");
            word = pattern_word(it.bits, sz);
            units = bytes = it.count * sz;
            chunk = kPatternChunk;
            return;
        }
        fn = dispatch::active().lookup(it.dist, it.dtype);
        if (!fn) throw std::invalid_argument("dtype: not supported by this distribution");
        units = 1;
        for (uint64_t l : it.region.len) units *= l;
        bytes = units * dtype_size(it.dtype);
        chunk = bytes >= kHugeChunkFrom ? kHugeChunk / dtype_size(it.dtype) : kChunk;
    }

    // Writes output units [a, b): elements, which may span several runs of the region, or
    // bytes, `a` a multiple of 8.
    void run(uint64_t a, uint64_t b) const {
        if (a >= b) return;  // an empty item (its run length may be 0)
        if (item->pattern) {
            unsigned char* p = static_cast<unsigned char*>(item->out) + a;
            prefault(reinterpret_cast<char*>(p), reinterpret_cast<char*>(p + (b - a)));
            write_pattern(p, b - a, word);
            return;
        }
        const size_t esize = dtype_size(item->dtype);
        char* const base = static_cast<char*>(item->out);
        prefault(base + a * esize, base + b * esize);
        uint64_t run = a / runs.run_len, off = a % runs.run_len;
        while (a < b) {
            const uint64_t take = std::min(runs.run_len - off, b - a);
            fn(item->params, runs.run_start(run) + off, take, base + a * esize);
            a += take;
            ++run;
            off = 0;
        }
    }
};

// A piece of work: units [a, b) of item `first` when count == 1, else items first .. first +
// count - 1 whole.
struct Task {
    size_t first, count;
    uint64_t a, b;
};

// The tasks of items [lo, hi), in item order (neighbouring pieces go to neighbouring memory).
std::vector<Task> tasks_of(const std::vector<Prepared>& prep, size_t lo, size_t hi) {
    std::vector<Task> tasks;
    size_t group = lo;  // first item of the open group
    uint64_t group_bytes = 0;
    auto close_group = [&](size_t end) {
        if (end > group) tasks.push_back({group, end - group, 0, prep[group].units});
        group = end;
        group_bytes = 0;
    };
    for (size_t i = lo; i < hi; ++i) {
        const Prepared& p = prep[i];
        if (p.units > p.chunk) {
            close_group(i);
            for (uint64_t a = 0; a < p.units; a += p.chunk)
                tasks.push_back({i, 1, a, std::min(a + p.chunk, p.units)});
            group = i + 1;
            continue;
        }
        group_bytes += p.bytes;
        if (group_bytes >= kGroupBytes) close_group(i + 1);
    }
    close_group(hi);
    return tasks;
}

}  // namespace

bool fill_plan(const std::vector<PlanItem>& items, const std::function<bool()>& interrupted) {
    std::vector<Prepared> prep;
    prep.reserve(items.size());
    for (const PlanItem& it : items) prep.emplace_back(it);  // every check before any write

    // Phases: an item whose bytes overlap an item of the current phase starts the next one,
    // so writes to the same memory happen in the items' order.
    std::map<uintptr_t, uintptr_t> busy;  // [start, end) of the current phase's items
    size_t phase = 0;
    for (size_t i = 0; i <= prep.size(); ++i) {
        bool boundary = i == prep.size();
        uintptr_t lo = 0, hi = 0;
        if (!boundary && prep[i].bytes && prep.size() > 1) {  // (one item: nothing to order)
            lo = reinterpret_cast<uintptr_t>(items[i].out);
            hi = lo + prep[i].bytes;
            auto next = busy.upper_bound(lo);
            boundary = (next != busy.end() && next->first < hi) ||
                       (next != busy.begin() && std::prev(next)->second > lo);
        }
        if (!boundary) {
            if (hi > lo) busy.emplace(lo, hi);
            continue;
        }
        const std::vector<Task> tasks = tasks_of(prep, phase, i);
        auto work = [&](uint64_t c) {
            const Task& t = tasks[c];
            if (t.count == 1) {
                prep[t.first].run(t.a, t.b);
                return;
            }
            for (size_t k = t.first; k < t.first + t.count; ++k) prep[k].run(0, prep[k].units);
        };
        const bool finished = tasks.empty() || for_chunks(tasks.size(), interrupted, work);
        if (!finished) return false;
        phase = i;
        busy.clear();
        if (hi > lo) busy.emplace(lo, hi);
    }
    return true;
}

}  // namespace weightfill
