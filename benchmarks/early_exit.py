"""`answer()` time with and without the reader's early exit, alternating question by question.

    .venv/bin/python benchmarks/early_exit.py

Why: the early exit (`Config.reader_early_exit`) reads the best passage's first window alone and
stops when sure; what it saves depends on how many questions stop there, and run-to-run spread
on a shared 2-core machine is as large as the change, so both settings answer every question
in turn in one process (same index, same loaded reader). Timing only: every question of the
bundled set (a throwaway index of `corpus/`) and the first 300 of CMRC dev's even half (its
cached eval index). Prints p50 / p95 per setting.
"""

import dataclasses
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import KnowledgeBase
from rag.evaluation import load_dataset, percentile
from rag.kb import open_eval_index
from rag.reader_composer import ReaderComposer


def compare(kb: KnowledgeBase, questions: list[str], label: str) -> None:
    assert isinstance(kb.composer, ReaderComposer), "the early exit is the reader's"
    reader = kb.composer.reader
    composers = {
        "every window": ReaderComposer(dataclasses.replace(kb.config, reader_early_exit=None), reader),
        f"early exit {kb.config.reader_early_exit}": ReaderComposer(kb.config, reader),
    }
    seconds: dict[str, list[float]] = {name: [] for name in composers}
    kb.answer(questions[0])  # warm
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
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase.build([ROOT / "corpus"], path=Path(tmp) / "page")
        compare(kb, [it.question for it in load_dataset("qingdao").items], "bundled page")
    cmrc = load_dataset("cmrc2018-dev")
    compare(open_eval_index(cmrc.name, cmrc.documents), [it.question for it in cmrc.split("even")[:300]], "CMRC even")


if __name__ == "__main__":
    main()
