"""Reader: a span-extraction model that finds the answer in passages, or says there is none.

Question and passage go in as one pair (`<s> question </s></s> title⏎passage </s>` for the
default model, each model's own pair template for others); the model scores every passage
token as the start and the end of the answer, and the first token (`<s>` / `[CLS]`) as
"no answer", as SQuAD 2.0 readers do. A span's score is its start + end logit minus the
no-answer logit of its window, so one threshold decides whether to answer.

Long passages are read through windows placed around a focus span (the sentence the
retriever's scores liked best), so the cost stays one short forward pass per window.

Runs on ONNX Runtime with `tokenizers`: no torch on the query path. The model folder is
assembled and exported once by `rag.reader_export`.

>>> reader = Reader.load()                                             # doctest: +SKIP
>>> text = "2024年青岛进出口总值9076.7亿元。"
>>> best = reader.read("青岛进出口总值是多少？", [Passage(text)]).best    # doctest: +SKIP
>>> text[best.start : best.end]                                        # doctest: +SKIP
'9076.7亿元'
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ort_session
from .config import ReaderPrecision
from .reader_export import calibrated_confidence, calibrated_threshold, model_file
from .tokenizer_cache import shared_tokenizer

MAX_ANSWER_TOKENS = 40  # longest span considered (CMRC/DRCD answers are far shorter)
MAX_QUESTION_TOKENS = 64
SPANS_KEPT = 5  # best spans a reading keeps (the answer, further quotes and the answer check read the first few)
# tokens two neighbouring windows of one passage share at least, so an answer at the seam is whole in one
WINDOW_OVERLAP = 24
# a span never holds one of these: an answer is a phrase inside one sentence or clause, and a span
# that runs on past a full stop quotes the next sentence as part of the answer
SPAN_BARRIERS = frozenset("。！？；!?;")
# and a figure never runs past a clause break: no gold answer to a 多少/几 question in CMRC dev's
# even half or DRCD's held-out articles holds a "，" (0 of 164), while the reader ran on through
# lists (the 2027 智能家电 target read as 「千亿元级的发展目标，如…智能家电达到4200亿元」).
# Bundled dev short F1 0.733 → 0.762, CMRC and DRCD unchanged; as a barrier for every question
# type the comma cost CMRC F1 0.862 → 0.851
FIGURE_SPAN_BARRIERS = SPAN_BARRIERS | {"，"}


@dataclass
class Passage:
    """Text to read. `focus`: a (start, end) char span the window must hold when the text is too long."""

    text: str
    title: str = ""
    focus: tuple[int, int] | None = None


@dataclass
class Span:
    """An answer candidate: `passage[start:end]` (char offsets into `Passage.text`)."""

    passage: int
    start: int
    end: int
    score: float  # span logit minus its window's no-answer logit: > threshold means "answer"


@dataclass
class Reading:
    spans: list[Span] = field(default_factory=list)  # best first
    no_answer: float = float("inf")  # how far "no answer" beats the best span (−best.score)

    @property
    def best(self) -> Span | None:
        return self.spans[0] if self.spans else None


@dataclass
class Encoded:
    """Model inputs for a batch of (question, passage window) pairs, plus where the passage tokens are."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    context: np.ndarray  # bool (batch, width): token belongs to the passage window (can start/end an answer)
    offsets: list[np.ndarray]  # per row: (width, 2) char offsets into the passage text (-1 outside it)


