"""How sure the calibration data is that one reader abstains better than another: a paired bootstrap.

    python benchmarks/calibration_noise.py ~/.cache/rag/models/reader-<sha16>-int8pc [more exports ...] \
        --synonym-positives --traditional-twins --more-swaps

(The data flags name the training setting whose calibration questions to read, as in
`train_reader.py`; the shipped setting's are shown.)

Why: `train_reader.py calibrate` picks each reader's threshold on 374 questions (236 answerable,
138 not) and reports one utility; seeds of one setting have differed by 0.03–0.08 there, so a
difference between two readers means little without its spread. Each export reads the same
calibration questions always answering (`train_reader.calibration_cases`; cached per export in
the training work folder until the questions or train_reader.py change); then, on each of 2,000
resamples of the questions (the same resample for every export, so the comparison is paired),
every export's threshold is picked again by the calibration rule (`train_reader.pick_threshold`)
and its utility recorded. Printed per export:
the utility and threshold on all questions, the AUC of its score (answerable above unanswerable,
which needs no threshold), the 95% interval of its utility, and — against the first export — the
95% intervals of the utility and AUC differences, and the share of resamples in which its
utility is ahead.
Also, the same for real questions the documents cannot answer: the DRCD validation questions
asked of an index without their gold paragraphs (`train_reader.paragraph_removed_cases`) — the
AUC of the answerable calibration questions against them, and the share turned away at the
export's calibrated threshold (not used to pick it).
Tuning data only: the DRCD validation articles (+ swaps) and the bundled dev split.
"""

import argparse
import hashlib
import inspect
import json
import logging
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import train_reader
from compare_readers import check_exports

from rag import answer_check, composer, config, reader, reader_composer, zh
from rag.config import Config
from rag.reader import Reader
from rag.report import markdown_table

RESAMPLES = 2000


def removed_auc(scores: np.ndarray, answerable: np.ndarray, removed: np.ndarray) -> float:
    """AUC of the answerable calibration questions against the paragraph-removed ones."""
    both = np.concatenate([scores[answerable], removed])
    return train_reader.auc(both, np.arange(len(both)) < answerable.sum())


@dataclass
class Decider:
    """One way to decide whether to answer: its score on every calibration question and on the
    paragraph-removed ones (answer when the score reaches the threshold)."""

    name: str
    scores: np.ndarray
    f1s: np.ndarray
    answerable: np.ndarray
    removed: np.ndarray


def read_cases(folder: Path) -> tuple[train_reader.Cases, np.ndarray, np.ndarray]:
    """The export's calibration cases and its paragraph-removed scores and features, read once and
    kept beside the validation questions they came from."""
    validation = train_reader.WORK / "validation.jsonl"
    if not validation.exists():
        raise SystemExit(f"{validation} is missing: run `python benchmarks/train_reader.py prepare` first")
    # the cases depend on the questions and on how they are read (the code and the config's
    # defaults): a change to any of them reads anew
    code = b"".join(
        Path(inspect.getfile(m)).read_bytes()
        for m in (train_reader, answer_check, reader, reader_composer, composer, zh, config)
    )
    tag = hashlib.sha256(validation.read_bytes() + code).hexdigest()[:8]
    cached = train_reader.WORK / f"calibration-cases-{folder.name}-{tag}.npz"
    if cached.exists():
        data = np.load(cached)
        cases = train_reader.Cases(*(data[f.name] for f in fields(train_reader.Cases)))
        return cases, data["removed"], data["removed_features"]
    defaults = Config()
    model = Reader(folder, defaults.reader_max_tokens, defaults.reader_precision)
    cases = train_reader.calibration_cases(model)
    removed, removed_features = train_reader.paragraph_removed_cases(model)
    np.savez(cached, **vars(cases), removed=removed, removed_features=removed_features)
    return cases, removed, removed_features


