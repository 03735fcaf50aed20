"""Would the answer check decide better with more evidence? Candidate features, measured out of fold.

    python benchmarks/check_features.py ~/.cache/rag/models/reader-<sha16>-int8pc

Why: the check (`rag/answer_check.py`) turns away paraphrased questions the reader answers right
but scores low (「今年青岛的计算能力要达到多少？」 → 8000P at −9.7). Two more things the answer step
already knows might tell them apart, and this measures them before the product computes them:
  dense   cosine(question, the late-chunked vector of the sentence holding the best span) — the
          encoder, trained on paraphrases, may see what the reader cannot;
  margin  the best span's score minus the best score of a span elsewhere (another passage, or
          not overlapping it): the reader's doubt between places (10 when nothing else was found).
Each feature set is fitted and thresholded as `train_reader.py calibrate` does (5-fold out of fold,
the calibration rule) on the same questions; printed per set: out-of-fold utility and threshold,
AUC, the AUC against the paragraph-removed DRCD questions, and the bundled dev split's figures.
Tuning data only (DRCD validation articles + swaps, bundled dev split). About 2 minutes.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import train_reader
from calibration_noise import removed_auc
from compare_readers import check_exports

from rag import reader_composer
from rag.answer_check import FEATURES
from rag.config import Config
from rag.reader import Reader, Reading

CANDIDATES = ("dense", "margin")
SETS = {"shipped": (), "+dense": ("dense",), "+margin": ("margin",), "+dense +margin": CANDIDATES}
NO_OTHER_PLACE = 10.0


def margin(reading: Reading) -> float:
    """The best span's score minus the best score of a span at another place."""
    best = reading.spans[0]
    others = [
        s.score for s in reading.spans[1:] if s.passage != best.passage or s.end <= best.start or s.start >= best.end
    ]
    return min(NO_OTHER_PLACE, best.score - max(others)) if others else NO_OTHER_PLACE


class Recording(Reader):
    """The reader, remembering its last reading (for `margin`)."""

    last: Reading | None = None

    def read(self, *args, **kwargs) -> Reading:
        self.last = super().read(*args, **kwargs)
        return self.last


def with_candidates(model: Recording):
    """`answer_features` with the candidate features appended (the product's own stay first)."""
    product = reader_composer.answer_features

    def features(evidence, passages_text, sentence, short, span_score) -> list[float]:
        extra = [sentence.dense if sentence else 0.0, margin(model.last) if model.last else NO_OTHER_PLACE]
        return product(evidence, passages_text, sentence, short, span_score) + extra

    return features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export", type=Path, help="a reader export folder (`rag cache` lists them)")
    args = parser.parse_args()
    check_exports([args.export])
    logging.disable(logging.WARNING)
    defaults = Config()
    model = Recording(args.export, defaults.reader_max_tokens, defaults.reader_precision)
    reader_composer.answer_features = with_candidates(model)  # measurement only: the product is unchanged
    cases = train_reader.calibration_cases(model)
    _, removed = train_reader.paragraph_removed_cases(model)
    names = list(FEATURES) + list(CANDIDATES)
    for name, extra in SETS.items():
        cols = [names.index(f) for f in (*FEATURES, *extra)]
        chosen = train_reader.Cases(cases.scores, cases.f1s, cases.answerable, cases.features[:, cols], cases.sources)
        logits = train_reader.out_of_fold_logits(chosen)
        best = train_reader.pick_threshold(logits, chosen.f1s, chosen.answerable)
        if best is None:
            print(json.dumps({"features": name, "utility": None}))
            continue
        figures = train_reader.decision_figures(logits, chosen, best[1])
        check = train_reader.fit_answer_check(chosen)
        fitted = np.array([check.logit(row) for row in chosen.features])
        removed_logits = np.array([check.logit(row) for row in removed[:, cols]])
        row = {
            "features": name,
            "utility": round(best[0], 3),
            "threshold": round(best[1], 2),
            "AUC": figures["all"]["auc"],
            "AUC, paragraph removed": round(removed_auc(fitted, chosen.answerable, removed_logits), 3),
            "bundled dev": figures["qingdao"],
            "coef": [round(c, 2) for c in check.coef],
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
