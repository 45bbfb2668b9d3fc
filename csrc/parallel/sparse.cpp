#include "sparse.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../simd/dispatch.hpp"
#include "fill.hpp"

namespace weightfill {
namespace {

// Both drawers read raw words as bytes or 64-bit pairs in place (lowest byte first).
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sparse.cpp reads the raw words' bytes in place, lowest byte first (little-endian)"
#endif

// Reserved counter range (stream-spec 2 and 3.8): line l's draw d comes from block
// 2^63 + l * 2^31 + d / 2, never reached by element draws (blocks < 2^62).
constexpr uint64_t kSparseBase = uint64_t{1} << 63;
constexpr int kLineShift = 31;

// Membership sets for Floyd's algorithm, one per line in flight. Lines of up to kByteSetMax
// positions use a byte per position holding the generation that chose it (a plain store to add,
// nothing to clear between lines); longer lines use a bitmap (n / 8 bytes), cleared after use.
constexpr uint64_t kByteSetMax = uint64_t{1} << 16;
struct ByteSet {
    uint8_t* m;
    uint8_t gen;
    bool has(uint64_t q) const { return m[q] == gen; }
    void add(uint64_t q) const { m[q] = gen; }
    // j if t is taken, else t. A taken t is unpredictable for large s: GCC compiles the plain
    // select to a branch (3x slower at s = n/2), so on x86-64 it is a compare and a cmov.
    uint64_t choose(uint64_t t, uint64_t j) const {
#if defined(__x86_64__) && defined(__GNUC__)
        asm("cmpb %[g], %[b]\n\tcmove %[j], %[t]" : [t] "+r"(t) : [g] "r"(gen), [b] "m"(m[t]), [j] "r"(j) : "cc");
        return t;
#else
        return has(t) ? j : t;
#endif
    }
};
// dst[w] = the membership bits of positions 64 w .. 64 w + 63 of a ByteSet, for all n positions.
void stamps_to_bits(const ByteSet& set, uint64_t n, uint64_t* dst) {
    uint64_t q = 0;
#if defined(__SSE2__)  // x86-64 baseline: 16 compares per instruction
    const __m128i g = _mm_set1_epi8(static_cast<char>(set.gen));
    for (; q + 64 <= n; q += 64) {
        uint64_t w = 0;
        for (int i = 0; i < 4; ++i) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(set.m + q + 16 * i));
            w |= uint64_t(uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(v, g)))) << (16 * i);
        }
        dst[q / 64] = w;
    }
#endif
    for (; q < n; q += 64) {
        uint64_t w = 0;
        for (uint64_t i = 0; i < 64 && q + i < n; ++i) w |= uint64_t{set.has(q + i)} << i;
        dst[q / 64] = w;
    }
}

struct BitSet {
    uint64_t* m;
    bool has(uint64_t q) const { return (m[q >> 6] >> (q & 63)) & 1; }
    void add(uint64_t q) const { m[q >> 6] |= uint64_t{1} << (q & 63); }
    uint64_t choose(uint64_t t, uint64_t j) const {  // as ByteSet::choose, branch-free
        uint64_t taken = 0 - uint64_t(has(t));
        asm("" : "+r"(taken));  // opaque to GCC, which would branch on it
        return t ^ ((t ^ j) & taken);
    }
};

// Raw 64-bit elements 0 .. per_line-1 of lines first .. first+count-1, element e of line l
// being 64-bit element l * 2^32 + e counted from block `base` (block base + l * 2^31 + e / 2,
// word pair e mod 2): one gather call for all the lines, line k's at out[k * per_line].
void gather_line_words(GatherFn gather, const StreamKey& key, uint64_t base, uint64_t first, int count,
                       uint64_t per_line, std::vector<uint64_t>& index, void* out) {
    index.clear();
    for (int k = 0; k < count; ++k)
        for (uint64_t e = 0; e < per_line; ++e) index.push_back(((first + uint64_t(k)) << 32) + e);
    gather(FillParams{key, 0.0, 0.0, base}, index.data(), index.size(), out);
}

// Per-thread scratch for Floyd's algorithm, run on up to kLines lines at once: each draw
// depends on the one before through the line's set, so interleaving independent lines keeps
// the core busy while one line's chain waits.
class Floyd {
  public:
    static constexpr int kLines = 4;
    // The call's table: one ISA per call.
    Floyd(RangeFn raw_u32, GatherFn raw64) : raw_(raw_u32), gather_(raw64) {}

    // Draws `s` distinct positions of 0 .. n-1 for lines first .. first+count-1 (count <=
    // kLines) and writes line first+k's as an n-bit map to out[k][0 .. (n + 63) / 64).
    void draw(const StreamKey& key, uint64_t first, int count, uint64_t n, uint64_t s, uint64_t* const* out) {
        if (n <= kByteSetMax) {
            bytes_.resize(size_t(kLines * n));
            if (++gen_ == 0) {  // the generation wrapped: old stamps would look current
                std::fill(bytes_.begin(), bytes_.end(), uint8_t{0});
                gen_ = 1;
            }
            ByteSet sets[kLines];
            for (int k = 0; k < kLines; ++k) sets[k] = ByteSet{bytes_.data() + size_t(k) * n, gen_};
            run(sets, key, first, count, n, s);
            for (int k = 0; k < count; ++k) stamps_to_bits(sets[k], n, out[k]);
        } else {
            const uint64_t words = (n + 63) / 64;
            bits_.resize(size_t(kLines * words));
            BitSet sets[kLines];
            for (int k = 0; k < kLines; ++k) sets[k] = BitSet{bits_.data() + size_t(k) * words};
            run(sets, key, first, count, n, s);
            for (int k = 0; k < count; ++k) {
                std::memcpy(out[k], sets[k].m, size_t(words) * sizeof(uint64_t));
                std::memset(sets[k].m, 0, size_t(words) * sizeof(uint64_t));
            }
        }
    }

