// The avx2 kernels: kernels-inl.hpp instantiated with OpsAvx2. CMakeLists.txt gives this file
// (and only this file) its instruction-set flags.
#include "ops_avx2.hpp"
#include "kernels-inl.hpp"

namespace weightfill::kernels {

const KernelTable& avx2_table() {
    static const KernelTable table = make_table<simd::OpsAvx2>("avx2");
    return table;
}

}  // namespace weightfill::kernels
