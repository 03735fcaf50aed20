"""Would the answer check decide better with the encoder's cosine too? Measured out of fold.

    python benchmarks/check_features.py ~/.cache/rag/models/reader-<sha16>-int8pc \
        --synonym-positives --traditional-twins --more-swaps

Why: the check (`rag/answer_check.py`) turns away paraphrased questions the reader answers right
but scores low (「今年青岛的计算能力要达到多少？」 → 8000P at −9.7). The encoder, trained on
paraphrases, may see what the reader cannot: `sentence_dense`, the cosine of the question and the
late-chunked vector of the sentence holding the best span, which the product computes and a
check reads when calibrated with `train_reader.py calibrate --sentence-dense`. (A second
candidate, the best span's margin over a span elsewhere, was measured here until 2026-12-07 and
never helped: commit 562bc12's version of this script computes it. A third, `clause_overlap`,
the IDF-weighted share of the question's words in the best span's own clause, was measured on
2026-12-07 and did not help either: commit 4fd5915's version computes it.)
It reads the calibration questions `train_reader.py prepare` wrote to the work folder of the
setting its data flags name (the shipped setting's, as above).
The five-feature check and the six-feature one are each fitted and thresholded as `calibrate`
does (5-fold out of fold, the calibration rule) on the same questions; printed per set:
out-of-fold utility and threshold, AUC, the AUC against the paragraph-removed DRCD questions, and
the bundled dev split's figures. Tuning data only (DRCD validation articles + swaps, bundled dev
split). About 2 minutes.
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

from rag.answer_check import CHECKED, FEATURES
from rag.config import Config
from rag.reader import Reader

SETS = {"five (default)": CHECKED, "+dense": FEATURES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export", type=Path, help="a reader export folder (`rag cache` lists them)")
    train_reader.add_data_arguments(parser)
    args = parser.parse_args()
    train_reader.apply_data_arguments(args)
    check_exports([args.export])
    logging.disable(logging.WARNING)
    defaults = Config()
    model = Reader(args.export, defaults.reader_max_tokens, defaults.reader_precision)
    cases = train_reader.calibration_cases(model)
    _, removed = train_reader.paragraph_removed_cases(model)
    for name, features in SETS.items():
        logits = train_reader.out_of_fold_logits(cases, features=features)
        best = train_reader.pick_threshold(logits, cases.f1s, cases.answerable)
        if best is None:
            print(json.dumps({"features": name, "utility": None}))
            continue
        figures = train_reader.decision_figures(logits, cases, best[1])
        check = train_reader.fit_answer_check(cases, features)
        fitted = np.array([check.logit(row) for row in cases.features])
        removed_logits = np.array([check.logit(row) for row in removed])
        row = {
            "features": name,
            "utility": round(best[0], 3),
            "threshold": round(best[1], 2),
            "AUC": figures["all"]["auc"],
            "AUC, paragraph removed": round(removed_auc(fitted, cases.answerable, removed_logits), 3),
            "bundled dev": figures["qingdao"],
            "coef": [round(c, 2) for c in check.coef],
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
