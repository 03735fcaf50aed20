from pathlib import Path

from rag import cpu
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
    assert "cores" in machine()


def test_int8_saturates_only_on_avx2_without_a_dot_product_instruction(tmp_path: Path):
    assert cpu.int8_saturates(_cpuinfo(tmp_path, "zen3", "AMD EPYC", ZEN3))
    assert not cpu.int8_saturates(_cpuinfo(tmp_path, "vnni", "Xeon", VNNI))
    assert not cpu.int8_saturates(_cpuinfo(tmp_path, "avxvnni", "Core", ZEN3 + " avx_vnni"))
    assert not cpu.int8_saturates(tmp_path / "missing")  # not x86 Linux: nothing known to saturate
