#include "sparse.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../simd/dispatch.hpp"
#include "fill.hpp"

namespace weightfill {
namespace {

// Reserved counter range (stream-spec 2 and 3.8): line l's draw d comes from block
// 2^63 + l * 2^31 + d / 2, never reached by element draws (blocks < 2^62).
constexpr uint64_t kSparseBase = uint64_t{1} << 63;
constexpr int kLineShift = 31;

// Membership sets for Floyd's algorithm, one per line in flight. Lines of up to kByteSetMax
// positions use a byte per position holding the generation that chose it (a plain store to add,
// nothing to clear between lines); longer lines use a bitmap (n / 8 bytes) cleared from the picks.
constexpr uint64_t kByteSetMax = uint64_t{1} << 16;
struct ByteSet {
    uint8_t* m;
    uint8_t gen;
    bool has(uint64_t q) const { return m[q] == gen; }
    void add(uint64_t q) const { m[q] = gen; }
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
};

// Per-thread scratch for Floyd's algorithm, run on up to kLines lines at once: each draw
// depends on the one before through the line's set, so interleaving independent lines keeps
// the core busy while one line's chain waits.
class Floyd {
  public:
    static constexpr int kLines = 4;

    // Draws `s` distinct positions of 0 .. n-1 for lines first .. first+count-1 (count <=
    // kLines) and writes line first+k's as an n-bit map to out[k][0 .. (n + 63) / 64).
    void draw(const StreamKey& key, uint64_t first, int count, uint64_t n, uint64_t s, uint64_t* const* out) {
        s_ = s;
        line_.resize(size_t(2 * s));
        words_.resize(size_t(kLines * s));
        picks_.resize(size_t(kLines * s));
        const RangeFn raw = dispatch::active().lookup(Dist::raw, DType::u32);
        for (int k = 0; k < count; ++k) {
            const FillParams p{key, 0.0, 0.0, kSparseBase + ((first + uint64_t(k)) << kLineShift)};
            raw(p, 0, 2 * s, line_.data());
            for (uint64_t d = 0; d < s; ++d)
                words_[size_t(d * kLines + uint64_t(k))] = uint64_t{line_[2 * d]} | (uint64_t{line_[2 * d + 1]} << 32);
        }
        if (n <= kByteSetMax) {
            bytes_.resize(size_t(kLines * n));
            if (++gen_ == 0) {  // the generation wrapped: old stamps would look current
                std::fill(bytes_.begin(), bytes_.end(), uint8_t{0});
                gen_ = 1;
            }
            ByteSet sets[kLines];
            for (int k = 0; k < kLines; ++k) sets[k] = ByteSet{bytes_.data() + size_t(k) * n, gen_};
            run(sets, count, n);
            for (int k = 0; k < count; ++k) stamps_to_bits(sets[k], n, out[k]);
        } else {
            bits_.resize(size_t(kLines * ((n + 63) / 64)));
            BitSet sets[kLines];
            for (int k = 0; k < kLines; ++k) sets[k] = BitSet{bits_.data() + size_t(k) * ((n + 63) / 64)};
            run(sets, count, n);
            for (int k = 0; k < count; ++k) {
                std::memcpy(out[k], sets[k].m, size_t((n + 63) / 64) * sizeof(uint64_t));
                for (uint64_t d = 0; d < s; ++d) sets[k].m[picks_[size_t(d * kLines + uint64_t(k))] >> 6] = 0;
            }
        }
    }

  private:
    template <class Set>
    void run(const Set* sets, int count, uint64_t n) {
        if (count == kLines) return steps<kLines>(sets, 0, n);
        for (int k = 0; k < count; ++k) steps<1>(sets, k, n);
    }

    template <int K, class Set>
    void steps(const Set* sets, int k0, uint64_t n) {
        const uint64_t s = s_;
        for (uint64_t d = 0; d < s; ++d) {
            const uint64_t j = n - s + d;
            for (int k = k0; k < k0 + K; ++k) {
                const uint64_t v = words_[size_t(d * kLines + uint64_t(k))];
                // t uniform in 0 .. j by multiply-shift (bias below (j + 1) / 2^64).
                const uint64_t t = uint64_t((static_cast<unsigned __int128>(v) * (j + 1)) >> 64);
                // j if t is taken, else t. A taken t is unpredictable for large s, and GCC turns
                // this select into a branch unless the mask is opaque to it (3x slower at s = n/2).
                uint64_t taken = 0 - uint64_t(sets[k].has(t));
                asm("" : "+r"(taken));
                const uint64_t pick = t ^ ((t ^ j) & taken);
                sets[k].add(pick);
                picks_[size_t(d * kLines + uint64_t(k))] = pick;
            }
        }
    }