  private:
    // Draws are made kChunk at a time, each chunk's Philox words generated just before: the
    // scratch stays at 4 lines x 2 kChunk words however long the lines are.
    static constexpr uint64_t kChunk = 8192;
    // Up to this many draws a line, the lines' words come from one gather call (a range call per
    // line computes a whole vector of blocks for a few words: 7x a normal fill's Philox time on
    // lines of 8 positions).
    static constexpr uint64_t kGatherMax = 8;

    template <class Set>
    void run(const Set* sets, const StreamKey& key, uint64_t first, int count, uint64_t n, uint64_t s) {
        stride_ = 2 * std::min(s, kChunk);
        words_.resize(size_t(kLines * stride_));
        for (uint64_t d0 = 0; d0 < s; d0 += kChunk) {
            const uint64_t d1 = std::min(s, d0 + kChunk);
            if (s <= kGatherMax) {
                // Few draws a line: one gathered call for all lines. Draw d's two words are raw
                // 64-bit element d of the line (block kSparseBase + l 2^31 + d / 2, pair d mod 2);
                // with stride_ = 2 s the values land exactly where the range path puts the words.
                gather_line_words(gather_, key, kSparseBase, first, count, s, index_, words_.data());
            } else {
                for (int k = 0; k < count; ++k) {
                    const FillParams p{key, 0.0, 0.0, kSparseBase + ((first + uint64_t(k)) << kLineShift)};
                    raw_(p, 2 * d0, 2 * (d1 - d0), words_.data() + size_t(k) * stride_);
                }
            }
            if (count == kLines) {
                steps<kLines>(sets, 0, n, s, d0, d1);
            } else {
                for (int k = 0; k < count; ++k) steps<1>(sets, k, n, s, d0, d1);
            }
        }
    }

    // Draws d0 .. d1-1 of lines k0 .. k0+K-1, from words_ (which hold those draws' words).
    template <int K, class Set>
    void steps(const Set* line_sets, int k0, uint64_t n, uint64_t s, uint64_t d0, uint64_t d1) {
        // Locals the compiler can keep in registers: a byte store may alias any memory, so
        // members would be reloaded after every step.
        const uint32_t* __restrict words[K];
        for (int k = 0; k < K; ++k) words[k] = words_.data() + size_t(k0 + k) * stride_;
        Set sets[K];
        for (int k = 0; k < K; ++k) sets[k] = line_sets[k0 + k];
        for (uint64_t i = 0; i < d1 - d0; ++i) {
            const uint64_t j = n - s + d0 + i;
            for (int k = 0; k < K; ++k) {
                const uint64_t v = uint64_t{words[k][2 * i]} | (uint64_t{words[k][2 * i + 1]} << 32);
                // t uniform in 0 .. j by multiply-shift (bias below (j + 1) / 2^64).
                const uint64_t t = uint64_t((static_cast<unsigned __int128>(v) * (j + 1)) >> 64);
                sets[k].add(sets[k].choose(t, j));  // j if t is taken, else t
            }
        }
    }

    RangeFn raw_;
    GatherFn gather_;
    uint64_t stride_ = 0;
    uint8_t gen_ = 0;
    std::vector<uint32_t> words_;  // line k's words for the current chunk of draws, from k * stride_
    std::vector<uint64_t> index_;  // the gathered path's element indices
    std::vector<uint8_t> bytes_;   // ByteSet storage, n bytes per line
    std::vector<uint64_t> bits_;   // BitSet storage, (n + 63) / 64 words per line
};

// Clears the bits of the last word of an n-bit map from n on.
void clear_tail(uint64_t* bits, uint64_t n) {
    if (n % 64) bits[(n - 1) / 64] &= (uint64_t{1} << (n % 64)) - 1;
}

// Sparse method "keys" (stream-spec 3.9). Position p of line l has the 8-bit key K(p): byte
// p of the words from block kKeysBase + l * 2^31 (little-endian bytes: 16 keys a block), and
// the 64-bit tie key T(p): words 2p and 2p + 1 (low, high) of the words from block kKeysBase +
// l * 2^31 + 2^30. The zeros are the z positions with the smallest (K(p), T(p), p). Blocks from
// 2^63 + 2^62 on hold these keys, beside Floyd's range (3.8) below them.
constexpr uint64_t kKeysBase = (uint64_t{1} << 63) + (uint64_t{1} << 62);
constexpr uint64_t kTieBlocks = uint64_t{1} << 30;

// Which of a line's m ties (keys equal to t*) are zeros: the `need` (1 .. m-1) with the smallest
// (T, i), tie i being the i-th in position order and T its 64-bit tie key.
class TieRanker {
  public:
    // Calls mark(i, chosen) for i in 0 .. m-1, chosen 1 for the `need` smallest, else 0.
    template <class Mark>
    void choose(const uint64_t* tkey, size_t m, uint64_t need, Mark&& mark) {
        chosen_.resize(m);
        if (m <= 64 && rank_by_counting(tkey, m, need)) {
            for (size_t i = 0; i < m; ++i) mark(i, chosen_[i]);
            return;
        }
        std::fill(chosen_.begin(), chosen_.end(), 0);
        order_.resize(m);
        for (size_t i = 0; i < m; ++i) order_[i] = uint32_t(i);
        std::nth_element(order_.begin(), order_.begin() + std::ptrdiff_t(need - 1), order_.end(), [tkey](uint32_t x, uint32_t y) {
            return tkey[x] != tkey[y] ? tkey[x] < tkey[y] : x < y;
        });
        for (uint64_t k = 0; k < need; ++k) chosen_[order_[size_t(k)]] = 1;
        for (size_t i = 0; i < m; ++i) mark(i, chosen_[i]);
    }

