"""The fp32 peak `make bench` assumes: the microarchitecture where the flags would misstate it."""

from __future__ import annotations

import pytest

from benchmarks.hardware import cpu_description

AVX2 = "fpu sse2 avx fma avx2"
AVX512 = AVX2 + " avx512f avx512_bf16"


def cpuinfo(vendor: str, family: int, model: int, flags: str) -> str:
    return (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
            f"model name\t: test cpu\ncpu MHz\t\t: 2000.000\nflags\t\t: {flags}\n")


@pytest.mark.parametrize(("vendor", "family", "model", "flags", "name", "per_cycle"), [
    ("AuthenticAMD", 23, 1, AVX2, "Zen 1", 16),       # EPYC 7001: 256-bit FMAs in two halves
    ("AuthenticAMD", 23, 49, AVX2, "Zen 2", 32),      # EPYC 7002
    ("AuthenticAMD", 25, 1, AVX2, "Zen 3", 32),       # EPYC 7003
    ("AuthenticAMD", 25, 17, AVX512, "Zen 4", 32),    # EPYC 9004: AVX-512 flag, 256-bit pipes
    ("AuthenticAMD", 26, 2, AVX512, "Zen 5", 64),     # EPYC 9005: full 512-bit pipes
    ("GenuineIntel", 6, 85, AVX512, None, 64),        # Skylake-SP: the flags decide
    ("GenuineIntel", 6, 60, "fpu sse2 avx avx2", None, 16),  # AVX2 without FMA
])
def test_peak_follows_the_core_not_only_its_flags(vendor, family, model, flags, name, per_cycle):
    cpu = cpu_description(cpuinfo(vendor, family, model, flags))
    assert cpu["fp32_flop_per_cycle_per_core"] == per_cycle
    assert cpu["microarchitecture"] == name if name else cpu["microarchitecture"].startswith("unknown")
    assert cpu["peak_gflops_fp32"] == pytest.approx(cpu["cores"] * 2.0 * per_cycle)
    assert cpu["peak_assumes"]