    uint64_t s_ = 0;
    uint8_t gen_ = 0;
    // Line k's draw d at d * kLines + k: the lines' data interleaved, as the steps use it (4-5x
    // faster than one array per line on the EPYC this was measured on).
    std::vector<uint64_t> words_;  // V of stream-spec 3.8 (the draw's two Philox words)
    std::vector<uint64_t> picks_;  // the position chosen (to clear a BitSet)
    std::vector<uint32_t> line_;   // one line's Philox words, in stream order
    std::vector<uint8_t> bytes_;   // ByteSet storage, n bytes per line
    std::vector<uint64_t> bits_;   // BitSet storage, (n + 63) / 64 words per line
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

// Transposes a 64 x 64 bit matrix in place: afterwards bit k of a[i] is what bit i of a[k] was.
// Six rounds of block swaps (32 x 32, then 16 x 16, ... 1 x 1).
void transpose64(uint64_t a[64]) {
    uint64_t m = 0x00000000FFFFFFFFull;
    for (int j = 32; j != 0; j >>= 1, m ^= m << j) {
        for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
            const uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
            a[k] ^= t << j;
            a[k | j] ^= t;
        }
    }
}

// Produces one row segment of the region from its drawn bits.
struct RowWriter {
    const FillParams& params;
    RangeFn normal;
    GatherFn gather;
    ZeroFn zero_where;
    size_t isz;
    bool kept_only;  // the drawn bits are the kept elements, and few: generate only those
    uint64_t flip;   // otherwise: turns drawn bits into zero bits
    std::vector<uint64_t> zeros;               // mask path: the segment's zero bits
    std::vector<uint64_t> index, pos, values;  // kept-only scratch (values: any item size)

