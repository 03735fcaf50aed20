"""What to read, side by side: window size and passages read against quality and latency, on tuning data only.

    python benchmarks/reader_choices.py

Data: the bundled set's dev split, the DRCD articles `train_reader.py` keeps out of training,
and the even half of CMRC dev (trained on, but the only tuning data whose passages often outrun
one window); never the bundled test split or the odd half of CMRC dev. Each row is one setting
of `reader_max_tokens` × `answer_passages` × `reader_windows`, with the heuristic composer as
the first row. Latency is each question's own time (encode share + retrieval + answer step), p50.
About 25 minutes on 2 cores.
"""

import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_reader import SOURCES, is_validation, questions

from rag.composers import create_composer
from rag.evaluation import load_dataset, read_squad, run_qa
from rag.kb import open_eval_index
from rag.report import benchmark_header, markdown_table

SETTINGS = [
    ("heuristic", None, 3, 1),
    ("reader", 128, 3, 1),
    ("reader", 192, 2, 1),
    ("reader", 192, 3, 1),
    ("reader", 256, 3, 1),
    ("reader", 192, 3, 2),
    ("reader", 192, 3, 3),
]


def drcd_validation():
    data = read_squad(SOURCES["drcd"])
    keep = {r["qid"] for r in questions("drcd") if is_validation(r, "drcd")}
    return data, [it for it in data.items if it.qid in keep]


def main():
    logging.disable(logging.WARNING)
    bundled = load_dataset("qingdao")
    drcd, drcd_items = drcd_validation()
    cmrc = load_dataset("cmrc2018-dev")
    sets = {
        "bundled dev": (
            open_eval_index(bundled.name, bundled.documents),
            bundled.split("dev"),
        ),
        "DRCD validation": (
            open_eval_index(drcd.name, drcd.documents),
            drcd_items,
        ),
        "CMRC dev even (trained on)": (
            open_eval_index(cmrc.name, cmrc.documents),
            cmrc.split("even"),
        ),
    }
    rows = []
    for kind, tokens, passages, windows in SETTINGS:
        row = {"composer": kind, "max_tokens": tokens, "passages": passages, "windows": windows}
        for name, (kb, items) in sets.items():
            config = kb.config.replace(
                composer=kind, answer_passages=passages, reader_max_tokens=tokens, reader_windows=windows
            )
            kb.composer = create_composer(config)
            kb.config = config
            m = run_qa(kb, items, progress=False)["metrics"]
            row.update(
                {
                    f"{name} {k}": m.get(k)
                    for k in (
                        "quote@1",
                        "short_em",
                        "short_f1",
                        "abstention_recall",
                        "false_abstention",
                        "latency_p50_ms",
                    )
                }
            )
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    lines = benchmark_header("Reader choices") + markdown_table(list(rows[0]), [list(r.values()) for r in rows])
    out = ROOT / "eval" / "reports" / f"reader-choices-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
