"""What the CPU offers for int8 inference, read once from Linux's /proc/cpuinfo.

Why it matters: ONNX Runtime's int8 matrix products on an x86 CPU with AVX2 but no VNNI (or AMX)
sum pairs of u8×s8 products in 16 bits, which saturates with full 8-bit weights. On a 2-core AMD
EPYC (Zen 3, AVX2 only) the shipped reader exported with 8-bit weights fell from quote@1 0.830 /
F1 0.678 to 0.774 / 0.617 on the bundled dev split; 7-bit weights (`reduce_range`, as ONNX
Runtime's quantisation guide advises for such CPUs) read 0.811 / 0.682 at the same speed.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

INT8_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
_DOT_PRODUCT = {"avx512_vnni", "avx_vnni", "amx_int8"}  # int8 dot products into 32 bits: no saturation


def _field(lines: list[str], name: str) -> str:
    # every core reports the same model and flags: the first will do
    return next((line.partition(":")[2].strip() for line in lines if line.split(":")[0].strip() == name), "")


@functools.cache
def _read(cpuinfo: Path) -> tuple[str, frozenset[str]]:
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return platform.processor() or "unknown CPU", frozenset()
    return _field(lines, "model name") or "unknown CPU", frozenset(_field(lines, "flags").split())


def describe(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU model and which of `INT8_FEATURES` it has, for benchmark and eval reports."""
    model, flags = _read(cpuinfo)
    features = [f for f in INT8_FEATURES if f in flags]
    return f"{model} ({', '.join(features) or 'none of ' + '/'.join(INT8_FEATURES)})"


def int8_saturates(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on an x86 CPU whose int8 products go through AVX2's 16-bit pair sums (see the module docstring)."""
    _, flags = _read(cpuinfo)
    return "avx2" in flags and not flags & _DOT_PRODUCT
