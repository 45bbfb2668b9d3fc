// Parallel driver: splits the elements of a region of a C-order tensor over threads and calls
// the active kernel on contiguous runs of global element indices. Values depend only on the
// global index, so the split never changes a bit.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "../engine.hpp"

namespace weightfill {

// A box of a C-order tensor of `shape`: `start[d] .. start[d] + len[d]` along each axis.
struct Region {
    std::vector<uint64_t> shape, start, len;
};

// Fills `out` (prod(len) elements of `dtype`, C order) with region `r` of the full tensor.
// `interrupted` is called by the calling thread (and no other) about every kPollInterval while
// the fill runs; when it returns true the threads stop taking work and fill() returns false.
bool fill(Dist dist, DType dtype, const FillParams& params, const Region& r, void* out,
          const std::function<bool()>& interrupted);

inline constexpr std::chrono::milliseconds kPollInterval{20};

// Runs `body` on `nthreads` threads (OpenMP, or std::thread in a forked child) and waits.
void run_parallel(int nthreads, const std::function<void()>& body);

void set_num_threads(int n);
int get_num_threads();
// "openmp", or "threads" when built without OpenMP or running in a child forked after the
// OpenMP pool started (GNU libgomp's pool does not survive fork()).
const char* thread_backend();

}  // namespace weightfill