  private:
    // Chooses the ties with fewer than `need` smaller high words of T (no unpredictable
    // branches; 32-bit compares vectorize in this baseline translation unit). With distinct
    // high words that is exactly `need` ties, the right ones; equal high words share a rank,
    // which changes the count only when they straddle the boundary (about m / 2^33 of lines):
    // then false, and the full (T, i) order decides.
    bool rank_by_counting(const uint64_t* tkey, size_t m, uint64_t need) {
        hi_.resize(m);
        for (size_t i = 0; i < m; ++i) hi_[i] = uint32_t(tkey[i] >> 32);
        const uint32_t* const h = hi_.data();
        uint64_t count = 0;
        for (size_t i = 0; i < m; ++i) {
            uint32_t less = 0;
            for (size_t j = 0; j < m; ++j) less += h[j] < h[i];
            chosen_[i] = less < need;
            count += chosen_[i];
        }
        return count == need;
    }

    std::vector<uint32_t> hi_, order_;
    std::vector<uint64_t> chosen_;
};

// t*, the z-th smallest key, comes from counting passes over the line's keys (vectorized): the
// first counts below two probes one standard deviation of the z-th order statistic either side
// of its mean; interpolating passes narrow the bracket to t* (2.7 passes on average for n =
// 4096). Then the keys below t* are zeros, and so are the `need` ties (keys equal to t*, about
// n / 256 of them) with the smallest tie keys, computed for the ties only.
class KeyRank {
  public:
    static constexpr int kLines = 4;  // lines per draw(), as Floyd (drawn one after another)

    // `zeros` per line; the maps get the zeros' bits if `bits_are_zeros`, else the kept ones'.
    KeyRank(const KernelTable& table, uint64_t zeros, bool bits_are_zeros)
        : raw_(table.lookup(Dist::raw, DType::u32)), gather_(table.gather_raw64), count_(table.count_below),
          below_(table.below_bits), tie_bits_(table.tie_bits), kth_(table.kth_key64), z_(zeros), zero_bits_(bits_are_zeros) {}

    // Writes line first+k's n-bit map to out[k][0 .. (n + 63) / 64) for k < count. The ties
    // of all `count` lines get their tie keys from one gather call.
    void draw(const StreamKey& key, uint64_t first, int count, uint64_t n, uint64_t /*sampled*/, uint64_t* const* out) {
        const uint64_t z = z_, words = (n + 63) / 64;
        if (z == 0 || z == n) {
            for (int k = 0; k < count; ++k) {
                std::fill(out[k], out[k] + words, (z == 0) == zero_bits_ ? 0 : ~uint64_t{0});
                clear_tail(out[k], n);
            }
            return;
        }
        if (n != n_) {  // the first probes depend only on (n, z): one standard deviation of t*
            n_ = n;
            const double q = (double(z) - 0.5) / double(n), d = 256.0 * std::sqrt(q * (1.0 - q) / double(n)) + 1.0;
            a0_ = uint32_t(std::clamp(std::floor(256.0 * q - d), 1.0, 255.0));
            b0_ = uint32_t(std::clamp(std::ceil(256.0 * q + d), double(a0_), 255.0));
        }
        const bool short_lines = n <= 64;
        if (short_lines) gather_short_keys(key, first, count, n);
        ties_.clear();
        index_.clear();
        uint64_t need[kLines], tie_end[kLines];
        for (int k = 0; k < count; ++k) {
            need[k] = short_lines ? select_short(first + uint64_t(k), k, out[k]) : select(key, first + uint64_t(k), out[k]);
            tie_end[k] = ties_.size();
        }
        if (!ties_.empty()) {
            // T(p) of line l is 64-bit element 2 (l * 2^31 + 2^30) + p counted from block
            // kKeysBase (block kKeysBase + l * 2^31 + 2^30 + p / 2, pair p mod 2; below 2^64).
            tkeys_.resize(index_.size());
            gather_(FillParams{key, 0.0, 0.0, kKeysBase}, index_.data(), index_.size(), tkeys_.data());
        }
        for (int k = 0; k < count; ++k) {
            const size_t begin = k == 0 ? 0 : size_t(tie_end[k - 1]);
            if (need[k] > 0) choose_ties(begin, size_t(tie_end[k]), need[k], out[k]);
            if (!zero_bits_) {
                for (uint64_t i = 0; i < words; ++i) out[k][i] = ~out[k][i];
                clear_tail(out[k], n);
            }
        }
    }

  private:
    static constexpr uint64_t kChunk = uint64_t{1} << 21;  // keys held at once (2 MiB); a multiple of 64

