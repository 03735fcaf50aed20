from pathlib import Path

from rag.report import cpu, machine


def test_the_cpu_line_names_the_model_and_the_int8_features_it_has(tmp_path: Path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n\n"
        "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
    )
    assert cpu(info) == "Test CPU 9000 (avx2, avx512f, avx512_vnni)"
    info.write_text("processor\t: 0\nmodel name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert cpu(info).startswith("Old CPU (none of avx2/")


def test_the_cpu_line_falls_back_when_there_is_no_cpuinfo(tmp_path: Path):
    assert cpu(tmp_path / "missing")  # the platform's processor name, or "unknown CPU"
    assert "cores" in machine()
