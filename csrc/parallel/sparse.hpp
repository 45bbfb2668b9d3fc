// Sparse matrices (stream-spec 3.8): normal values with, for each line of the 2-D tensor, the
// positions drawn from the reserved counter range (Floyd's algorithm or ranked keys) set to
// zero or kept.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "../engine.hpp"

namespace weightfill {

// How a line's positions are drawn: Floyd's algorithm (stream-spec 3.8, the default) or the
// smallest of random 8-bit keys, ties broken by 64-bit keys (3.9, "keys": faster when zeros and
// kept are both many).
enum class SparseMethod : int { floyd = 0, keys = 1 };

struct SparseSpec {
    uint64_t rows, cols;        // full shape
    int axis;                   // 0: lines are columns (positions run over rows); 1: lines are rows
    uint64_t sampled;           // positions drawn per line by Floyd's algorithm
    bool sampled_are_zero;      // the drawn positions become zero (else they are the kept ones)
    uint64_t r0, nr, c0, nc;    // region: rows r0 .. r0+nr-1, columns c0 .. c0+nc-1
    SparseMethod method;
};

// Fills `out` (the region, C order, `dtype`) with normal(0, std) values (`params`: a = 0,
// b = std) and zeroes the masked positions, each row right after it is generated, while it is
// still in cache. Returns false if `interrupted` (polled by the calling thread) said stop.
bool sparse_fill(const FillParams& params, DType dtype, const SparseSpec& spec, void* out,
                 const std::function<bool()>& interrupted);

// The indices (ascending) of the `need` smallest (tie_keys[i], i): how method "keys" chooses
// among a line's ties. Exposed for tests (the fallback for equal high words is too rare to reach
// through sparse()).
std::vector<uint64_t> rank_ties(const std::vector<uint64_t>& tie_keys, uint64_t need);

}  // namespace weightfill
