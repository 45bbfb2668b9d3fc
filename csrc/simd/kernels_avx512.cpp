// The avx512 kernels: kernels-inl.hpp instantiated with OpsAvx512. CMakeLists.txt gives this file
// (and only this file) its instruction-set flags.
#include "ops_avx512.hpp"
#include "kernels-inl.hpp"

namespace weightfill::kernels {

const KernelTable& avx512_table() {
    static const KernelTable table = make_table<simd::OpsAvx512>("avx512");
    return table;
}

}  // namespace weightfill::kernels
