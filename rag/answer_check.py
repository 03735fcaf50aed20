"""The answer check: should the reader's best span be given as the answer, and how sure is it?

The reader's span score alone (start + end − no-answer logit) mixes up two kinds of question:
a paraphrase the reader answers right but scores low (「海边拉客的人」 for 「前海一线拉客揽客人员」),
and a question about a place, year or figure the documents never give, where some other figure
scores well. The check hears the evidence too: a logistic regression over features of the
best span, fitted on the calibration questions with the threshold (`train_reader.py calibrate`,
stored in reader.json as `answer_check`, with the names of the features it reads). Its logit is
what the threshold cuts, and its probability (fitted to each question's F1, 0 when unanswerable)
is the answer's confidence. The product computes every feature in `FEATURES`; a check reads the
ones its record names (five by default; `calibrate --sentence-dense` adds the encoder's cosine).

    >>> check = AnswerCheck(mean=[0.0] * 5, scale=[1.0] * 5, coef=[1.0, -1.0, 0.0, 0.0, 0.0], intercept=0.0)
    >>> round(check.confidence(check.logit([2.0, 0.0, 0.5, 0.5, 1.0])), 3)
    0.881
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .composer import Candidate, has_type, missing_names
from .evidence import Evidence
from .zh import question_type

FEATURES = ("span_score", "missing_names", "overlap", "idf_overlap", "type_agreement", "sentence_dense")
CHECKED = FEATURES[:5]  # what a check reads unless fitted over more
TYPED = ("quantity", "date", "list", "person", "place")  # kinds `has_type` can recognise in a span


def answer_features(
    evidence: Evidence, passages_text: str, sentence: Candidate | None, short: str, span_score: float
) -> list[float]:
    """Every feature a check may read, in `FEATURES` order, for the best span (`short`, scored
    `span_score`) found in the sentence `sentence` of the passages the reader read
    (`passages_text`, joined). `sentence_dense` is the retrieval encoder's cosine of the question
    and that sentence: a second model's view of whether it is about what was asked."""
    missing = len(missing_names(evidence.question, passages_text, evidence.tokenizer))
    qtype = question_type(evidence.focus) or question_type(evidence.question)
    agreement = 0.0
    if qtype in TYPED:
        agreement = 1.0 if has_type(short, qtype, evidence.tokenizer) else -1.0
    return [
        float(span_score),
        float(missing),
        sentence.overlap if sentence else 0.0,
        sentence.idf_overlap if sentence else 0.0,
        agreement,
        sentence.dense if sentence else 0.0,
    ]


@dataclass
class AnswerCheck:
    """A fitted check: standardise the features it reads, then a linear logit (sklearn's, stored as numbers)."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float = 0.0  # answer when the logit is at least this (picked with the calibration rule)
    features: tuple[str, ...] = CHECKED  # the names of what it reads, out of `FEATURES`

    def logit(self, features: Sequence[float]) -> float:
        """The logit of a row of `answer_features` (in `FEATURES` order; a shorter row holds the first ones)."""
        row = np.asarray(features, float)[[FEATURES.index(f) for f in self.features]]
        x = (row - np.asarray(self.mean)) / np.asarray(self.scale)
        return float(x @ np.asarray(self.coef) + self.intercept)

    @staticmethod
    def confidence(logit: float) -> float:
        return float(1.0 / (1.0 + np.exp(-logit)))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["features"] = list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: dict | None) -> AnswerCheck | None:
        """None for a record without a check, or with one over a feature this code cannot compute
        (a newer check): the reader then decides by its span score alone."""
        if not data:
            return None
        features = tuple(data.get("features", ()))
        if not features or not set(features) <= set(FEATURES):
            return None
        if any(len(data.get(k, ())) != len(features) for k in ("mean", "scale", "coef")):
            raise ValueError(
                f"the answer check in reader.json names {len(features)} features but has not as many weights: "
                "restore the file that came with the weights, or run `python benchmarks/train_reader.py calibrate`"
            )
        return cls(
            [float(v) for v in data["mean"]],
            [float(v) for v in data["scale"]],
            [float(v) for v in data["coef"]],
            float(data["intercept"]),
            float(data.get("threshold", 0.0)),
            features,
        )
