#include "dispatch.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define WEIGHTFILL_X86 1
#endif

namespace weightfill::dispatch {
namespace {

#ifdef WEIGHTFILL_X86
struct CpuFeatures {
    bool avx2_fma = false;  // AVX2 + FMA + F16C
    bool avx512 = false;  // F + DQ + BW + VL, with the OS saving ZMM state
};

uint64_t xgetbv0() {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (uint64_t{edx} << 32) | eax;
}

CpuFeatures detect() {
    CpuFeatures f;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
    const bool f16c = c & (1u << 29), popcnt = c & (1u << 23);
    if (!(osxsave && avx)) return f;
    const uint64_t xcr0 = xgetbv0();
    const bool ymm_os = (xcr0 & 0x6) == 0x6;     // XMM and YMM state
    const bool zmm_os = (xcr0 & 0xE6) == 0xE6;   // plus opmask, ZMM_Hi256, Hi16_ZMM
    if (__get_cpuid_max(0, nullptr) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5);
    const bool f512 = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    f.avx2_fma = ymm_os && avx2 && fma && f16c && popcnt;  // every such CPU has POPCNT
    f.avx512 = f.avx2_fma && zmm_os && f512 && dq && bw && vl;
    return f;
}
#endif

const KernelTable* table_for(const std::string& name) {
    if (name == "scalar") return &kernels::scalar_table();
#ifdef WEIGHTFILL_X86
    static const CpuFeatures cpu = detect();
    if (name == "avx2" && cpu.avx2_fma) return &kernels::avx2_table();
    if (name == "avx512" && cpu.avx512) return &kernels::avx512_table();
#endif
    return nullptr;
}

std::atomic<const KernelTable*> g_active{nullptr};
std::once_flag g_init;

}  // namespace

std::vector<std::string> available_isas() {
    std::vector<std::string> out;
    for (const char* n : {"scalar", "avx2", "avx512"})
        if (table_for(n)) out.emplace_back(n);
    return out;
}

namespace {
std::string unsupported_message(const std::string& name) {
    if (name != "scalar" && name != "avx2" && name != "avx512")
        return "unknown instruction set '" + name + "' (expected scalar, avx2 or avx512)";
    return "instruction set '" + name + "' is not supported by this CPU";
}
}  // namespace

void force(const std::string& name) {
    const KernelTable* t = table_for(name);
    if (!t) throw std::invalid_argument(unsupported_message(name));
    std::call_once(g_init, [] {});  // a forced choice overrides WEIGHTFILL_ISA from now on
    g_active.store(t);
}

const KernelTable& active() {
    std::call_once(g_init, [] {
        const char* env = std::getenv("WEIGHTFILL_ISA");
        const std::string name = (env && *env) ? env : available_isas().back();
        const KernelTable* t = table_for(name);
        if (!t) throw std::invalid_argument("WEIGHTFILL_ISA: " + unsupported_message(name));
        g_active.store(t);
    });
    return *g_active.load();
}

}  // namespace weightfill::dispatch
