// The narrow interface between the parallel driver and the per-instruction-set kernels.
#pragma once
#include <cstddef>
#include <cstdint>

#include "rng/philox.hpp"

namespace weightfill {

enum class Dist : int { raw = 0, uniform = 1, normal = 2, truncated_normal = 3 };
// f16 and bf16 hold the float32 result rounded to nearest-even (stream-spec 3.7).
enum class DType : int { u32 = 0, f32 = 1, f64 = 2, f16 = 3, bf16 = 4 };
inline constexpr int kNumDists = 4, kNumDTypes = 5;

// Per-call constants. (a, b) are (low, high) for uniform and (mean, std) for normal; each
// kernel rounds them to its output precision (docs/stream-spec.md section 3).
struct FillParams {
    StreamKey key;
    double a = 0.0;
    double b = 0.0;
    // Element i takes its bits from block block_base + i / elements_per_block (mod 2^64).
    // Zero for tensors; random_raw uses it to reach all 2^64 blocks of a stream.
    uint64_t block_base = 0;
    // Distribution constants computed once per call in Python (truncated normal: see
    // TruncatedNormal in kernels-inl.hpp for the layout).
    double extra[8] = {0, 0, 0, 0, 0, 0, 0, 0};
};

// Fills out[0 .. n) with elements first .. first + n - 1 of the stream (global flat indices).
using RangeFn = void (*)(const FillParams&, uint64_t first, uint64_t n, void* out);
// Fills out[i] with element index[i] of the stream, for i in 0 .. n-1 (any indices, any order):
// the same values as a range fill, for scattered elements such as a sparse matrix's kept ones.
using GatherFn = void (*)(const FillParams&, const uint64_t* index, uint64_t n, void* out);
// Sets out[k] to all-zero bits where bit k % 64 of bits[k / 64] ^ flip is set, for k in 0 ..
// n-1 (elements of 2, 4 or 8 bytes: floating-point zero in every output format).
using ZeroFn = void (*)(void* out, const uint64_t* bits, uint64_t n, uint64_t flip);
// A normal range fill (out[0 .. n) = elements first .. first + n - 1) with all-zero bits where
// bit k % 64 of words[(k / 64) * stride] ^ flip is set: a sparse row, in one pass.
using NormalWhereFn = void (*)(const FillParams&, uint64_t first, uint64_t n, void* out, const uint64_t* words,
                               uint64_t stride, uint64_t flip);
// Sparse method "keys" (stream-spec 3.9), on 8-bit keys. Thresholds a, b in [0, 256):
// counts[0] = #{p < n : keys[p] < a}, counts[1] = #{p < n : keys[p] < b}.
using CountBelowFn = void (*)(const uint8_t* keys, uint64_t n, uint32_t a, uint32_t b, uint64_t* counts);
// Bit p % 64 of bits[p / 64] = (keys[p] < t) for p in 0 .. n-1, t in [0, 256]; bits of the last
// word from n on are zero.
using BelowBitsFn = void (*)(const uint8_t* keys, uint64_t n, uint32_t t, uint64_t* bits);
// As BelowBitsFn for t in [0, 256), and also bit p % 64 of equal[p / 64] = (keys[p] == t).
using TieBitsFn = void (*)(const uint8_t* keys, uint64_t n, uint32_t t, uint64_t* below, uint64_t* equal);
// For a line of n <= 64 keys stored in 64 bytes (keys[n .. 64) = 0xFF) and 1 <= z <= n: t*, the
// z-th smallest key, with how many keys are below and equal to it; bit p of *below / *equal
// says which (p < n).
struct KthKey {
    uint32_t t, below, equal;
};
using KthKeyFn = KthKey (*)(const uint8_t* keys, uint64_t n, uint64_t z, uint64_t* below, uint64_t* equal);

struct KernelTable {
    const char* name;
    RangeFn fn[kNumDists][kNumDTypes];  // nullptr where a distribution lacks a dtype
    GatherFn gather_normal[kNumDTypes];
    GatherFn gather_raw64;  // raw 64-bit values: element i = words 2(i mod 2), +1 of block i / 2
    ZeroFn zero_where[kNumDTypes];  // by element size only (u32 and f32 share one)
    CountBelowFn count_below;
    BelowBitsFn below_bits;
    TieBitsFn tie_bits;
    KthKeyFn kth_key64;
    NormalWhereFn normal_where[kNumDTypes];

    RangeFn lookup(Dist d, DType t) const { return fn[int(d)][int(t)]; }
};

// Elements per Philox block for a dtype (32-bit outputs: 4, 64-bit: 2).
inline constexpr int elements_per_block(DType t) { return t == DType::f64 ? 2 : 4; }
inline constexpr size_t dtype_size(DType t) {
    return t == DType::f64 ? 8 : (t == DType::f16 || t == DType::bf16) ? 2 : 4;
}

namespace kernels {
const KernelTable& scalar_table();
const KernelTable& avx2_table();    // only call when the CPU has AVX2 + FMA
const KernelTable& avx512_table();  // only call when the CPU has AVX-512 F/DQ/BW/VL
}  // namespace kernels

}  // namespace weightfill
