"""What the answer step reads — one typed object instead of nine arguments — and the two
`Answer`s it can hand back (a quoted answer, or "not in the documents")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .chunking import Chunk
from .documents import Document
from .keyword_index import ChineseTokenizer
from .reply import render_text
from .schema import Answer, Citation, Hit
from .zh import year_mismatch


@dataclass
class Evidence:
    question: str  # what was searched (a follow-up joined to its topic)
    focus: str  # what the user typed: a follow-up is read as typed
    query_vector: np.ndarray | None
    chunks: list[Chunk]  # the retrieved passages, best first
    sentence_vectors: list[np.ndarray]  # per chunk: one late-chunked vector per sentence
    hits: list[Hit]  # the same passages as returned to callers
    documents: Mapping[str, Document]
    tokenizer: ChineseTokenizer
    idf: Callable[[set[str]], dict[str, float]]  # corpus IDF of query tokens
    timings: dict = field(default_factory=dict)  # seconds spent retrieving (dense, keyword, fusion)

    def text_of(self, doc_id: str) -> str:
        return self.documents[doc_id].text

    def answered(
        self, short: str | None, citations: list[Citation], score: float | None = None, confidence: float | None = None
    ) -> Answer:
        for c in citations:  # where each quote stands in the original file, when its reader knew
            loc = self.documents[c.doc_id].locate(c.start)
            if loc is not None:
                c.page, c.section = loc.page, loc.section
        answer = Answer(
            self.question,
            "",
            short,
            False,
            citations,
            self.hits,
            searched=self.question,
            score=score,
            confidence=confidence,
            year_mismatch=year_mismatch(self.question, "".join(c.quote for c in citations)),
        )
        answer.text = render_text(answer)
        return answer

    def abstain(self, missing: list[str] | None = None, score: float | None = None) -> Answer:
        """The plain "not in the documents" answer, with the closest passages for the reader to check."""
        answer = Answer(
            self.question,
            "",
            None,
            True,
            [],
            self.hits,
            searched=self.question,
            score=score,
            missing=list(missing or []),
        )
        answer.text = render_text(answer)
        return answer
