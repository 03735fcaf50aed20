"""Answers from the trained reader: the best span is the short answer, its sentence the quote.

The heuristic composer's sentence scores only choose where each passage's window goes
(around its best sentence); the reader reads them in one batch, or first the best passage's
window nearest its focus alone, stopping there when its best span scores at least
`Config.reader_early_exit`; its best span is mapped back to `document[start:end]` through the chunk's
character map, quoted with the whole sentence(s) around it — and the answer check (`answer_check.py`)
decides from the span's score and the evidence whether to give it or abstain.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .answer_check import AnswerCheck, answer_features
from .chunking import Chunk, char_map
from .composer import AnswerComposer
from .config import Config
from .evidence import Evidence
from .keyword_index import ChineseTokenizer
from .reader import FIGURE_SPAN_BARRIERS, SPAN_BARRIERS, SPANS_KEPT, Passage, Reader, Reading, Span
from .reader_export import calibrated_answer_check, reader_exported
from .schema import Answer, Citation
from .zh import NUMERAL, question_type

# spans a 多少/几 question reads, to find the best one that holds a figure (other questions read
# `Reader.read`'s default few: looking further costs ~1 ms a window)
FIGURE_CANDIDATES = 30


def figure_first(spans: list[Span], passages: list[Passage]) -> list[Span]:
    """The spans with the best one that holds a numeral first (a 多少/几 question asks for a figure).

    The reader sometimes scores a name above the figure asked for (「参会者来自几个国家？」 → 张金灿
    over 13个国家). Always answering on tuning data (benchmarks/compare_readers.py, shipped int8):
    bundled dev quote@1 / F1 0.887 / 0.762 → 0.925 / 0.783; DRCD held-out and CMRC dev even unchanged.
    """
    holding = next((s for s in spans if NUMERAL.search(passages[s.passage].text[s.start : s.end])), None)
    if holding is None or holding is spans[0]:
        return spans
    return [holding] + [s for s in spans if s is not holding]


# jieba's part-of-speech tag of the structural particle 的: an answer phrase neither begins nor ends
# on it (「红色的」 for 红色). Always answering on tuning data, trimming it off the best span's edges:
# exact match on DRCD's held-out articles +3 / −0, CMRC dev's even half +8 / −1, bundled dev
# unchanged (目的 and 的确 are words of their own and stay); 地, 得 and 等 lost more than they won
EDGE_PARTICLE_TAGS = frozenset({"uj"})


def edge_particles(text: str, tokenizer: ChineseTokenizer) -> tuple[int, int]:
    """How many characters to drop at the start and at the end of the span `text`: a first or last
    word tagged as the structural particle 的 (`EDGE_PARTICLE_TAGS`), never the whole span."""
    words = tokenizer.tagged(text)
    if len(words) < 2:
        return 0, 0
    head = len(words[0][0]) if words[0][1] in EDGE_PARTICLE_TAGS else 0
    tail = len(words[-1][0]) if words[-1][1] in EDGE_PARTICLE_TAGS else 0
    return (head, tail) if head + tail < len(text) else (0, 0)


# the early exit reads one row first and, when not sure, the whole plan: worth it when one row is at
# most a quarter of the plan, as 23-57% of tuning questions stop after it (a bundled-page question
# reads three one-window passages, and there a first row alone costs more than it saves)
EARLY_EXIT_ROWS = 4


@dataclass
class Finding:
    """The reader's best answer to one question, before the decision to give it."""

    score: float  # the best span's score (start + end − no-answer logit)
    short: str | None  # the span as the document spells it; None: no span could be quoted
    citations: list[Citation]
    features: list[float]  # `answer_check.FEATURES` of the best span


