// The scalar kernels: kernels-inl.hpp instantiated with OpsScalar. CMakeLists.txt gives this file
// (and only this file) its instruction-set flags.
#include "ops_scalar.hpp"
#include "kernels-inl.hpp"

namespace weightfill::kernels {

const KernelTable& scalar_table() {
    static const KernelTable table = make_table<simd::OpsScalar>("scalar");
    return table;
}

}  // namespace weightfill::kernels
