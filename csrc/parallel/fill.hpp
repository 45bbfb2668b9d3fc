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

inline constexpr std::chrono::milliseconds kPollInterval{20};

// One fill of a plan, of either kind:
// - pattern == false: writes region `region` of the full tensor of `dist` values of `dtype`
//   (prod(len) elements, C order) to `out`;
// - pattern == true: writes `count` copies of the element whose `itemsize` (1, 2, 4 or 8)
//   bytes are the low bytes of `bits`, little-endian, to `out`: the plain memory fill behind
//   zeros/constant.
struct PlanItem {
    bool pattern = false;
    Dist dist = Dist::raw;
    DType dtype = DType::u32;
    FillParams params;
    Region region;
    uint64_t count = 0;
    size_t itemsize = 0;
    uint64_t bits = 0;
    void* out = nullptr;
};

// Runs every item in one parallel region: small items are grouped, large ones split into
// block-aligned chunks, and the threads take the pieces of all items from one counter. Values
// depend only on the global index, so no split changes a bit. Items whose output memory
// overlaps an earlier item's run after it, as separate calls would. Checks every item before
// writing anything (std::invalid_argument). `interrupted` is called by the calling thread (and
// no other) about every kPollInterval; when it returns true the threads stop taking work and
// fill_plan() returns false.
bool fill_plan(const std::vector<PlanItem>& items, const std::function<bool()>& interrupted);

// Runs `body` on the calling thread and on up to nthreads - 1 more, and waits for them. With
// the pool, workers that wake after the caller's share is done do not run it: `body` must
// give the same result with any number of runners from 1 to nthreads.
void run_parallel(int nthreads, const std::function<void()>& body);

// The element whose `itemsize` (1, 2, 4 or 8) bytes are the low bytes of `bits`, repeated over
// a 64-bit word (little-endian); and `bytes` bytes of that word's repetition written to `out`
// (on the calling thread; `out` need not be aligned). Together: a memory fill of one element.
uint64_t pattern_word(uint64_t bits, size_t itemsize);
void write_pattern(void* out, uint64_t bytes, uint64_t word);

void set_num_threads(int n);
int get_num_threads();
// "openmp" (the default when built with OpenMP) or "pool" (WEIGHTFILL_THREADING=pool, builds
// without OpenMP, and forked children).
const char* thread_backend();

}  // namespace weightfill
