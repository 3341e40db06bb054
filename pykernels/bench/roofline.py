"""Roofline arithmetic: a kernel doing `flops` while moving `bytes` (the
minimal traffic to and from memory) has arithmetic intensity flops/bytes, and
on a machine with compute ceiling P (GFLOP/s) and bandwidth B (GB/s) it can
reach at most min(P, I*B) -- the roof. The ridge I = P/B separates the
bandwidth-bound kernels (left) from the compute-bound ones (right)."""

from __future__ import annotations


def intensity(flops: float, nbytes: float) -> float:
    if nbytes <= 0:
        raise ValueError(f"bytes must be > 0, got {nbytes}")
    return flops / nbytes


def attainable(intensity_: float, peak_gflops: float, bandwidth_gbps: float) -> float:
    """The roof at this intensity, GFLOP/s."""
    return min(peak_gflops, intensity_ * bandwidth_gbps)


def ridge(peak_gflops: float, bandwidth_gbps: float) -> float:
    """Intensity (FLOP/byte) where the bandwidth slope meets the compute ceiling."""
    return peak_gflops / bandwidth_gbps


def bound(intensity_: float, peak_gflops: float, bandwidth_gbps: float) -> str:
    return "memory" if intensity_ < ridge(peak_gflops, bandwidth_gbps) else "compute"