    // Marks line l's zeros below t* in `bits`; appends its ties (positions with key t*) to ties_
    // and their tie keys' element indices to index_ and returns how many of them are zeros
    // (0 when all are, and then marks them too).
    uint64_t select(const StreamKey& key, uint64_t l, uint64_t* bits) {
        const uint64_t n = n_, z = z_;
        line_params_.key = key;
        line_params_.block_base = kKeysBase + (l << 31);
        held_ = false;
        // Invariant: below(lo) = clo < z <= chi = below(hi), where below(t) counts the keys < t;
        // so lo <= t* < hi.
        uint32_t lo = 0, hi = 256, a = a0_, b = b0_;
        uint64_t clo = 0, chi = n;
        for (;;) {
            uint64_t c[2] = {0, 0};
            chunks([&](const uint8_t* k, uint64_t, uint64_t len) {
                uint64_t part[2];
                count_(k, len, a, b, part);
                c[0] += part[0], c[1] += part[1];
            });
            if (z <= c[0]) hi = a, chi = c[0];
            else if (z <= c[1]) lo = a, clo = c[0], hi = b, chi = c[1];
            else lo = b, clo = c[1];
            if (hi - lo == 1) break;
            // Next probes half a standard deviation (plus one) either side of t*'s interpolated
            // position in the bracket. With the first probes at one standard deviation that is
            // 2.7 passes on average for n = 4096 and 3.0 for n = 512 (simulated; 4 and 1
            // standard deviations took 3.0 and 3.8, ternary search 4). Any probes with lo < a
            // <= b < hi give the same t*: single precision and truncation are plenty (double
            // division, sqrt and floor took a tenth of a short line's time).
            const float inv = 1.0f / float(chi - clo), qb = (float(z - clo) - 0.5f) * inv, w = float(hi - lo);
            const float e = float(lo) + qb * w, s = 0.5f * w * std::sqrt(qb * (1.0f - qb) * inv) + 1.0f;
            a = uint32_t(std::clamp(e - s, float(lo + 1), float(hi - 1)));
            b = uint32_t(std::clamp(e + s, float(a), float(hi - 1)));
        }
        const uint32_t t = lo;  // t*: clo keys below it, chi - clo equal to it
        if (chi == z) {  // every tie is a zero
            chunks([&](const uint8_t* k, uint64_t p0, uint64_t len) { below_(k, len, t + 1, bits + p0 / 64); });
            return 0;
        }
        // The tie keys decide which of the ties are zeros.
        const size_t first_tie = ties_.size();
        ties_.resize(first_tie + size_t(chi - clo));
        uint64_t* tie = ties_.data() + first_tie;
        chunks([&](const uint8_t* k, uint64_t p0, uint64_t len) {
            tie_bits_(k, len, t, bits + p0 / 64, scratch_.data());
            // The words holding ties are found first, branch-free (a branch per word would
            // mispredict: about one word in four holds a tie).
            const uint64_t nw = (len + 63) / 64;
            for (uint64_t g = 0; g < nw; g += 64) {
                uint64_t nonzero = 0;
                for (uint64_t i = g; i < std::min(nw, g + 64); ++i) nonzero |= uint64_t{scratch_[size_t(i)] != 0} << (i - g);
                for (; nonzero; nonzero &= nonzero - 1) {
                    const uint64_t i = g + uint64_t(__builtin_ctzll(nonzero));
                    for (uint64_t x = scratch_[size_t(i)]; x; x &= x - 1) *tie++ = p0 + 64 * i + uint64_t(__builtin_ctzll(x));
                }
            }
        });
        const uint64_t base = 2 * ((l << 31) + kTieBlocks);
        for (size_t i = first_tie; i < ties_.size(); ++i) index_.push_back(base + ties_[i]);
        return z - clo;
    }

    // Lines of at most 64 positions (their per-line calls and probes cost several times their
    // keys: 30x a normal fill on lines of 8). Their keys come from one gather call for the
    // `count` lines into short_keys_, line k's at k * 64 padded with 0xFF, a key no threshold
    // below counts (thresholds are at most 255).
    void gather_short_keys(const StreamKey& key, uint64_t first, int count, uint64_t n) {
        // K(p) of line l is byte p mod 8 of the line's raw 64-bit element p / 8 from kKeysBase.
        const uint64_t per_line = (n + 7) / 8;
        uint64_t raw[kLines * 8];
        gather_line_words(gather_, key, kKeysBase, first, count, per_line, index_, raw);
        std::memset(short_keys_, 0xFF, sizeof short_keys_);
        for (int k = 0; k < count; ++k) std::memcpy(short_keys_ + 64 * k, raw + size_t(k) * per_line, size_t(n));
    }

    // select() for line l of at most 64 positions, its keys at short_keys_ + 64 k: t* and its
    // ties from the kernels' two-level count (30 compares of the 64 keys, no passes to steer).
    uint64_t select_short(uint64_t l, int k, uint64_t* bits) {
        uint64_t below, equal;
        const KthKey kth = kth_(short_keys_ + 64 * k, n_, z_, &below, &equal);
        const uint64_t clo = kth.below;
        if (clo + kth.equal == z_) {  // every tie is a zero
            bits[0] = below | equal;
            return 0;
        }
        bits[0] = below;
        const uint64_t base = 2 * ((l << 31) + kTieBlocks);
        for (uint64_t x = equal; x; x &= x - 1) {
            const uint64_t p = uint64_t(__builtin_ctzll(x));
            ties_.push_back(p);
            index_.push_back(base + p);
        }
        return z_ - clo;
    }

    // Sets the bits of the `need` ties ties_[begin .. end) (ascending positions; tie keys in
    // tkeys_) with the smallest (T(p), p).
    void choose_ties(size_t begin, size_t end, uint64_t need, uint64_t* bits) {
        const uint64_t* const pos = ties_.data() + begin;
        ranker_.choose(tkeys_.data() + begin, end - begin, need, [bits, pos](size_t i, uint64_t chosen) {
            bits[pos[i] / 64] |= chosen << (pos[i] % 64);  // no branch: chosen is a coin flip
        });
    }

