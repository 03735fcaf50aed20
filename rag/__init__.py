"""Chinese-first retrieval-augmented Q&A that quotes its sources word for word.

>>> import rag
>>> a = rag.answer("2024年青岛市进出口总值是多少？")   # doctest: +SKIP
>>> a.short, a.citations[0].quote                       # doctest: +SKIP
"""

from __future__ import annotations

import threading

from .config import ComposerKind, Config, RetrievalMode
from .documents import Document, DocumentError, load_documents
from .kb import IndexMismatchError, KnowledgeBase, check_question, open_or_build
from .paths import bundled_corpus, index_root
from .schema import Answer, Citation, Hit

__all__ = [
    "Answer",
    "Citation",
    "ComposerKind",
    "Config",
    "Document",
    "DocumentError",
    "Hit",
    "IndexMismatchError",
    "KnowledgeBase",
    "RetrievalMode",
    "answer",
    "default_kb",
]

_default: KnowledgeBase | None = None
_lock = threading.Lock()


def default_kb() -> KnowledgeBase:
    """The knowledge base over the bundled corpus: built on first use, rebuilt when stale."""
    global _default
    with _lock:
        if _default is None:
            _default = open_or_build(index_root() / "default", load_documents([bundled_corpus()]))
        return _default


def answer(
    question: str, kb: KnowledgeBase | None = None, mode: str | None = None, history: list[str] | None = None
) -> Answer:
    """Answer a question from `kb` (default: the bundled Qingdao news page).

    `history`: earlier questions of the conversation, so follow-ups are understood.
    """
    check_question(question)
    return (kb or default_kb()).answer(question, mode=mode, history=history)
