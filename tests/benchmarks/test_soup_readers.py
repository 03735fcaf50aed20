"""The weight soup script (benchmarks/soup_readers.py): tiny weight files, no model needed."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from rag.paths import file_sha256

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soup_readers.py"


def _reader(folder: Path, value: float, split: bool = False) -> Path:
    folder.mkdir()
    save_file({"head.weight": np.full((2, 3), value, np.float16)}, str(folder / "reader.safetensors"))
    info = {"model": "m", "base": "b", "max_tokens": 192, "seed": int(value), "steps": 10}
    if split:
        info["split_punctuation"] = True
    info["sha256"] = file_sha256(folder / "reader.safetensors")
    (folder / "reader.json").write_text(json.dumps(info), "utf-8")
    return folder


def _soup(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_soup_is_the_mean_with_its_hash_and_each_ingredient_recorded(tmp_path):
    a, b, out = _reader(tmp_path / "a", 1.0), _reader(tmp_path / "b", 2.0), tmp_path / "out"
    out.mkdir()
    (out / "reader.json").write_text(json.dumps({"sha256": "other weights", "threshold": -3.0, "tried": {"x": 1}}))
    run = _soup(a, b, "--out", out)
    assert run.returncode == 0, run.stderr
    assert np.allclose(load_file(str(out / "reader.safetensors"))["head.weight"], 1.5)
    info = json.loads((out / "reader.json").read_text("utf-8"))
    assert info["sha256"] == file_sha256(out / "reader.safetensors") and info["threshold"] == 0.0
    assert [r["seed"] for r in info["soup_of"].values()] == [1, 2]
    assert info["tried"] == {"x": 1}  # the history stays; another file's threshold does not


def test_soup_refuses_a_damaged_ingredient_or_another_tokenisation(tmp_path):
    a, b = _reader(tmp_path / "a", 1.0), _reader(tmp_path / "b", 2.0)
    save_file({"head.weight": np.zeros((2, 3), np.float16)}, str(b / "reader.safetensors"))
    run = _soup(a, b, "--out", tmp_path / "out")
    assert run.returncode != 0 and "does not match the hash" in run.stderr
    c = _reader(tmp_path / "c", 3.0, split=True)
    run = _soup(a, c, "--out", tmp_path / "out")
    assert run.returncode != 0 and "tokenise differently" in run.stderr