class PairEncoder:
    """Builds reader inputs with the model's own tokenizer and pair template (shared by training and serving)."""

    def __init__(self, tokenizer_file: str | Path, max_tokens: int = 192):
        self.tokenizer = shared_tokenizer(tokenizer_file)  # the encoder's too when the files match
        self.max_tokens = max_tokens
        processor = self.tokenizer.post_processor
        self.specials = processor.num_special_tokens_to_add(True) if processor else 0
        pad = self.tokenizer.token_to_id("<pad>")
        self.pad_id = pad if pad is not None else (self.tokenizer.token_to_id("[PAD]") or 0)

    def window(self, question: str, passage: Passage, place: float = 0.5) -> tuple[int, int]:
        """The char range of `passage.text` that fits beside the question, holding `focus`.

        `place` puts the focus at the start (0), middle (0.5) or end (1) of the window;
        training draws it at random so the model does not learn where answers sit.
        """
        budget = self._budget(question, passage.title)
        offsets = self.tokenizer.encode(passage.text, add_special_tokens=False).offsets
        if len(offsets) <= budget:
            return 0, len(passage.text)
        return _char_range(offsets, self._focus_start(offsets, budget, passage.focus, place), budget)

    def windows(self, question: str, passage: Passage, limit: int = 1) -> list[tuple[int, int]]:
        """Char ranges to read, at most `limit`, the one nearest the focus first: the whole passage
        in overlapping windows when that many cover it, else the focus window and the tiles nearest it.

        A passage longer than one window otherwise loses whatever lies outside its focus window
        (on CMRC dev's even half the answer was outside the window read for 5.7% of questions).
        """
        budget = self._budget(question, passage.title)
        offsets = self.tokenizer.encode(passage.text, add_special_tokens=False).offsets
        n = len(offsets)
        if n <= budget:
            return [(0, len(passage.text))]
        focus = self._focus_start(offsets, budget, passage.focus, 0.5)
        stride = budget - min(WINDOW_OVERLAP, budget // 3)
        tiles = 1 + -(-(n - budget) // stride)  # ceil: windows that cover the n tokens
        starts = [round(i * (n - budget) / (tiles - 1)) for i in range(tiles)]
        if tiles > limit:
            starts = [focus] + sorted((s for s in starts if s != focus), key=lambda s: abs(s - focus))[: limit - 1]
        else:
            starts.sort(key=lambda s: abs(s - focus))
        return [_char_range(offsets, start, budget) for start in starts]

    @staticmethod
    def _focus_start(offsets, budget: int, focus: tuple[int, int] | None, place: float) -> int:
        """First token of the `budget`-token window that holds `focus`, placed by `place`."""
        a, b = focus or (0, 0)
        first = next((i for i, (s, e) in enumerate(offsets) if e > a), 0)
        last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < b), first)
        room = max(0, budget - (last - first + 1))
        start = first - int(round(room * place))
        return max(0, min(start, len(offsets) - budget))

    def _budget(self, question: str, title: str) -> int:
        q = min(MAX_QUESTION_TOKENS, len(self.tokenizer.encode(question, add_special_tokens=False).ids))
        t = len(self.tokenizer.encode(_head(title), add_special_tokens=False).ids) if title else 0
        return max(16, self.max_tokens - self.specials - q - t - 1)

    def encode(self, question: str, passages: list[Passage], windows: list[tuple[int, int]]) -> Encoded:
        question = _clip_question(self.tokenizer, question)
        rows = []
        for passage, (lo, hi) in zip(passages, windows):
            head = _head(passage.title)
            enc = self.tokenizer.encode(question, head + passage.text[lo:hi])
            ids = enc.ids[: self.max_tokens]
            seq = enc.sequence_ids[: self.max_tokens]
            offs = np.full((len(ids), 2), -1, np.int64)
            ctx = np.zeros(len(ids), bool)
            for i, (s, (a, b)) in enumerate(zip(seq, enc.offsets[: self.max_tokens])):
                if s == 1 and b > len(head):  # a first token such as ▁20 may start on the title's line break
                    offs[i] = (max(a, len(head)) - len(head) + lo, b - len(head) + lo)
                    ctx[i] = True
            rows.append((ids, enc.type_ids[: self.max_tokens], offs, ctx))
        width = max(len(r[0]) for r in rows)
        n = len(rows)
        out = Encoded(
            np.full((n, width), self.pad_id, np.int64),
            np.zeros((n, width), np.int64),
            np.zeros((n, width), np.int64),
            np.zeros((n, width), bool),
            [],
        )
        for r, (ids, types, offs, ctx) in enumerate(rows):
            out.input_ids[r, : len(ids)] = ids
            out.attention_mask[r, : len(ids)] = 1
            out.token_type_ids[r, : len(ids)] = types
            out.context[r, : len(ids)] = ctx
            padded = np.full((width, 2), -1, np.int64)
            padded[: len(ids)] = offs
            out.offsets.append(padded)
        return out


def _char_range(offsets, start: int, budget: int) -> tuple[int, int]:
    """Chars of tokens `start … start + budget - 1` (callers keep `start <= len(offsets) - budget`)."""
    return offsets[start][0], offsets[start + budget - 1][1]


def _head(title: str) -> str:
    return f"{title}\n" if title else ""


def _clip_question(tokenizer, question: str) -> str:
    enc = tokenizer.encode(question, add_special_tokens=False)
    if len(enc.ids) <= MAX_QUESTION_TOKENS:
        return question
    return question[: enc.offsets[MAX_QUESTION_TOKENS - 1][1]]


