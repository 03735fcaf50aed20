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
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from export_speed import time_answers

from rag import KnowledgeBase
from rag.evaluation import load_dataset
from rag.kb import open_eval_index
from rag.reader_composer import ReaderComposer


def compare(kb: KnowledgeBase, questions: list[str], label: str) -> None:
    assert isinstance(kb.composer, ReaderComposer), "the early exit is the reader's"
    reader = kb.composer.reader
    composers = {
        "every window": ReaderComposer(dataclasses.replace(kb.config, reader_early_exit=None), reader),
        f"early exit {kb.config.reader_early_exit}": ReaderComposer(kb.config, reader),
    }
    time_answers(kb, composers, questions, label)


def main() -> None:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase.build([ROOT / "corpus"], path=Path(tmp) / "page")
        compare(kb, [it.question for it in load_dataset("qingdao").items], "bundled page")
    cmrc = load_dataset("cmrc2018-dev")
    compare(open_eval_index(cmrc.name, cmrc.documents), [it.question for it in cmrc.split("even")[:300]], "CMRC even")


if __name__ == "__main__":
    main()
