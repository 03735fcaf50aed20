"""Learn the composer's sentence weights on tuning questions (never on the reported test set).

    python benchmarks/build_cmrc.py trial && python benchmarks/build_cmrc.py dev   # the indexes it reads
    python benchmarks/tune_composer.py

Tuning questions: CMRC 2018 trial plus the even-numbered questions of CMRC 2018 dev;
the odd-numbered dev questions are held out and the script reports quote@1 on them.
Every candidate sentence of each question is scored once; a listwise logistic model
(softmax over a question's candidates, cross-entropy against the sentences that hold
a gold answer) is fitted with plain gradient descent, and its weights printed in the
order of `Candidate.features()` for `Config.sentence_weights`.
"""

import logging
from pathlib import Path

import numpy as np

from rag import KnowledgeBase
from rag.composer import AnswerComposer
from rag.config import RetrievalMode
from rag.evaluation import read_squad

ROOT = Path(__file__).resolve().parent.parent


def candidate_table(split: str):
    kb = KnowledgeBase.open(ROOT / "index" / f"cmrc2018_{split}")
    items = [it for it in read_squad(ROOT / "data" / "cmrc2018" / f"cmrc2018_{split}.json").items if it.answers]
    vectors = kb.encoder.encode_queries([it.question for it in items])
    table = []
    for it, vec in zip(items, vectors):
        ranked, _, _ = kb._rank(it.question, kb.config.answer_passages, RetrievalMode.HYBRID, vec)
        rows = [int(r) for r in ranked.rows]
        cands = AnswerComposer(kb.config).candidates(
            it.question, vec, [kb.chunks[r] for r in rows], [kb.sentence_vectors[r] for r in rows],
            kb.tokenizer, kb.retriever.keyword.idf,
        )
        quotes = [kb.document(c.chunk.doc_id)[slice(*c.chunk.sentences[c.index])] for c in cands]
        feats = np.array([c.features() for c in cands]).reshape(len(cands), -1)
        table.append((feats, np.array([any(a in q for a in it.answers) for q in quotes], bool)))
    return table


def fit(train, epochs: int = 300, rate: float = 0.5) -> np.ndarray:
    train = [(f, h) for f, h in train if h.any()]
    stacked = np.vstack([f for f, _ in train])
    mu, sd = stacked.mean(0), stacked.std(0) + 1e-6
    w = np.zeros(stacked.shape[1])
    for _ in range(epochs):
        grad = np.zeros_like(w)
        for f, h in train:
            z = (f - mu) / sd
            s = z @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += z.T @ (p - h / h.sum())
        w -= rate * grad / len(train)
    return w / sd  # weights on raw features (the mean shift does not change an argmax)


def quote_at_1(table, w) -> float:
    return float(np.mean([h[np.argmax(f @ w)] if len(h) else False for f, h in table]))


def main():
    logging.disable(logging.WARNING)
    dev = candidate_table("dev")
    trial = candidate_table("trial")
    tune, held_out = trial + dev[0::2], dev[1::2]
    w = fit(tune)
    scale = 100.0 / w[0]
    print("weights (dense, overlap, idf_overlap, local_overlap, typed):", [round(x * scale, 2) for x in w])
    print(f"quote@1 held-out dev (odd questions): {quote_at_1(held_out, w):.4f}; tuning: {quote_at_1(tune, w):.4f}")


if __name__ == "__main__":
    main()
