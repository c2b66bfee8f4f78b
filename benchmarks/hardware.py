"""What the benchmark ran on: the CPU, its theoretical fp32 peak, and how busy the machine was."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# fp32 FLOP per cycle per core: two FMA pipes x vector lanes x 2 (a fused multiply-add is 2 FLOP).
FLOP_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("avx", 16), ("sse2", 8))


def cpuinfo_fields(text: str | None = None) -> dict[str, str]:
    """The first processor's ``key: value`` fields of /proc/cpuinfo (empty where there is none)."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# AMD cores by (family, first model, last model): their name and fp32 FLOP per cycle. Zen 1 splits each
# 256-bit FMA into two 128-bit halves (2 pipes x 4 lanes x 2); Zen 2 and 3 have two full 256-bit
# pipes; Zen 4 runs AVX-512 as two 256-bit halves, so its peak is Zen 3's, not the AVX-512 flag's;
# server Zen 5 (EPYC 9005) has full 512-bit FMA pipes.
AMD_CORES = (
    (0x17, 0x00, 0x2F, "Zen 1", 16, "two 128-bit FMA pipes: a 256-bit FMA takes two"),
    (0x17, 0x30, 0xFF, "Zen 2", 32, "two 256-bit FMA pipes"),
    (0x19, 0x10, 0x1F, "Zen 4", 32, "two 256-bit FMA pipes: AVX-512 runs as two 256-bit halves"),
    (0x19, 0x60, 0xAF, "Zen 4", 32, "two 256-bit FMA pipes: AVX-512 runs as two 256-bit halves"),
    (0x19, 0x00, 0xFF, "Zen 3", 32, "two 256-bit FMA pipes"),
    (0x1A, 0x00, 0x1F, "Zen 5", 64, "two 512-bit FMA pipes"),
)


def microarchitecture(fields: dict[str, str]) -> tuple[str, int, str] | None:
    """(name, fp32 FLOP per cycle per core, why) for the AMD cores whose peak the flags misstate."""
    if fields.get("vendor_id") != "AuthenticAMD":
        return None
    try:
        family, model = int(fields.get("cpu family", "")), int(fields.get("model", ""))
    except ValueError:
        return None
    for core_family, first, last, name, flops, why in AMD_CORES:
        if family == core_family and first <= model <= last:
            return name, flops, why
    return None


def flop_per_cycle(flags: set[str]) -> int:
    """From the SIMD flags alone: two FMA pipes of the widest vector. AVX2 without FMA issues separate
    multiplies and adds: half the FMA rate."""
    for flag, flops in FLOP_PER_CYCLE:
        if flag in flags:
            if flag == "avx2" and "fma" not in flags:
                return flops // 2
            return flops
    return 4


def cpu_description(text: str | None = None) -> dict:
    """Model, cores, clock, SIMD flags and fp32 peak GFLOP/s (cores x GHz x FLOP/cycle)."""
    fields = cpuinfo_fields(text)
    flags = set(fields.get("flags", "").split())
    cores = usable_cores()
    mhz = float(fields.get("cpu MHz", "0") or 0)
    core = microarchitecture(fields)
    per_cycle = core[1] if core else flop_per_cycle(flags)
    simd = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "avx2", "fma", "f16c") if f in flags]
    return {
        "model": fields.get("model name", platform.processor() or platform.machine()),
        "microarchitecture": core[0] if core else "unknown (peak from the SIMD flags)",
        "peak_assumes": core[2] if core else f"two FMA pipes of the widest vector in {sorted(simd)}",
        "cores": cores,
        "ghz": round(mhz / 1000, 3),
        "simd_flags": simd,
        "fp32_flop_per_cycle_per_core": per_cycle,
        "peak_gflops_fp32": round(cores * mhz / 1000 * per_cycle, 1),
        "native_bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
    }


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return [0.0, 0.0, 0.0]
