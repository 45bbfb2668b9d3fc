#include "sparse.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "../simd/dispatch.hpp"
#include "fill.hpp"

namespace weightfill {
namespace {

// Reserved counter range (stream-spec 2 and 3.8): line l's draw d comes from block
// 2^63 + l * 2^31 + d / 2, never reached by element draws (blocks < 2^62).
constexpr uint64_t kSparseBase = uint64_t{1} << 63;
constexpr int kLineShift = 31;

// Per-thread scratch for Floyd's algorithm, run on up to kLines lines at once: each draw
// depends on the one before through the line's bitmap, so interleaving independent lines keeps
// the core busy while one line's chain waits.
struct Floyd {
    static constexpr int kLines = 4;
    std::vector<uint32_t> words[kLines];   // the 2 s Philox words of each line's draws
    std::vector<uint64_t> member[kLines];  // n bits: positions chosen so far (cleared after use)
    std::vector<uint64_t> picks[kLines];   // the positions chosen, in order

    // Draws `s` distinct positions of 0 .. n-1 for lines first .. first+count-1 (count <=
    // kLines) into picks[0 .. count).
    void draw(const StreamKey& key, uint64_t first, int count, uint64_t n, uint64_t s) {
        for (int k = 0; k < count; ++k) {
            picks[k].resize(size_t(s));
            member[k].resize(size_t((n + 63) / 64));
            words[k].resize(size_t(2 * s));
            const FillParams p{key, 0.0, 0.0, kSparseBase + ((first + uint64_t(k)) << kLineShift)};
            dispatch::active().lookup(Dist::raw, DType::u32)(p, 0, 2 * s, words[k].data());
        }
        if (count == kLines) {
            steps<kLines>(0, n, s);
        } else {
            for (int k = 0; k < count; ++k) steps<1>(k, n, s);
        }
        for (int k = 0; k < count; ++k)
            for (uint64_t q : picks[k]) member[k][q >> 6] = 0;
    }

  private:
    template <int K>
    void steps(int k0, uint64_t n, uint64_t s) {
        for (uint64_t d = 0; d < s; ++d) {
            const uint64_t j = n - s + d;
            for (int k = k0; k < k0 + K; ++k) {
                const uint64_t v = uint64_t{words[k][2 * d]} | (uint64_t{words[k][2 * d + 1]} << 32);
                // t uniform in 0 .. j by multiply-shift (bias below (j + 1) / 2^64).
                const uint64_t t = uint64_t((static_cast<unsigned __int128>(v) * (j + 1)) >> 64);
                // j if t is taken, else t; branch-free, as a taken t is unpredictable for large s.
                const uint64_t hit = (member[k][t >> 6] >> (t & 63)) & 1;
                const uint64_t pick = t ^ ((t ^ j) & (0 - hit));
                member[k][pick >> 6] |= uint64_t{1} << (pick & 63);
                picks[k][size_t(d)] = pick;
            }
        }
    }
};

// Zeroes the elements of run[0 .. count) whose bit is set in `z` (bit k for element k);
// floating-point zero is all-zero bits in every output format.
template <class T>
void zero_bits_t(char* run, uint64_t z, uint64_t count) {
    const uint64_t all = count == 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
    z &= all;
    if (z == all) {
        std::memset(run, 0, count * sizeof(T));
        return;
    }
    const T zero = 0;
    for (; z; z &= z - 1) std::memcpy(run + size_t(__builtin_ctzll(z)) * sizeof(T), &zero, sizeof(T));
}

void zero_bits(char* run, uint64_t z, uint64_t count, size_t isz) {
    switch (isz) {
        case 2: zero_bits_t<uint16_t>(run, z, count); break;
        case 4: zero_bits_t<uint32_t>(run, z, count); break;
        default: zero_bits_t<uint64_t>(run, z, count); break;
    }
}

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
    size_t isz;
    bool kept_only;  // the drawn bits are the kept elements, and few: generate only those
    uint64_t flip;   // otherwise: turns drawn bits into zero bits
    std::vector<uint64_t> index, pos, values;  // kept-only scratch (values: any item size)

    // row[0 .. count) holds elements g0 .. g0+count-1; word(c) gives the drawn bits of
    // elements c .. c+63 of the segment (bit k: element c + k).
    template <class Word>
    void write(char* row, uint64_t g0, uint64_t count, const Word& word) {
        if (!kept_only) {
            normal(params, g0, count, row);
            for (uint64_t c = 0; c < count; c += 64)
                zero_bits(row + c * isz, word(c) ^ flip, std::min<uint64_t>(64, count - c), isz);
            return;
        }
        // Generating a single element costs about four times its share of a range fill, so
        // when at most a quarter of the row is kept this is the cheaper way to the same bits.
        std::memset(row, 0, count * isz);
        index.clear();
        pos.clear();
        for (uint64_t c = 0; c < count; c += 64) {
            const uint64_t len = std::min<uint64_t>(64, count - c);
            for (uint64_t w = word(c) & (len == 64 ? ~uint64_t{0} : (uint64_t{1} << len) - 1); w; w &= w - 1) {
                const uint64_t k = c + uint64_t(__builtin_ctzll(w));
                pos.push_back(k);
                index.push_back(g0 + k);
            }
        }
        values.resize(index.size());
        gather(params, index.data(), index.size(), values.data());
        scatter(row, pos.data(), pos.size(), values.data(), isz);
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
    const RowWriter proto{params, normal, table.gather_normal[int(dtype)], isz, kept_only,
                          sp.sampled_are_zero ? 0 : ~uint64_t{0}, {}, {}, {}};
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
                std::vector<uint64_t> bits(size_t((sp.cols + 63) / 64 + 1));  // +1: straddling reads
                for (uint64_t r0; (r0 = next.fetch_add(Floyd::kLines)) < rows;) {
                    const int count = int(std::min<uint64_t>(Floyd::kLines, rows - r0));
                    scratch.draw(params.key, sp.r0 + b + r0, count, sp.cols, sp.sampled);
                    for (int k = 0; k < count; ++k) {
                        const uint64_t r = r0 + uint64_t(k), gr = sp.r0 + b + r;
                        for (uint64_t q : scratch.picks[k]) bits[q >> 6] |= uint64_t{1} << (q & 63);
                        writer.write(base + (b + r) * sp.nc * isz, gr * sp.cols + sp.c0, sp.nc, [&](uint64_t c) {
                            const uint64_t g = sp.c0 + c, sh = g & 63;  // 64 bits from column g
                            const uint64_t lo = bits[g >> 6] >> sh;
                            return sh ? lo | (bits[(g >> 6) + 1] << (64 - sh)) : lo;
                        });
                        for (uint64_t q : scratch.picks[k]) bits[q >> 6] = 0;
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
                std::fill(colbits.begin(), colbits.end(), 0);
                for (uint64_t c = first; c < last; c += Floyd::kLines) {
                    const int count = int(std::min<uint64_t>(Floyd::kLines, last - c));
                    scratch.draw(params.key, c, count, sp.rows, sp.sampled);
                    for (int k = 0; k < count; ++k) {
                        uint64_t* bits = colbits.data() + (c + uint64_t(k) - first) * nwords;
                        for (uint64_t q : scratch.picks[k]) bits[q >> 6] |= uint64_t{1} << (q & 63);
                    }
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
