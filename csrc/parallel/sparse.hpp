// Sparse masks (stream-spec 3.8): for each line of a 2-D tensor, the positions that stay
// non-zero are chosen by Floyd's algorithm from draws in the reserved counter range, and the
// other positions of an already filled region are set to zero.
#pragma once
#include <cstdint>

#include "../engine.hpp"

namespace weightfill {

struct SparseSpec {
    uint64_t rows, cols;        // full shape
    int axis;                   // 0: lines are columns (positions run over rows); 1: lines are rows
    uint64_t sampled;           // positions drawn per line by Floyd's algorithm
    bool sampled_are_zero;      // the drawn positions become zero (else they are the kept ones)
    uint64_t r0, nr, c0, nc;    // region: rows r0 .. r0+nr-1, columns c0 .. c0+nc-1
    size_t itemsize;            // bytes per element of out (zero is all-zero bits for floats)
};

// Zeroes the masked positions of `out` (the region, C order).
void sparse_zero(const StreamKey& key, const SparseSpec& spec, void* out);

}  // namespace weightfill