    // Calls f(keys, p0, len) for the line's keys p0 .. p0+len-1, in chunks of up to kChunk
    // (generated once for lines up to kChunk, else again on every pass).
    template <class F>
    void chunks(F&& f) {
        const uint64_t held = std::min(n_, kChunk);
        keys_.resize(size_t(held + 4));  // whole words: up to 3 bytes past the last key
        scratch_.resize(size_t((held + 63) / 64));
        for (uint64_t p0 = 0; p0 < n_; p0 += kChunk) {
            const uint64_t len = std::min(kChunk, n_ - p0);
            if (!held_) raw_(line_params_, p0 / 4, (len + 3) / 4, keys_.data());
            held_ = n_ <= kChunk;
            f(keys_.data(), p0, len);
        }
    }

    RangeFn raw_;
    GatherFn gather_;
    CountBelowFn count_;
    BelowBitsFn below_;
    TieBitsFn tie_bits_;
    KthKeyFn kth_;
    uint64_t z_;
    bool zero_bits_;
    FillParams line_params_;
    uint64_t n_ = 0;            // line length of the cached first probes a0_, b0_
    uint32_t a0_ = 0, b0_ = 0;
    bool held_ = false;
    std::vector<uint8_t> keys_;
    std::vector<uint64_t> scratch_, ties_, index_, tkeys_;  // tkeys_[i]: T of ties_[i]
    alignas(64) uint8_t short_keys_[kLines * 64];
    TieRanker ranker_;
};

// dst[pos[i]] = values[i] for elements of `isz` bytes (typed copies: no memcpy call per element).
template <class T>
void scatter_t(char* dst, const uint64_t* pos, uint64_t n, const uint64_t* values) {
    T* d = reinterpret_cast<T*>(dst);
    const T* v = reinterpret_cast<const T*>(values);
    for (uint64_t i = 0; i < n; ++i) d[pos[i]] = v[i];
}
void scatter(char* dst, const uint64_t* pos, uint64_t n, const uint64_t* values, size_t isz) {
    switch (isz) {
        case 2: scatter_t<uint16_t>(dst, pos, n, values); break;
        case 4: scatter_t<uint32_t>(dst, pos, n, values); break;
        default: scatter_t<uint64_t>(dst, pos, n, values); break;
    }
}

// Puts the low nc bits of `word` at bit `bit` of `run` (the packed bits of a run of rows).
void append_bits(uint64_t* run, uint64_t bit, uint64_t word, uint64_t nc) {
    run[bit / 64] |= word << (bit % 64);
    if (bit % 64 + nc > 64) run[bit / 64 + 1] |= word >> (64 - bit % 64);
}

// One round of a 64 x 64 bit transpose: swaps the off-diagonal J x J blocks of each 2J x 2J
// block. The inner loop runs over contiguous words, which GCC vectorizes (2x the speed of a
// single loop over the pairs).
template <int J>
void transpose_round(uint64_t* __restrict a, uint64_t m) {
    for (int b = 0; b < 64; b += 2 * J) {
        for (int k = b; k < b + J; ++k) {
            const uint64_t t = ((a[k] >> J) ^ a[k + J]) & m;
            a[k] ^= t << J;
            a[k + J] ^= t;
        }
    }
}

// Transposes a 64 x 64 bit matrix in place: afterwards bit k of a[i] is what bit i of a[k] was.
void transpose64(uint64_t* a) {
    transpose_round<32>(a, 0x00000000FFFFFFFFull);
    transpose_round<16>(a, 0x0000FFFF0000FFFFull);
    transpose_round<8>(a, 0x00FF00FF00FF00FFull);
    transpose_round<4>(a, 0x0F0F0F0F0F0F0F0Full);
    transpose_round<2>(a, 0x3333333333333333ull);
    transpose_round<1>(a, 0x5555555555555555ull);
}

// Produces one row segment of the region from its drawn bits.
struct RowWriter {
    const FillParams& params;
    NormalWhereFn normal_where;
    GatherFn gather;
    ZeroFn zero_where;
    size_t isz;
    bool kept_only;  // the drawn bits are the kept elements, and few: generate only those
    uint64_t flip;   // otherwise: turns drawn bits into zero bits
    std::vector<uint64_t> zeros;               // kept-only: the segment's gathered bits
    std::vector<uint64_t> shifted;             // the drawn bits of a segment not starting at a word
    std::vector<uint64_t> packed;              // a run of narrow rows' bits, end to end
    std::vector<uint64_t> index, pos, values;  // kept-only scratch (values: any item size)

    // row[0 .. count) holds elements g0 .. g0+count-1; bit k of words[w * stride] is the drawn
    // bit of element 64 w + k of the segment (stride > 1: the rows of a block-major mask).
    void write(char* row, uint64_t g0, uint64_t count, const uint64_t* words, uint64_t stride = 1) {
        if (!kept_only) return normal_where(params, g0, count, row, words, stride, flip);
        if (stride != 1) {
            zeros.resize(size_t((count + 63) / 64));
            for (size_t w = 0; w < zeros.size(); ++w) zeros[w] = words[w * stride];
            words = zeros.data();
        }
        write_kept(row, g0, count, words);
    }

