"""Hybrid retrieval: dense and BM25 candidates, each scored by both, fused (`fusion.py`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .config import FusionMethod, RetrievalMode
from .dense import DenseIndex
from .fusion import fuse
from .keyword_index import KeywordIndex


@dataclass
class Ranked:
    rows: np.ndarray  # chunk row ids, best first
    fused: np.ndarray
    dense: np.ndarray  # NaN where not computed
    keyword: np.ndarray
    timings: dict = field(default_factory=dict)  # seconds: dense, keyword, fusion


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
        fusion: FusionMethod = FusionMethod.MINMAX,
    ) -> Ranked:
        n = max(k, candidates)
        no_scores = np.zeros(0)
        t0 = time.perf_counter()
        dense_rows, dense_top = no_scores.astype(np.int64), no_scores
        if mode is not RetrievalMode.KEYWORD:
            if query_vector is None:
                raise ValueError(f"{mode.value} retrieval needs the query vector")
            dense_rows, dense_top = self.dense.search(query_vector, n)
        t1 = time.perf_counter()
        if mode is not RetrievalMode.DENSE:
            bm25_all = self.keyword.scores(query_tokens)
            kw_pos, kw_top = top_k(bm25_all, n)
        t2 = time.perf_counter()
        if mode is RetrievalMode.DENSE:
            ranked = Ranked(dense_rows[:k], dense_top[:k], dense_top[:k], np.full(len(dense_rows[:k]), np.nan))
        elif mode is RetrievalMode.KEYWORD:
            rows = self.keyword_rows[kw_pos][:k]
            ranked = Ranked(rows, kw_top[:k], np.full(len(rows), np.nan), kw_top[:k])
        else:
            assert query_vector is not None
            rows = np.unique(np.concatenate([dense_rows, self.keyword_rows[kw_pos]])).astype(np.int64)
            dense_scores = self.dense.scores(query_vector, rows) if len(rows) else no_scores
            kw_scores = bm25_all[self._keyword_pos[rows]] if len(rows) else no_scores
            fused = fuse(dense_scores, kw_scores, fusion, keyword_weight)
            order = np.argsort(-fused)[:k]
            ranked = Ranked(rows[order], fused[order], dense_scores[order], kw_scores[order])
        ranked.timings = {"dense": t1 - t0, "keyword": t2 - t1, "fusion": time.perf_counter() - t2}
        return ranked


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the k best positive scores, best first."""
    if not len(scores):
        return np.zeros(0, np.int64), scores
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top])]
    top = top[scores[top] > 0]
    return top, scores[top]
