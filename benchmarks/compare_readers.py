"""Two or more reader exports side by side, always answering, on tuning data only.

    python benchmarks/compare_readers.py ~/.cache/rag/models/reader-<sha16> ~/.cache/rag/models/reader-<sha16>

Why: deciding whether newly trained weights replace the shipped ones needs their short answers
compared with the no-answer threshold out of the way (each export's threshold is calibrated
separately, by `train_reader.py calibrate`). `rag cache` lists the exports in the model cache;
`train_reader.py export` followed by any read (or `calibrate`) makes one for new weights.

Data: answerable questions of the bundled dev split, the DRCD articles `train_reader.py` keeps
out of training, and the even half of CMRC dev (trained on); never the bundled test split or
the odd half of CMRC dev. `--traditional` adds the same DRCD questions asked of DRCD's original
Traditional text (indexed as it is): the product answers Traditional documents too. Prints
quote@1, short EM and short F1 per export and set. About 4 minutes per export on 2 cores, after
the eval indexes are built.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reader_choices import drcd_validation
from train_reader import SOURCES

from rag.config import Config
from rag.evaluation import load_dataset, read_squad, run_qa
from rag.kb import open_eval_index
from rag.reader import Reader
from rag.reader_composer import ReaderComposer
from rag.report import markdown_table


def check_exports(folders: list[Path]) -> None:
    """Stop with the folders that are not reader exports (no tokenizer.json beside the model)."""
    missing = [str(p) for p in folders if not (p / "tokenizer.json").exists()]
    if missing:
        raise SystemExit(f"not a reader export (no tokenizer.json): {', '.join(missing)}; `rag cache` lists them")


def traditional_drcd(simplified_items: list) -> tuple:
    """DRCD at source (Traditional) and its questions whose ids are among `simplified_items`."""
    data = read_squad(SOURCES["drcd"].with_name("DRCD_dev.json"))
    keep = {it.qid for it in simplified_items}
    return data, [it for it in data.items if it.qid in keep]


def tuning_sets(traditional: bool = False) -> dict:
    bundled = load_dataset("qingdao")
    drcd, drcd_items = drcd_validation()
    cmrc = load_dataset("cmrc2018-dev")
    answerable = [it for it in bundled.split("dev") if it.answers]
    sets = {
        "bundled dev": (open_eval_index(bundled.name, bundled.documents), answerable),
        "DRCD validation": (open_eval_index(drcd.name, drcd.documents), drcd_items),
        "CMRC dev even": (open_eval_index(cmrc.name, cmrc.documents), cmrc.split("even")),
    }
    if traditional:
        source, items = traditional_drcd(drcd_items)
        sets["DRCD validation Traditional"] = (open_eval_index(source.name, source.documents), items)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("exports", nargs="+", type=Path, help="reader export folders (model + tokenizer.json)")
    parser.add_argument("--traditional", action="store_true", help="also DRCD's questions on its Traditional text")
    args = parser.parse_args()
    check_exports(args.exports)
    logging.disable(logging.WARNING)
    sets = tuning_sets(args.traditional)
    always = Config(reader_threshold=-1e9)  # no abstention: compare the spans themselves
    rows = []
    for folder in args.exports:
        reader = Reader(folder, always.reader_max_tokens, always.reader_precision)
        row = {"export": folder.name}
        for name, (kb, items) in sets.items():
            kb.composer = ReaderComposer(always, reader)
            m = run_qa(kb, items, progress=False)["metrics"]
            row.update({f"{name} {k}": round(m[k], 3) for k in ("quote@1", "short_em", "short_f1")})
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    print("\n".join(markdown_table(list(rows[0]), [list(r.values()) for r in rows])))


if __name__ == "__main__":
    main()