    void write_kept(char* row, uint64_t g0, uint64_t count, const uint64_t* words) {
        // Kept-only: zero the row, then generate just the kept elements (a gather costs several
        // times an element's share of a range fill). On 4096 x 4096 float32 this is faster
        // than the mask path from about 5% kept (sparsity 0.95) on, hence the 1/20 threshold.
        std::memset(row, 0, count * isz);
        index.resize(size_t(count));
        pos.resize(size_t(count));
        uint64_t m = 0;
        for (uint64_t c = 0; c < count; c += 64) {
            const uint64_t len = std::min<uint64_t>(64, count - c);
            for (uint64_t w = words[c / 64] & (len == 64 ? ~uint64_t{0} : (uint64_t{1} << len) - 1); w; w &= w - 1) {
                const uint64_t k = c + uint64_t(__builtin_ctzll(w));
                pos[size_t(m)] = k;
                index[size_t(m++)] = g0 + k;
            }
        }
        values.resize(size_t(m));
        gather(params, index.data(), m, values.data());
        scatter(row, pos.data(), m, values.data(), isz);
    }
};

// Draws each line's positions with a `Drawer` (Floyd or KeyRank: draw(key, first, count, n,
// sampled, maps)) and writes the region.
template <class Drawer>
bool fill_lines(const KernelTable& table, const Drawer& drawer, const FillParams& params, DType dtype,
                const SparseSpec& sp, void* out, const std::function<bool()>& interrupted) {
    const RangeFn normal = table.lookup(Dist::normal, dtype);
    char* const base = static_cast<char*>(out);
    const size_t isz = dtype_size(dtype);
    const uint64_t n = sp.axis == 0 ? sp.rows : sp.cols;  // positions per line
    const bool kept_only = !sp.sampled_are_zero && 20 * sp.sampled <= n;
    const RowWriter proto{params, table.normal_where[int(dtype)], table.gather_normal[int(dtype)], table.zero_where[int(dtype)],
                          isz, kept_only, sp.sampled_are_zero ? 0 : ~uint64_t{0}, {}, {}, {}, {}, {}, {}};
    // Small regions run on the calling thread: waking the team cost more than the work (a 64 x
    // 64 sparse took 11-20 ms on 2 threads of a loaded machine, 0.1 ms on one). The threshold is
    // the dense fill's chunk, 2**16 elements; the position draws count as one element each.
    const uint64_t lines = sp.axis == 0 ? sp.nc : sp.nr;
    const uint64_t work = sp.nr * sp.nc + lines * sp.sampled;
    const int nt_max = work < (uint64_t{1} << 16) ? 1 : get_num_threads();
    auto team = [nt_max](uint64_t units) { return int(std::min<uint64_t>(uint64_t(nt_max), units)); };
    // Scratch for each thread of a team, allocated once per call rather than per strip or batch
    // of rows. A team member takes the next free slot.
    struct alignas(64) Worker {  // own cache lines: members are written in the hot loops
        Drawer drawer;
        RowWriter writer;
        std::vector<uint64_t> bits;  // row maps (axis 1) or 64 column maps (axis 0)
    };
    std::vector<Worker> workers(size_t(nt_max), Worker{drawer, proto, {}});
    auto claim = [&workers](std::atomic<int>& slot) -> Worker& { return workers[size_t(slot.fetch_add(1))]; };

    if (sp.axis == 1) {
        // Lines are rows: each row draws its own positions, then is written. Whole rows narrower
        // than a word are written in runs, their bits packed end to end (as on axis 0). The
        // calling thread polls for interrupts between batches of about 2^20 elements.
        const bool packed = sp.nc < 64 && sp.nc == sp.cols;
        const uint64_t kLines = uint64_t(Drawer::kLines);
        const uint64_t rows_per_claim = packed ? std::max<uint64_t>(kLines, 8192 / sp.nc / kLines * kLines) : kLines;
        const uint64_t rows_per_poll = std::max<uint64_t>(256, (uint64_t{1} << 20) / sp.nc / rows_per_claim * rows_per_claim);
        for (uint64_t b = 0; b < sp.nr; b += rows_per_poll) {
            if (b > 0 && interrupted && interrupted()) return false;
            const uint64_t rows = std::min(rows_per_poll, sp.nr - b);
            std::atomic<uint64_t> next{0};
            std::atomic<int> slot{0};
            run_parallel(team((rows + rows_per_claim - 1) / rows_per_claim), [&] {
                Worker& me = claim(slot);
                Drawer& scratch = me.drawer;
                RowWriter& writer = me.writer;
                // Each row's n-bit map plus a last word that stays zero (straddling reads).
                const uint64_t stride = (sp.cols + 63) / 64 + 1;
                me.bits.resize(size_t(kLines * stride));
                uint64_t* maps[Drawer::kLines];
                for (int k = 0; k < Drawer::kLines; ++k) maps[k] = me.bits.data() + size_t(k) * stride;
                for (uint64_t r0; (r0 = next.fetch_add(rows_per_claim)) < rows;) {
                    const uint64_t r1 = std::min(rows, r0 + rows_per_claim);
                    std::vector<uint64_t>& run = writer.packed;
                    if (packed) run.assign(size_t(((r1 - r0) * sp.nc + 63) / 64 + 1), 0);
                    for (uint64_t q = r0; q < r1; q += kLines) {
                        const int count = int(std::min(kLines, r1 - q));
                        scratch.draw(params.key, sp.r0 + b + q, count, sp.cols, sp.sampled, maps);
                        for (int k = 0; k < count; ++k) {
                            const uint64_t r = q + uint64_t(k), gr = sp.r0 + b + r;
                            if (packed) {  // bits 0 .. nc-1 of the map
                                append_bits(run.data(), (r - r0) * sp.nc, maps[k][0], sp.nc);
                                continue;
                            }
                            const uint64_t* words = maps[k] + sp.c0 / 64;
                            if (const uint64_t sh = sp.c0 % 64) {  // realign the segment's bits
                                writer.shifted.resize(size_t((sp.nc + 63) / 64));
                                for (uint64_t i = 0; i < writer.shifted.size(); ++i)
                                    writer.shifted[i] = (words[i] >> sh) | (words[i + 1] << (64 - sh));
                                words = writer.shifted.data();
                            }
                            writer.write(base + (b + r) * sp.nc * isz, gr * sp.cols + sp.c0, sp.nc, words);
                        }
                    }
                    if (packed) writer.write(base + (b + r0) * sp.nc * isz, (sp.r0 + b + r0) * sp.cols, (r1 - r0) * sp.nc, run.data());
                }
            });
        }
        return true;
    }

    // Lines are columns, taken in strips of columns. First the strip's columns draw their
    // positions into a bit mask, then the strip's rows are written, each gathering its words.
    // The mask is block-major: mask[(band * wpr + w) * 64 + i], bit k, is column 64 w + k of the
    // strip in row 64 (r0 / 64 + band) + i, so that a 64 x 64 transposed block is one contiguous
    // 512-byte store (storing its words into row-major rows, 64 cache lines apart, made the
    // mask phase cost a tenth of a normal fill). A run of rows reads its band's blocks (32 KiB
    // for 4096 columns) from cache. Strips are up to 4096 columns wide (wider gained nothing
    // measurable), narrower where the mask would exceed max(8 MiB, 1/128 of the output) (inside
    // the memory target's 1% + 16 MiB allowance; its whole bands cover up to 126 rows more than
    // the region): a multiple of 512 columns, or of 64 below 512.
    // When even a 64-column strip's mask would exceed that budget (over a million rows whose
    // output is under about 1 KiB), there is no mask: each row collects its bits from the
    // group's column maps directly, and strips are only as wide as the budget allows those maps
    // (full-height column maps, 64 or fewer).
    const uint64_t mask_bits = 8 * std::max<uint64_t>(uint64_t{8} << 20, sp.nr * sp.nc * isz / 128);
    const bool direct = (sp.nr + 126) * 64 > mask_bits;
    uint64_t strip = std::min<uint64_t>(4096, mask_bits / (sp.nr + 126));
    strip = strip >= 512 ? strip / 512 * 512 : std::max<uint64_t>(64, strip / 64 * 64);
    if (direct) strip = std::clamp<uint64_t>(mask_bits / (sp.rows + 63) / 2, 1, 64);  // half for the drawer's own scratch
    const uint64_t band0 = sp.r0 / 64, bands = (sp.r0 + sp.nr - 1) / 64 - band0 + 1;
    const uint64_t nwords = (sp.rows + 63) / 64;  // words of a column map
    constexpr uint64_t kRowsPerClaim = 16;
    // Every word is written by the mask phase before it is read: no initialization.
    const std::unique_ptr<uint64_t[]> mask(direct ? nullptr : new uint64_t[size_t(bands * ((std::min(strip, sp.nc) + 63) / 64) * 64 + 8)]);
    std::vector<uint64_t> direct_maps(direct ? size_t(std::min(strip, sp.nc) * nwords) : 0);  // every bit is drawn
    uint64_t* const blocks = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(mask.get()) + 63) & ~uintptr_t{63});
    for (uint64_t cs = sp.c0; cs < sp.c0 + sp.nc; cs += strip) {
        if (cs > sp.c0 && interrupted && interrupted()) return false;
        const uint64_t ce = std::min(cs + strip, sp.c0 + sp.nc);
        const uint64_t wpr = (ce - cs + 63) / 64;  // mask words per row
        std::atomic<uint64_t> next{0};
        std::atomic<int> slot{0};
        if (direct) {
            // One group (the strip, at most 64 columns): threads claim its lines four at a time,
            // each drawing into the shared column maps (distinct lines, distinct memory). At most
            // two threads: each drawer keeps scratch for four full-height lines (Floyd's bitmaps:
            // n / 2 bytes), outside the maps' budget.
            const uint64_t lines = ce - cs, batches = (lines + Drawer::kLines - 1) / Drawer::kLines;
            run_parallel(std::min(team(batches), 2), [&] {
                Drawer& scratch = claim(slot).drawer;
                for (uint64_t q; (q = next.fetch_add(1)) < batches;) {
                    const uint64_t c = q * Drawer::kLines;
                    const int count = int(std::min<uint64_t>(Drawer::kLines, lines - c));
                    uint64_t* maps[Drawer::kLines];
                    for (int k = 0; k < count; ++k) maps[k] = direct_maps.data() + (c + uint64_t(k)) * nwords;
                    scratch.draw(params.key, cs + c, count, sp.rows, sp.sampled, maps);
                }
            });
        }
        if (!direct) run_parallel(team(wpr), [&] {
            // A group of up to 64 columns draws into its column maps (n bits each), which
            // 64 x 64 bit transposes turn into the mask's blocks. Each thread writes whole
            // blocks (whole cache lines), so claims can be single groups.
            Worker& me = claim(slot);
            Drawer& scratch = me.drawer;
            std::vector<uint64_t>& colbits = me.bits;
            colbits.resize(size_t(std::min<uint64_t>(64, ce - cs) * nwords));
            for (uint64_t w; (w = next.fetch_add(1)) < wpr;) {
                const uint64_t first = cs + 64 * w, present = std::min(first + 64, ce) - first;
                for (uint64_t c = 0; c < present; c += Drawer::kLines) {
                    const int count = int(std::min<uint64_t>(Drawer::kLines, present - c));
                    uint64_t* maps[Drawer::kLines];
                    for (int k = 0; k < count; ++k) maps[k] = colbits.data() + (c + uint64_t(k)) * nwords;
                    scratch.draw(params.key, first + c, count, sp.rows, sp.sampled, maps);
                }
                const uint64_t* const cols = colbits.data();
                alignas(64) uint64_t block[64];  // transposed in L1, then stored whole
                for (uint64_t band = 0; band < bands; ++band) {
                    for (uint64_t k = 0; k < 64; ++k) block[k] = k < present ? cols[size_t(k * nwords + band0 + band)] : 0;
                    transpose64(block);  // block[i]: the group's columns in row 64 (band0 + band) + i
                    std::memcpy(blocks + (band * wpr + w) * 64, block, sizeof block);
                }
            }
        });
        // Row r's mask word, for strips of at most 64 columns (wpr == 1: packed or direct).
        auto word_of = [&](uint64_t r) {
            const uint64_t row = sp.r0 + r;
            if (!direct) return blocks[(row / 64 - band0) * 64 + row % 64];
            uint64_t word = 0;
            for (uint64_t k = 0; k < ce - cs; ++k) word |= ((direct_maps[size_t(k * nwords + row / 64)] >> (row % 64)) & 1) << k;
            return word;
        };
        // Whole rows narrower than a word: a run of rows is contiguous in the output and in
        // element indices, so it is written by one call on its rows' bits packed end to end
        // (a call per row of a few elements cost 20-60x a normal fill).
        const bool packed = sp.nc < 64 && sp.nc == sp.cols && ce - cs == sp.nc;
        // Whole rows cut into several mask-less strips: the first strip fills runs of whole rows
        // with normal values (one call per run), every strip then zeroes its own bits in place
        // (a pair of calls per row and strip made 4M x 48 float16 take 17-29x a normal fill).
        const bool split = direct && sp.nc == sp.cols && ce - cs < sp.nc;
        const uint64_t rows_per_claim = packed || split ? std::max<uint64_t>(kRowsPerClaim, 8192 / sp.nc) : kRowsPerClaim;
        std::atomic<uint64_t> row_next{0};
        std::atomic<int> row_slot{0};
        // Threads claim runs of rows: with one row per claim the two threads interleaved rows
        // and the fill ran up to 25% slower in some processes.
        run_parallel(team((sp.nr + rows_per_claim - 1) / rows_per_claim), [&] {
            RowWriter& writer = claim(row_slot).writer;
            for (uint64_t r0; (r0 = row_next.fetch_add(rows_per_claim)) < sp.nr;) {
                const uint64_t r1 = std::min(sp.nr, r0 + rows_per_claim);
                if (split) {
                    if (cs == sp.c0) normal(params, (sp.r0 + r0) * sp.cols, (r1 - r0) * sp.nc, base + r0 * sp.nc * isz);
                    for (uint64_t r = r0; r < r1; ++r) {
                        const uint64_t word = word_of(r);
                        writer.zero_where(base + (r * sp.nc + (cs - sp.c0)) * isz, &word, ce - cs, writer.flip);
                    }
                    continue;
                }
                if (packed) {
                    std::vector<uint64_t>& run = writer.packed;
                    run.assign(size_t(((r1 - r0) * sp.nc + 63) / 64 + 1), 0);
                    for (uint64_t r = r0; r < r1; ++r) append_bits(run.data(), (r - r0) * sp.nc, word_of(r), sp.nc);
                    writer.write(base + r0 * sp.nc * isz, (sp.r0 + r0) * sp.cols, (r1 - r0) * sp.nc, run.data());
                    continue;
                }
                for (uint64_t r = r0; r < r1; ++r) {
                    const uint64_t row = sp.r0 + r;
                    char* const dst = base + (r * sp.nc + (cs - sp.c0)) * isz;
                    if (direct) {
                        const uint64_t word = word_of(r);
                        writer.write(dst, row * sp.cols + cs, ce - cs, &word);
                        continue;
                    }
                    const uint64_t* words = blocks + (row / 64 - band0) * wpr * 64 + row % 64;
                    writer.write(dst, row * sp.cols + cs, ce - cs, words, 64);
                }
            }
        });
    }
    return true;
}

}  // namespace

