// Run-time choice of the kernel table: the best instruction set the CPU and OS support, or the
// one forced by WEIGHTFILL_ISA=scalar|avx2|avx512 (an error if the CPU lacks it).
#pragma once
#include <string>
#include <vector>

#include "../engine.hpp"

namespace weightfill::dispatch {

// Instruction sets this CPU can run, best last; "scalar" is always there.
std::vector<std::string> available_isas();

// The table in use. The first call reads WEIGHTFILL_ISA (throws std::invalid_argument for an
// unknown or unsupported value).
const KernelTable& active();

// Switches the table in use (tests and bug reports); throws std::invalid_argument if `name` is
// unknown or unsupported here.
void force(const std::string& name);

}  // namespace weightfill::dispatch
