#include "sparse.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "../simd/dispatch.hpp"
#include "fill.hpp"

namespace weightfill {
namespace {

// Reserved counter range (stream-spec 2 and 3.8): line l's draw d comes from block
// 2^63 + l * 2^31 + d / 2, never reached by element draws (blocks < 2^62).
constexpr uint64_t kSparseBase = uint64_t{1} << 63;
constexpr int kLineShift = 31;

// Floyd's algorithm: draws `s` distinct positions of 0 .. n-1 for line `line`, setting bit
// `bit` of chosen[pos] for each (chosen has n words and starts without that bit anywhere).
// `words` is scratch for the 2 s Philox words of the draws.
void floyd(const StreamKey& key, uint64_t line, uint64_t n, uint64_t s, int bit,
           std::vector<uint32_t>& words, uint64_t* chosen) {
    if (s == 0) return;
    words.resize(size_t(2 * s));
    const FillParams p{key, 0.0, 0.0, kSparseBase + (line << kLineShift)};
    dispatch::active().lookup(Dist::raw, DType::u32)(p, 0, 2 * s, words.data());
    const uint64_t flag = uint64_t{1} << bit;
    for (uint64_t d = 0; d < s; ++d) {
        const uint64_t v = uint64_t{words[2 * d]} | (uint64_t{words[2 * d + 1]} << 32);
        const uint64_t j = n - s + d;
        // t uniform in 0 .. j by multiply-shift (bias below (j + 1) / 2^64).
        const uint64_t t = uint64_t((static_cast<unsigned __int128>(v) * (j + 1)) >> 64);
        chosen[(chosen[t] & flag) ? j : t] |= flag;
    }
}

// Zeroes the elements of run[0 .. count) whose bit is set in `z` (bit k for element k).
void zero_bits(char* run, uint64_t z, uint64_t count, size_t isz) {
    const uint64_t all = count == 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
    z &= all;
    if (z == all) {
        std::memset(run, 0, count * isz);
        return;
    }
    for (; z; z &= z - 1) std::memset(run + size_t(__builtin_ctzll(z)) * isz, 0, isz);
}

}  // namespace

void sparse_zero(const StreamKey& key, const SparseSpec& sp, void* out) {
    const bool by_col = sp.axis == 0;                 // lines are columns
    const uint64_t n = by_col ? sp.rows : sp.cols;    // positions per line
    const uint64_t l0 = by_col ? sp.c0 : sp.r0, nl = by_col ? sp.nc : sp.nr;
    if (nl == 0 || sp.nr == 0 || sp.nc == 0) return;
    char* const base = static_cast<char*>(out);
    const size_t isz = sp.itemsize;
    const uint64_t flip = sp.sampled_are_zero ? 0 : ~uint64_t{0};
    // Work units: 64 lines (columns) sharing one word per position, so that a row of the unit
    // is one word and one contiguous run of the output; or one line (row).
    const uint64_t per_unit = by_col ? 64 : 1;
    const uint64_t units = (nl + per_unit - 1) / per_unit;
    std::atomic<uint64_t> next{0};
    auto work = [&] {
        std::vector<uint32_t> words;
        std::vector<uint64_t> chosen(static_cast<size_t>(n));
        for (uint64_t u; (u = next.fetch_add(1)) < units;) {
            std::fill(chosen.begin(), chosen.end(), 0);
            const uint64_t first = u * per_unit, count = std::min(per_unit, nl - first);
            if (by_col) {
                for (uint64_t k = 0; k < count; ++k)
                    floyd(key, l0 + first + k, n, sp.sampled, int(k), words, chosen.data());
                for (uint64_t r = 0; r < sp.nr; ++r)
                    zero_bits(base + (r * sp.nc + first) * isz, chosen[sp.r0 + r] ^ flip, count, isz);
                continue;
            }
            floyd(key, l0 + first, n, sp.sampled, 0, words, chosen.data());
            char* row = base + first * sp.nc * isz;
            for (uint64_t c = 0; c < sp.nc; c += 64) {
                const uint64_t len = std::min<uint64_t>(64, sp.nc - c);
                uint64_t z = 0;
                for (uint64_t k = 0; k < len; ++k) z |= (chosen[sp.c0 + c + k] & 1) << k;
                zero_bits(row + c * isz, z ^ flip, len, isz);
            }
        }
    };
    run_parallel(int(std::min<uint64_t>(uint64_t(get_num_threads()), units)), work);
}

}  // namespace weightfill