std::vector<uint64_t> rank_ties(const std::vector<uint64_t>& tie_keys, uint64_t need) {
    if (need == 0 || need >= tie_keys.size()) throw std::invalid_argument("need: must be in 1 .. len(tie_keys) - 1");
    std::vector<uint64_t> chosen;
    TieRanker().choose(tie_keys.data(), tie_keys.size(), need, [&chosen](size_t i, uint64_t c) {
        if (c) chosen.push_back(i);
    });
    return chosen;
}

bool sparse_fill(const FillParams& params, DType dtype, const SparseSpec& sp, void* out,
                 const std::function<bool()>& interrupted) {
    const KernelTable& table = dispatch::active();
    if (!table.lookup(Dist::normal, dtype)) throw std::invalid_argument("dtype: not supported by sparse");
    if (sp.nr == 0 || sp.nc == 0) return true;
    if (sp.method == SparseMethod::keys) {
        const uint64_t n = sp.axis == 0 ? sp.rows : sp.cols;
        const KeyRank drawer(table, sp.sampled_are_zero ? sp.sampled : n - sp.sampled, sp.sampled_are_zero);
        return fill_lines(table, drawer, params, dtype, sp, out, interrupted);
    }
    return fill_lines(table, Floyd(table.lookup(Dist::raw, DType::u32), table.gather_raw64), params, dtype, sp, out, interrupted);
}

}  // namespace weightfill