class ReaderComposer:
    """Same `compose` interface as `AnswerComposer`; the reader loads on first use (or pass one in)."""

    def __init__(self, config: Config, reader: Reader | None = None):
        self.config = config
        self.sentences = AnswerComposer(config)
        self._reader = reader
        self._lock = threading.Lock()
        self._loading: Future | None = None
        self._check: AnswerCheck | None = None
        self._check_read = False
        if reader is None and reader_exported(config.reader, config.reader_precision):
            # an exported reader loads while the encoder and jieba do: a new process answers sooner
            # (a first export imports torch, so that one waits for the first question instead)
            pool = ThreadPoolExecutor(1)
            self._loading = pool.submit(Reader.load, config.reader, config.reader_max_tokens, config.reader_precision)
            pool.shutdown(wait=False)  # the thread ends when the load does

    @property
    def reader(self) -> Reader:
        with self._lock:
            if self._reader is None:
                loading, self._loading = self._loading, None
                self._reader = (
                    loading.result()
                    if loading
                    else Reader.load(self.config.reader, self.config.reader_max_tokens, self.config.reader_precision)
                )
            return self._reader

    @property
    def threshold(self) -> float:
        """The config's threshold when set, else the one calibrated with the reader's weights."""
        return self.reader.threshold if self.config.reader_threshold is None else self.config.reader_threshold

    @property
    def answer_check(self) -> AnswerCheck | None:
        """The check fitted with the reader's weights; None when the config sets a threshold of its
        own (the span score then decides alone) or the reader has none (hub readers)."""
        if self.config.reader_threshold is not None:
            return None
        if not self._check_read:  # a race only looks it up twice
            record = calibrated_answer_check(self.reader.info, self.config.reader_precision)
            self._check, self._check_read = AnswerCheck.from_dict(record), True
        return self._check

    def find(self, evidence: Evidence) -> Finding | None:
        """The reader's best answer and the check's features, before deciding whether to give it;
        None when no span can be quoted."""
        chunks = evidence.chunks[: self.config.answer_passages]
        if not chunks:
            return None
        candidates = self.sentences.candidates(evidence)
        best_sentence: dict[int, tuple[int, int]] = {}
        for cand in candidates:
            best_sentence.setdefault(cand.chunk_rank, cand.chunk.sentence_spans[cand.index])
        passages = [Passage(c.text, c.title, best_sentence.get(rank)) for rank, c in enumerate(chunks)]
        reading = self._reading(evidence.focus, passages)
        best = reading.best
        if best is None:
            return None
        citations: list[Citation] = []
        for span in reading.spans:
            if len(citations) >= self.config.max_quotes:
                break
            if citations and span.score < max(self.threshold, best.score - 1.5):
                break
            citation = self._cite(
                span,
                chunks[span.passage],
                evidence.text_of(chunks[span.passage].doc_id),
                len(citations) + 1,
                evidence.tokenizer,
            )
            if citation and not any(c.doc_id == citation.doc_id and c.start == citation.start for c in citations):
                citations.append(citation)
        if not citations:
            return Finding(best.score, None, [], [])
        first = citations[0]
        short = evidence.text_of(first.doc_id)[first.answer_start : first.answer_end]
        sentence = next(
            (
                c
                for c in candidates
                if c.chunk_rank == best.passage
                and c.chunk.sentence_spans[c.index][0] <= best.start < c.chunk.sentence_spans[c.index][1]
            ),
            None,
        )
        read_text = " ".join(c.indexed_text() for c in chunks)
        return Finding(best.score, short, citations, answer_features(evidence, read_text, sentence, short, best.score))

    def compose(self, evidence: Evidence) -> Answer:
        finding = self.find(evidence)
        if finding is None:
            return evidence.abstain()
        score = round(finding.score, 4)
        if finding.short is None:
            return evidence.abstain(score=score)
        check = self.answer_check
        if check is not None:
            logit = check.logit(finding.features)
            if logit < check.threshold:
                return evidence.abstain(score=score)
            confidence: float | None = check.confidence(logit)
        else:
            if finding.score < self.threshold:
                return evidence.abstain(score=score)
            confidence = self.reader.confidence(finding.score)
        return evidence.answered(
            finding.short,
            finding.citations,
            score=score,
            confidence=None if confidence is None else round(confidence, 3),
        )

    def _reading(self, question: str, passages: list[Passage]) -> Reading:
        """The reader's spans: when the plan has `EARLY_EXIT_ROWS` rows or more, its first row
        alone (the best passage's window nearest its focus) if that row's best span scores at
        least `reader_early_exit`; else the whole plan in one batch, as without the exit (the
        first row read again: int8 scores move with a batch's other rows, so the two reads'
        spans are not compared). At 8.0, always answering on tuning data, 56-57% of DRCD's and
        CMRC's questions stop after that row, and EM / F1 stay level (README)."""
        figure = question_type(question) == "quantity"  # a figure: one clause, and a span holding a numeral
        top, barriers = (FIGURE_CANDIDATES, FIGURE_SPAN_BARRIERS) if figure else (SPANS_KEPT, SPAN_BARRIERS)
        plan = self.reader.plan(question, passages, self.config.reader_windows)
        early = self.config.reader_early_exit
        reading = None
        if early is not None and len(plan) >= EARLY_EXIT_ROWS:
            glance = self.reader.read(question, passages, top, barriers=barriers, rows=plan[:1])
            if glance.best is not None and glance.best.score >= early:
                reading = glance
        if reading is None:
            reading = self.reader.read(question, passages, top, barriers=barriers, rows=plan)
        if figure:
            reading.spans = figure_first(reading.spans, passages)
        return reading

    @staticmethod
    def _cite(span: Span, chunk: Chunk, doc: str, n: int, tokenizer: ChineseTokenizer) -> Citation | None:
        """The sentence(s) of `chunk` (a chunk of `doc`) holding the span, as a verbatim citation;
        the answer is the span without edge whitespace or particles (`edge_particles`)."""
        where = char_map(doc, chunk)
        inside = [where[i] for i in range(span.start, min(span.end, len(where))) if where[i] >= 0]
        if not inside:
            return None
        a, b = inside[0], inside[-1] + 1
        while a < b and doc[a].isspace():  # a token such as ▁1 may carry the space before it
            a += 1
        while b > a and doc[b - 1].isspace():
            b -= 1
        if a == b:
            return None
        head, tail = edge_particles(doc[a:b], tokenizer)
        a, b = a + head, b - tail
        covering = [(s, e) for s, e in chunk.sentences if s < b and e > a]
        if not covering:
            return None
        start, end = covering[0][0], covering[-1][1]
        return Citation(
            n,
            chunk.doc_id,
            chunk.title,
            doc[start:end],
            start,
            end,
            round(span.score, 4),
            chunk.chunk_id,
            answer_start=a,
            answer_end=b,
        )
