"""What the pipeline hands back: ranked hits, citations and answers (all JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Hit:
    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    dense_score: float | None = None
    keyword_score: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Citation:
    n: int
    doc_id: str
    title: str
    quote: str  # exactly document[start:end]
    start: int
    end: int
    score: float
    chunk_id: str = ""
    answer_start: int | None = None  # the short answer inside the quote: document[answer_start:answer_end]
    answer_end: int | None = None
    page: int | None = None  # where the quote stands in the original file: its PDF page,
    section: str = ""  # or its heading path in a Word file or web page

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Answer:
    question: str
    text: str
    short: str | None
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)  # closest passages (shown when abstaining)
    timings: dict = field(default_factory=dict)
    searched: str = ""  # the question actually searched (a follow-up joined to its topic)
    score: float | None = None  # reader: how far the best span beats "no answer" (set when abstaining too)
    missing: list[str] = field(default_factory=list)  # names/years the question gives and the documents lack
    # reader: the calibrated chance (0-1) that the short answer is right; None when nothing calibrated it
    confidence: float | None = None
    # (years the question names, years the quotes name) when the quotes name none of the question's:
    # a caution shown with the answer (`zh.year_mismatch`), never a reason to abstain
    year_mismatch: tuple[list[str], list[str]] | None = None

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "searched": self.searched or self.question,
            "text": self.text,
            "short": self.short,
            "abstained": self.abstained,
            "missing": self.missing,
            "score": self.score,
            "confidence": self.confidence,
            "year_mismatch": (
                {"asked": self.year_mismatch[0], "quoted": self.year_mismatch[1]} if self.year_mismatch else None
            ),
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "timings": self.timings,
        }
