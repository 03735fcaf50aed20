"""Hybrid retrieval: dense and BM25 candidates fused by min-max normalised scores.

fused = minmax(dense) + w · minmax(bm25) over the union of both candidate lists.
On CMRC 2018 dev this beat reciprocal-rank fusion (0.980 vs 0.965–0.971 recall@1),
because it keeps how far apart the scores are, not just their order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RetrievalMode
from .dense import DenseIndex
from .keyword import KeywordIndex


@dataclass
class Ranked:
    rows: np.ndarray  # chunk row ids, best first
    fused: np.ndarray
    dense: np.ndarray  # NaN where not computed
    keyword: np.ndarray


def minmax(x: np.ndarray) -> np.ndarray:
    if not len(x):
        return x
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.ones_like(x)


class HybridRetriever:
    def __init__(self, dense: DenseIndex, keyword: KeywordIndex, keyword_rows: np.ndarray):
        self.dense = dense
        self.keyword = keyword
        self.keyword_rows = keyword_rows  # BM25 position -> chunk row id
        self._keyword_pos = np.full(int(keyword_rows.max()) + 1 if len(keyword_rows) else 0, -1, np.int64)
        self._keyword_pos[keyword_rows] = np.arange(len(keyword_rows))

    def retrieve(
        self,
        query_vector: np.ndarray | None,
        query_tokens: list[str],
        k: int,
        mode: RetrievalMode = RetrievalMode.HYBRID,
        candidates: int = 50,
        keyword_weight: float = 0.5,
    ) -> Ranked:
        n = max(k, candidates)
        if mode is RetrievalMode.DENSE:
            rows, scores = self.dense.search(query_vector, n)
            return Ranked(rows[:k], scores[:k], scores[:k], np.full(min(k, len(rows)), np.nan))
        bm25_all = self.keyword.scores(query_tokens)
        if mode is RetrievalMode.KEYWORD:
            pos, scores = self.keyword.search(query_tokens, n)
            rows = self.keyword_rows[pos]
            return Ranked(rows[:k], scores[:k], np.full(min(k, len(rows)), np.nan), scores[:k])
        dense_rows, _ = self.dense.search(query_vector, n)
        kw_pos, _ = self.keyword.search(query_tokens, n)
        rows = np.unique(np.concatenate([dense_rows, self.keyword_rows[kw_pos]]))
        if not len(rows):
            empty = np.zeros(0)
            return Ranked(rows, empty, empty, empty)
        dense_scores = self.dense.vectors(rows) @ query_vector.astype(np.float32)
        kw_scores = bm25_all[self._keyword_pos[rows]]
        fused = minmax(dense_scores) + keyword_weight * minmax(kw_scores)
        order = np.argsort(-fused)[:k]
        return Ranked(rows[order], fused[order], dense_scores[order], kw_scores[order])
