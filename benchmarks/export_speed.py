"""`answer()` time with two or more reader exports, alternating question by question.

    .venv/bin/python benchmarks/export_speed.py ~/.cache/rag/models/reader-<sha16>-... ~/.cache/rag/models/reader-...

Why: `compare_readers.py` says how well each export reads; this says how fast, through the whole
answer step with the shipped settings. Run-to-run spread on a shared 2-core machine is as large
as the differences measured, so every export answers every question in turn in one process (same
index). Timing only: every question of the bundled set (a throwaway index of `corpus/`) and the
first 300 of CMRC dev's even half (its cached eval index). Prints p50 / p95 per export.
"""

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_readers import check_exports

from rag import KnowledgeBase
from rag.evaluation import load_dataset, percentile
from rag.kb import open_eval_index
from rag.reader import Reader
from rag.reader_composer import ReaderComposer


def time_answers(kb: KnowledgeBase, composers: dict[str, ReaderComposer], questions: list[str], label: str) -> None:
    """Each composer answers each question in turn on `kb`; prints p50 / p95 per composer."""
    seconds: dict[str, list[float]] = {name: [] for name in composers}
    for composer in composers.values():  # warm each session
        kb.composer = composer
        kb.answer(questions[0])
    for question in questions:
        for name, composer in composers.items():
            kb.composer = composer
            t = time.perf_counter()
            kb.answer(question)
            seconds[name].append(time.perf_counter() - t)
    for name, times in seconds.items():
        p50, p95 = 1000 * statistics.median(times), 1000 * percentile(times, 0.95)
        print(f"{label}, {name}: p50 {p50:.0f} ms, p95 {p95:.0f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("exports", nargs="+", type=Path, help="reader export folders (model + tokenizer.json)")
    args = parser.parse_args()
    check_exports(args.exports)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase.build([ROOT / "corpus"], path=Path(tmp) / "page")
        config = kb.config
        composers = {
            p.name: ReaderComposer(config, Reader(p, config.reader_max_tokens, config.reader_precision))
            for p in args.exports
        }
        time_answers(kb, composers, [it.question for it in load_dataset("qingdao").items], "bundled page")
    cmrc = load_dataset("cmrc2018-dev")
    questions = [it.question for it in cmrc.split("even")[:300]]
    time_answers(open_eval_index(cmrc.name, cmrc.documents), composers, questions, "CMRC even")


if __name__ == "__main__":
    main()
