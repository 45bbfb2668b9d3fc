// Philox4x32-10 (Salmon et al., SC'11; Random123 philox4x32_R(10, ...)), scalar form.
// The SIMD kernels compute the same function lane by lane; this one serves the
// partial-block paths' tests and documents the constants in one place.
#pragma once
#include <cstdint>

namespace weightfill {

// Multipliers and Weyl increments from Random123's philox.h.
inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
inline constexpr int kPhiloxRounds = 10;

// Seed and stream as the DESIGN.md counter contract lays them out:
// key = (seed mod 2^32, seed >> 32); counter words c2, c3 = (stream mod 2^32, stream >> 32).
struct StreamKey {
    uint32_t k0, k1;  // key
    uint32_t c2, c3;  // fixed counter words
    static StreamKey make(uint64_t seed, uint64_t stream) {
        return {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)};
    }
};

// Internal linkage on purpose: each kernel translation unit is compiled with its own
// instruction-set flags, and a shared inline copy could let the linker hand AVX-512 code to
// the portable path.
namespace {

// Block j of the stream: counter (j mod 2^32, j >> 32, c2, c3).
inline void philox4x32_10(const StreamKey& sk, uint64_t block, uint32_t out[4]) {
    uint32_t c0 = static_cast<uint32_t>(block), c1 = static_cast<uint32_t>(block >> 32);
    uint32_t c2 = sk.c2, c3 = sk.c3, k0 = sk.k0, k1 = sk.k1;
    for (int r = 0; r < kPhiloxRounds; ++r) {
        const uint64_t p0 = uint64_t{kPhiloxM0} * c0;
        const uint64_t p1 = uint64_t{kPhiloxM1} * c2;
        const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
        const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
        c1 = static_cast<uint32_t>(p1);
        c3 = static_cast<uint32_t>(p0);
        c0 = n0;
        c2 = n2;
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

}  // namespace

}  // namespace weightfill
