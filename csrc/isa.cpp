// CPU feature detection with cpuid/xgetbv: an ISA counts only when the CPU
// has it and the OS saves its registers on context switch (XCR0 bits).
#include "pykernels/isa.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define PK_X86 1
#endif

namespace pk {
namespace {

#ifdef PK_X86
unsigned long long read_xcr0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

Isa probe_isa() {
  unsigned int eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return Isa::Generic;
  const bool has_osxsave = ecx & (1u << 27);
  const bool has_avx = ecx & (1u << 28);
  const bool has_fma = ecx & (1u << 12);
  if (!has_osxsave || !has_avx) return Isa::Generic;
  const unsigned long long xcr0 = read_xcr0();
  const bool os_saves_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_saves_zmm = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return Isa::Generic;
  const bool has_avx2 = ebx & (1u << 5);
  const bool has_avx512f = ebx & (1u << 16);
  if (has_avx512f && has_fma && os_saves_zmm) return Isa::Avx512;
  if (has_avx2 && has_fma && os_saves_ymm) return Isa::Avx2;
  return Isa::Generic;
}
#else
Isa probe_isa() { return Isa::Generic; }
#endif

Isa lowered_by_env(Isa detected) {
  const char* forced = std::getenv("PYKERNELS_ISA");
  if (forced == nullptr || *forced == '\0') return detected;
  Isa wanted;
  try {
    wanted = parse_isa(forced);
  } catch (const std::invalid_argument&) {
    return detected;  // an unknown name must not stop the library loading
  }
  return static_cast<int>(wanted) < static_cast<int>(detected) ? wanted : detected;
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot{static_cast<int>(lowered_by_env(detected_isa()))};
  return slot;
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = probe_isa();
  return isa;
}

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
    throw std::invalid_argument(std::string("isa '") + isa_name(isa) +
                                "' is not supported by this CPU (best: '" +
                                isa_name(detected_isa()) + "')");
  }
  active_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

Isa parse_isa(const std::string& name) {
  if (name == "generic") return Isa::Generic;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  throw std::invalid_argument("unknown isa '" + name + "': expected generic, avx2 or avx512");
}

}  // namespace pk