def best_spans(
    start: np.ndarray,
    end: np.ndarray,
    context: np.ndarray,
    top: int = 3,
    max_tokens: int = MAX_ANSWER_TOKENS,
    barrier: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """The `top` (first token, last token, start+end logit) spans inside the passage tokens
    that hold no `barrier` token (bool per token; see `SPAN_BARRIERS`).

    The search over (start, end ≤ start + max_tokens) pairs is a few vector ops; no library
    decodes SQuAD-style spans without pulling in torch.
    """
    n = len(start)
    s = np.where(context, start, -np.inf)
    e = np.where(context, end, -np.inf)
    walls = np.concatenate([[0], np.cumsum(barrier if barrier is not None else np.zeros(n, bool))])
    found = []
    for d in range(min(max_tokens, n)):
        scores = np.where(walls[d + 1 :] - walls[: n - d] > 0, -np.inf, s[: n - d] + e[d:])
        idx = np.argsort(-scores)[:top]
        found += [(int(i), int(i) + d, float(scores[i])) for i in idx if np.isfinite(scores[i])]
    found.sort(key=lambda t: -t[2])
    return found[:top]


def barrier_tokens(text: str, offsets: np.ndarray, barriers: frozenset[str] = SPAN_BARRIERS) -> np.ndarray:
    """Which tokens (char `offsets` into `text`, -1 outside it) hold one of the `barriers` characters."""
    return np.array([a >= 0 and any(c in barriers for c in text[a:b]) for a, b in offsets], bool)


_loaded: dict[tuple[str, int, ReaderPrecision], Reader] = {}
_loaded_lock = threading.Lock()


class Reader:
    """An extractive reader on ONNX Runtime (see the module docstring)."""

    def __init__(
        self, folder: str | Path, max_tokens: int = 192, precision: ReaderPrecision | str = ReaderPrecision.INT8
    ):
        folder = Path(folder)
        self.session = ort_session.open_session(folder / model_file(precision))
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.encoder = PairEncoder(folder / "tokenizer.json", max_tokens)
        self.info = _read_json(folder / "reader.json")
        self.threshold = calibrated_threshold(self.info, precision)  # calibrated with the weights
        self.confidence_fit = calibrated_confidence(self.info, precision)

    @classmethod
    def load(
        cls, name: str = "default", max_tokens: int = 192, precision: ReaderPrecision | str = ReaderPrecision.INT8
    ) -> Reader:
        """`default`: the shipped e5-small reader; otherwise a transformers QA model (hub name or folder).

        One per (name, max_tokens, precision) in a process: every knowledge base shares it."""
        from .reader_export import ensure_reader

        precision = ReaderPrecision.parse(precision)
        with _loaded_lock:
            key = (name, max_tokens, precision)
            if key not in _loaded:
                _loaded[key] = cls(ensure_reader(name, precision), max_tokens, precision)
            return _loaded[key]

    def confidence(self, score: float) -> float | None:
        """How likely an answer with this span score is right: the logistic fit of the calibration
        questions' F1 (0 for an unanswerable one answered) on their scores; None when uncalibrated."""
        if self.confidence_fit is None:
            return None
        slope, intercept = self.confidence_fit
        return float(1.0 / (1.0 + np.exp(-(slope * score + intercept))))

    def logits(self, encoded: Encoded) -> tuple[np.ndarray, np.ndarray]:
        feed = {
            "input_ids": encoded.input_ids,
            "attention_mask": encoded.attention_mask,
            "token_type_ids": encoded.token_type_ids,
        }
        start, end = ort_session.run(
            self.session, ["start_logits", "end_logits"], {k: v for k, v in feed.items() if k in self.inputs}
        )
        return start, end

    def plan(self, question: str, passages: list[Passage], windows: int = 1) -> list[tuple[int, tuple[int, int]]]:
        """The (passage index, char window) rows to read: the first passage (the retriever's best)
        in up to `windows` windows, the one nearest its focus first; each other passage in one
        around its focus.

        Retrieval puts the answer in the first passage for ~99% of CMRC questions, so covering
        that one whole buys most of what reading every passage whole would, at a third of the cost
        (CMRC dev's even half, trained on: F1 0.804 → 0.839 at 62 → 80 ms p50; all three whole: 0.836 at 103 ms).
        """
        return [
            (i, w) for i, p in enumerate(passages) for w in self.encoder.windows(question, p, windows if i == 0 else 1)
        ]

    def encode(self, question: str, passages: list[Passage], windows: int = 1) -> tuple[list[int], Encoded]:
        """The batch of `plan`'s rows: each row's passage index, and the inputs."""
        return self._encode(question, passages, self.plan(question, passages, windows))

    def _encode(
        self, question: str, passages: list[Passage], rows: list[tuple[int, tuple[int, int]]]
    ) -> tuple[list[int], Encoded]:
        return [i for i, _ in rows], self.encoder.encode(question, [passages[i] for i, _ in rows], [w for _, w in rows])

    def read(
        self,
        question: str,
        passages: list[Passage],
        top: int = SPANS_KEPT,
        windows: int = 1,
        barriers: frozenset[str] = SPAN_BARRIERS,
        rows: list[tuple[int, tuple[int, int]]] | None = None,
    ) -> Reading:
        """`plan`'s rows (or the `rows` given) in one batch; spans from every window, best first,
        none holding one of the `barriers` characters."""
        if not passages:
            return Reading()
        rows = self.plan(question, passages, windows) if rows is None else rows
        owners, encoded = self._encode(question, passages, rows)
        start, end = self.logits(encoded)
        best: dict[tuple[int, int, int], Span] = {}  # overlapping windows can find the same span
        for row, passage in enumerate(owners):
            null = float(start[row, 0] + end[row, 0])
            offs = encoded.offsets[row]
            walls = barrier_tokens(passages[passage].text, offs, barriers)
            for i, j, score in best_spans(start[row], end[row], encoded.context[row], top, barrier=walls):
                span = Span(passage, int(offs[i, 0]), int(offs[j, 1]), score - null)
                key = (span.passage, span.start, span.end)
                if key not in best or best[key].score < span.score:
                    best[key] = span
        spans = sorted(best.values(), key=lambda s: -s.score)
        return Reading(spans[:top], -spans[0].score if spans else float("inf"))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