def deciders(folder: Path) -> list[Decider]:
    """The export's span score, and its answer check scored out of fold (`train_reader.out_of_fold_logits`;
    on the paragraph-removed questions, the check fitted on every calibration question)."""
    cases, removed, removed_features = read_cases(folder)
    check = train_reader.fit_answer_check(cases)
    return [
        Decider(folder.name, cases.scores, cases.f1s, cases.answerable, removed),
        Decider(
            f"{folder.name} + answer check",
            train_reader.out_of_fold_logits(cases),
            cases.f1s,
            cases.answerable,
            np.array([check.logit(row) for row in removed_features]),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("exports", nargs="+", type=Path, help="reader export folders; the first is the baseline")
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    train_reader.add_data_arguments(parser)
    args = parser.parse_args()
    train_reader.apply_data_arguments(args)
    check_exports(args.exports)
    logging.disable(logging.WARNING)
    read = [d for folder in args.exports for d in deciders(folder)]
    if any(
        not np.array_equal(d.answerable, read[0].answerable) or len(d.removed) != len(read[0].removed) for d in read
    ):
        raise SystemExit("the exports were read on different calibration questions; delete the cached cases")
    n, m = len(read[0].scores), len(read[0].removed)
    rng = np.random.default_rng(args.seed)
    utilities = np.full((len(read), args.resamples), np.nan)
    aucs = np.full((len(read), args.resamples), np.nan)
    removed_aucs = np.full((len(read), args.resamples), np.nan)
    for b in range(args.resamples):
        rows, others = rng.integers(0, n, n), rng.integers(0, m, m)
        for k, d in enumerate(read):
            best = train_reader.pick_threshold(d.scores[rows], d.f1s[rows], d.answerable[rows])
            utilities[k, b] = best[0] if best else np.nan
            aucs[k, b] = train_reader.auc(d.scores[rows], d.answerable[rows])
            removed_aucs[k, b] = removed_auc(d.scores[rows], d.answerable[rows], d.removed[others])
    table = []
    for k, d in enumerate(read):
        best = train_reader.pick_threshold(d.scores, d.f1s, d.answerable)
        low, high = np.nanpercentile(utilities[k], [2.5, 97.5])
        row = {
            "decider": d.name,
            "utility": round(best[0], 3) if best else None,
            "threshold": round(best[1], 2) if best else None,
            "AUC": round(train_reader.auc(d.scores, d.answerable), 3),
            "utility 95%": f"{low:.3f}–{high:.3f}",
            "AUC, paragraph removed": round(removed_auc(d.scores, d.answerable, d.removed), 3),
            "abstains, paragraph removed": f"{np.mean(d.removed < best[1]):.0%}" if best else None,
        }
        if k:
            diff = utilities[k] - utilities[0]
            d_low, d_high = np.nanpercentile(diff, [2.5, 97.5])
            row["utility vs first 95%"] = f"{d_low:+.3f} to {d_high:+.3f}"
            row["ahead of first"] = f"{np.nanmean(diff > 0):.0%}"
            a_low, a_high = np.percentile(aucs[k] - aucs[0], [2.5, 97.5])
            row["AUC vs first 95%"] = f"{a_low:+.3f} to {a_high:+.3f}"
            r_low, r_high = np.percentile(removed_aucs[k] - removed_aucs[0], [2.5, 97.5])
            row["AUC, paragraph removed, vs first 95%"] = f"{r_low:+.3f} to {r_high:+.3f}"
        else:
            for key in (
                "utility vs first 95%",
                "ahead of first",
                "AUC vs first 95%",
                "AUC, paragraph removed, vs first 95%",
            ):
                row[key] = "–"
        table.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    print(
        f"{n} calibration questions ({int(read[0].answerable.sum())} answerable), {m} paragraph-removed questions, "
        f"{args.resamples} paired resamples"
    )
    print("\n".join(markdown_table(list(table[0]), [list(r.values()) for r in table])))


if __name__ == "__main__":
    main()
