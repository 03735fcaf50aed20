"""The wheel `pip install .` builds holds the whole library: every module, the weights and the bundled data.

A subpackage missing from `[tool.setuptools] packages` is silently left out of the wheel while the
editable install (and so every other test) still finds it: `rag.formats` was, and PDF, Word and
HTML uploads failed only for users who installed the package.
"""

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_the_wheel_holds_every_module_and_data_file(tmp_path):
    # built from a copy: setuptools reuses what an earlier build left in `build/`, which would hide a gap
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "index", "data", "reports", "tests")
    shutil.copytree(ROOT, source, ignore=skip)
    command = [sys.executable, "-m", "pip", "wheel", "-q", str(source), "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    weights = ROOT / "rag" / "weights"
    expected = {f"rag/{p.relative_to(ROOT / 'rag')}" for p in (ROOT / "rag").rglob("*.py")}
    expected |= {f"rag/ui/{p.name}" for p in (ROOT / "ui").glob("*.py")}
    expected |= {f"rag/weights/{p.relative_to(weights)}" for p in weights.rglob("*.*")}
    expected |= {f"rag/corpus/{p.name}" for p in (ROOT / "corpus").glob("*.txt")}
    expected |= {"rag/eval_sets/qingdao_qa.jsonl"}
    assert "rag/formats/pdf.py" in expected and "rag/weights/reader/reader.safetensors" in expected
    assert sorted(expected - names) == []
