// Run-time choice of the SIMD instruction set used by the CPU kernels.
// Kernels are compiled once per ISA in their own translation units; this
// header is the only place that decides which of them runs.
#pragma once

#include <string>

namespace pk {

enum class Isa : int { Generic = 0, Avx2 = 1, Avx512 = 2 };

// Best ISA that both the CPU and the OS (saved register state) support.
Isa detected_isa();

// ISA the kernels use now: detected_isa(), lowered by PYKERNELS_ISA at first
// use, or by set_active_isa().
Isa active_isa();

// Throws std::invalid_argument when `isa` is above detected_isa().
void set_active_isa(Isa isa);

const char* isa_name(Isa isa);

// Parses "generic" | "avx2" | "avx512"; throws std::invalid_argument otherwise.
Isa parse_isa(const std::string& name);

}  // namespace pk
