"""Average finished readers' weights into one reader (a uniform weight soup, one model's cost).

    python benchmarks/soup_readers.py rag/weights/reader data/reader-candidates/aac6391b
    python benchmarks/train_reader.py calibrate   # then calibrate: int8, --precision fp32, RAG_INT8_BITS=7
    git checkout rag/weights/reader/              # back to the shipped weights

Why: runs that start from the same e5-small layers and differ in data or seed average into one
model (Wortsman et al. 2022). `train_reader.py --soup-seeds` averages checkpoints of one setting;
this averages exported weight files, so runs of different settings (each with its own work folder)
can be mixed: the default run finds spans less well and the reworded-questions run
(`--synonym-positives`) turns away fewer unanswerable questions, and their mean was judged
(README, "The soup of the two runs"). Writes `--out` (default: the shipped reader's folder, read
before it is written), keeping each ingredient's provenance under `soup_of` in reader.json.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_reader import carry_over

from rag.paths import file_sha256

TARGET = ROOT / "rag" / "weights" / "reader"
RECORD_KEYS = ("trained", "data", "max_tokens", "epochs", "batch", "lr", "seed", "steps", "trained_on", "machine")


def soup(folders: list[Path]) -> dict[str, np.ndarray]:
    """The tensor-wise mean of the folders' reader.safetensors (fp32 sums, stored back in each
    tensor's own dtype)."""
    from safetensors.numpy import load_file

    states = [load_file(str(f / "reader.safetensors")) for f in folders]
    if any(s.keys() != states[0].keys() for s in states):
        raise SystemExit("the readers hold different tensors; only runs of the same layers and head can be averaged")
    first = states[0]
    return {k: np.mean([s[k].astype(np.float32) for s in states], axis=0).astype(first[k].dtype) for k in first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="finished readers: reader.safetensors + reader.json")
    parser.add_argument("--out", type=Path, default=TARGET, help="where the soup goes (default: the shipped reader)")
    args = parser.parse_args()
    out = args.out
    if len(args.folders) < 2:
        raise SystemExit("name two or more reader folders to average")
    infos = []
    for folder in args.folders:
        info_file = folder / "reader.json"
        if not info_file.exists() or not (folder / "reader.safetensors").exists():
            raise SystemExit(f"{folder}: no reader.safetensors + reader.json (`train_reader.py export` writes them)")
        info = json.loads(info_file.read_text("utf-8"))
        if info.get("sha256") != file_sha256(folder / "reader.safetensors"):
            raise SystemExit(f"{folder}: reader.safetensors does not match the hash in its reader.json")
        infos.append(info)
    if any(i.get("split_punctuation") != infos[0].get("split_punctuation") for i in infos):
        raise SystemExit("the readers tokenise differently (split_punctuation); they cannot be averaged")
    from safetensors.numpy import save_file

    averaged = soup(args.folders)  # read before writing: a folder may be the target itself
    out.mkdir(parents=True, exist_ok=True)
    kept = json.loads((out / "reader.json").read_text("utf-8")) if (out / "reader.json").exists() else {}
    save_file(averaged, str(out / "reader.safetensors"))
    record = {
        "model": infos[0]["model"],
        "base": infos[0]["base"],
        "trained": "the mean of the trained layers and head of the runs under soup_of (a uniform weight soup)",
        "max_tokens": infos[0]["max_tokens"],
        **({"split_punctuation": True} if infos[0].get("split_punctuation") else {}),
        "soup_of": {i["sha256"][:16]: {k: i[k] for k in RECORD_KEYS if k in i} for i in infos},
        "threshold": 0.0,  # `train_reader.py calibrate` picks it (kept below when the weights are the same)
        "sha256": file_sha256(out / "reader.safetensors"),
        "bytes": (out / "reader.safetensors").stat().st_size,
    }
    carry_over(kept, record)
    (out / "reader.json").write_text(json.dumps(record, ensure_ascii=False, indent=2), "utf-8")
    print(f"wrote {out / 'reader.safetensors'} (sha256 {record['sha256'][:12]}); now run train_reader.py calibrate")


if __name__ == "__main__":
    main()