    // row[0 .. count) holds elements g0 .. g0+count-1; word(c) gives the drawn bits of
    // elements c .. c+63 of the segment (bit k: element c + k).
    template <class Word>
    void write(char* row, uint64_t g0, uint64_t count, const Word& word) {
        if (!kept_only) {
            zeros.resize(size_t((count + 63) / 64));
            for (uint64_t c = 0; c < count; c += 64) zeros[size_t(c / 64)] = word(c) ^ flip;
            normal(params, g0, count, row);
            zero_where(row, zeros.data(), count);
            return;
        }
        // Generating a single element costs about four times its share of a range fill, so
        // when at most a quarter of the row is kept this is the cheaper way to the same bits.
        std::memset(row, 0, count * isz);
        index.resize(size_t(count));
        pos.resize(size_t(count));
        uint64_t m = 0;
        for (uint64_t c = 0; c < count; c += 64) {
            const uint64_t len = std::min<uint64_t>(64, count - c);
            for (uint64_t w = word(c) & (len == 64 ? ~uint64_t{0} : (uint64_t{1} << len) - 1); w; w &= w - 1) {
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

}  // namespace

bool sparse_fill(const FillParams& params, DType dtype, const SparseSpec& sp, void* out,
                 const std::function<bool()>& interrupted) {
    const KernelTable& table = dispatch::active();
    const RangeFn normal = table.lookup(Dist::normal, dtype);
    if (!normal) throw std::invalid_argument("dtype: not supported by sparse");
    if (sp.nr == 0 || sp.nc == 0) return true;
    char* const base = static_cast<char*>(out);
    const size_t isz = dtype_size(dtype);
    const uint64_t n = sp.axis == 0 ? sp.rows : sp.cols;  // positions per line
    const bool kept_only = !sp.sampled_are_zero && 4 * sp.sampled <= n;
    const RowWriter proto{params, normal, table.gather_normal[int(dtype)], table.zero_where[int(dtype)],
                          isz, kept_only, sp.sampled_are_zero ? 0 : ~uint64_t{0}, {}, {}, {}, {}};
    const int nt_max = get_num_threads();
    auto team = [nt_max](uint64_t units) { return int(std::min<uint64_t>(uint64_t(nt_max), units)); };

    if (sp.axis == 1) {
        // Lines are rows: each row draws its own positions, then is written.
        constexpr uint64_t kRowsPerPoll = 256;
        for (uint64_t b = 0; b < sp.nr; b += kRowsPerPoll) {
            if (b > 0 && interrupted && interrupted()) return false;
            const uint64_t rows = std::min(kRowsPerPoll, sp.nr - b);
            std::atomic<uint64_t> next{0};
            run_parallel(team(rows), [&] {
                Floyd scratch;
                RowWriter writer = proto;
                // Each row's n-bit map plus a last word that stays zero (straddling reads).
                const uint64_t stride = (sp.cols + 63) / 64 + 1;
                std::vector<uint64_t> bits(size_t(Floyd::kLines * stride));
                uint64_t* maps[Floyd::kLines];
                for (int k = 0; k < Floyd::kLines; ++k) maps[k] = bits.data() + size_t(k) * stride;
                for (uint64_t r0; (r0 = next.fetch_add(Floyd::kLines)) < rows;) {
                    const int count = int(std::min<uint64_t>(Floyd::kLines, rows - r0));
                    scratch.draw(params.key, sp.r0 + b + r0, count, sp.cols, sp.sampled, maps);
                    for (int k = 0; k < count; ++k) {
                        const uint64_t r = r0 + uint64_t(k), gr = sp.r0 + b + r;
                        const uint64_t* map = maps[k];
                        writer.write(base + (b + r) * sp.nc * isz, gr * sp.cols + sp.c0, sp.nc, [&](uint64_t c) {
                            const uint64_t g = sp.c0 + c, sh = g & 63;  // 64 bits from column g
                            const uint64_t lo = map[g >> 6] >> sh;
                            return sh ? lo | (map[(g >> 6) + 1] << (64 - sh)) : lo;
                        });
                    }
                }
            });
        }
        return true;
    }

    // Lines are columns, taken in strips of up to kStrip columns. First the strip's columns
    // draw their positions into a row-major mask (one word per row per 64 columns; each group
    // of 64 columns goes to one thread, so no word has two writers); then its rows are written.
    // The mask takes nr * kStrip / 8 bytes at most.
    constexpr uint64_t kStrip = 1024;
    std::vector<uint64_t> mask;
    for (uint64_t cs = sp.c0; cs < sp.c0 + sp.nc; cs += kStrip) {
        if (cs > sp.c0 && interrupted && interrupted()) return false;
        const uint64_t ce = std::min(cs + kStrip, sp.c0 + sp.nc);
        const uint64_t wpr = (ce - cs + 63) / 64;  // mask words per row
        mask.assign(size_t(sp.nr * wpr), 0);
        std::atomic<uint64_t> next{0};
        run_parallel(team(wpr), [&] {
            // A group of 64 columns draws into 64 column bitmaps (n bits each, cache-resident),
            // which 64 x 64 bit transposes turn into the rows' mask words.
            Floyd scratch;
            const uint64_t nwords = (sp.rows + 63) / 64;
            std::vector<uint64_t> colbits(size_t(64 * nwords));
            uint64_t block[64];
            for (uint64_t w; (w = next.fetch_add(1)) < wpr;) {
                const uint64_t first = cs + 64 * w, last = std::min(first + 64, ce);
                if (last - first < 64) std::fill(colbits.begin(), colbits.end(), 0);  // absent columns
                for (uint64_t c = first; c < last; c += Floyd::kLines) {
                    const int count = int(std::min<uint64_t>(Floyd::kLines, last - c));
                    uint64_t* maps[Floyd::kLines];
                    for (int k = 0; k < count; ++k) maps[k] = colbits.data() + (c + uint64_t(k) - first) * nwords;
                    scratch.draw(params.key, c, count, sp.rows, sp.sampled, maps);
                }
                for (uint64_t b = sp.r0 / 64; b * 64 < sp.r0 + sp.nr; ++b) {
                    for (int k = 0; k < 64; ++k) block[k] = colbits[size_t(uint64_t(k) * nwords + b)];
                    transpose64(block);  // block[i]: columns of row 64 b + i
                    for (uint64_t i = 0; i < 64; ++i) {
                        const uint64_t row = 64 * b + i;
                        if (row >= sp.r0 && row < sp.r0 + sp.nr) mask[size_t((row - sp.r0) * wpr + w)] = block[i];
                    }
                }
            }
        });
        std::atomic<uint64_t> row_next{0};
        run_parallel(team(sp.nr), [&] {
            RowWriter writer = proto;
            for (uint64_t r; (r = row_next.fetch_add(1)) < sp.nr;)
                writer.write(base + (r * sp.nc + (cs - sp.c0)) * isz, (sp.r0 + r) * sp.cols + cs, ce - cs,
                             [&](uint64_t c) { return mask[size_t(r * wpr + c / 64)]; });
        });
    }
    return true;
}

}  // namespace weightfill
