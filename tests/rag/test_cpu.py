from pathlib import Path

import pytest

from rag import cpu, onnx_export
from rag.report import machine

ZEN3 = "fpu sse2 avx f16c avx2 bmi2"
VNNI = "fpu sse2 avx2 avx512f avx512_vnni"


def _cpuinfo(folder: Path, name: str, model: str, flags: str) -> Path:
    path = folder / name
    path.write_text("".join(f"processor\t: {i}\nmodel name\t: {model}\nflags\t\t: {flags}\n\n" for i in range(2)))
    return path


def test_the_cpu_line_names_the_model_and_the_int8_features_it_has(tmp_path: Path):
    assert cpu.describe(_cpuinfo(tmp_path, "a", "Test CPU 9000", VNNI)) == "Test CPU 9000 (avx2, avx512f, avx512_vnni)"
    assert cpu.describe(_cpuinfo(tmp_path, "b", "Old CPU", "fpu sse2")).startswith("Old CPU (none of avx2/")
    assert cpu.describe(tmp_path / "missing")  # the platform's processor name, or "unknown CPU"
    assert "cores" in machine() and "int8 weights" in machine()


def test_int8_saturates_only_on_avx2_without_a_dot_product_instruction(tmp_path: Path):
    assert cpu.int8_saturates(_cpuinfo(tmp_path, "zen3", "AMD EPYC", ZEN3))
    assert not cpu.int8_saturates(_cpuinfo(tmp_path, "vnni", "Xeon", VNNI))
    assert not cpu.int8_saturates(_cpuinfo(tmp_path, "avxvnni", "Core", ZEN3 + " avx_vnni"))
    assert not cpu.int8_saturates(tmp_path / "missing")  # not x86 Linux: nothing known to saturate


def test_the_int8_weight_width_follows_the_cpu_unless_rag_int8_bits_says(monkeypatch):
    monkeypatch.setattr(cpu, "int8_saturates", lambda: True)
    assert onnx_export.seven_bit(per_channel=True) and onnx_export.int8_tag() == "7"
    assert not onnx_export.seven_bit(per_channel=False)  # one scale per matrix cannot spare the bit
    monkeypatch.setenv(onnx_export.INT8_BITS_ENV, "8")
    assert not onnx_export.seven_bit(per_channel=True) and onnx_export.int8_tag() == ""
    monkeypatch.setattr(cpu, "int8_saturates", lambda: False)
    monkeypatch.setenv(onnx_export.INT8_BITS_ENV, "7")
    assert onnx_export.seven_bit(per_channel=True) and not onnx_export.seven_bit(per_channel=False)
    monkeypatch.setenv(onnx_export.INT8_BITS_ENV, "4")
    with pytest.raises(ValueError, match="use 7 or 8"):
        onnx_export.seven_bit(per_channel=True)
