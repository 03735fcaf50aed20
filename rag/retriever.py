"""Hybrid retrieval: dense and BM25 candidates, each scored by both, fused (`fusion.py`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .config import FusionMethod, RetrievalMode
from .fusion import fuse


@dataclass
class Ranked:
    rows: np.ndarray  # chunk row ids, best first
    fused: np.ndarray
    dense: np.ndarray  # NaN where not computed
    keyword: np.ndarray
    timings: dict = field(default_factory=dict)  # seconds: dense, keyword, fusion


class DenseSearch(Protocol):
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...
    def scores(self, query: np.ndarray, ids: np.ndarray) -> np.ndarray: ...
    def vectors(self, ids: np.ndarray) -> np.ndarray: ...


class KeywordSearch(Protocol):
    def search(
        self, query_tokens: list[str], k: int, also: np.ndarray | None = None, text: str = ""
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class HybridRetriever:
    """Dense and keyword search over the same chunk rows, from whichever store holds them
    (`DenseIndex` + `KeywordIndex` files, or a Milvus collection)."""

    def __init__(self, dense: DenseSearch, keyword: KeywordSearch):
        self.dense = dense
        self.keyword = keyword

    def retrieve(
        self,
        query_vector: np.ndarray | None,
        query_tokens: list[str],
        k: int,
        mode: RetrievalMode = RetrievalMode.HYBRID,
        candidates: int = 50,
        keyword_weight: float = 0.5,
        fusion: FusionMethod = FusionMethod.MINMAX,
        query_text: str = "",
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
            also = dense_rows if mode is RetrievalMode.HYBRID else None
            kw_rows, kw_top, kw_of_dense = self.keyword.search(query_tokens, n, also, query_text)
        t2 = time.perf_counter()
        if mode is RetrievalMode.DENSE:
            ranked = Ranked(dense_rows[:k], dense_top[:k], dense_top[:k], np.full(len(dense_rows[:k]), np.nan))
        elif mode is RetrievalMode.KEYWORD:
            ranked = Ranked(kw_rows[:k], kw_top[:k], np.full(len(kw_rows[:k]), np.nan), kw_top[:k])
        else:
            assert query_vector is not None
            keyword_of = dict(zip(dense_rows.tolist(), kw_of_dense.tolist()))
            keyword_of.update(zip(kw_rows.tolist(), kw_top.tolist()))
            rows = np.array(sorted(keyword_of), np.int64)
            dense_scores = self.dense.scores(query_vector, rows) if len(rows) else no_scores
            kw_scores = np.array([keyword_of[r] for r in rows.tolist()], np.float32)
            fused = fuse(dense_scores, kw_scores, fusion, keyword_weight)
            order = np.argsort(-fused)[:k]
            ranked = Ranked(rows[order], fused[order], dense_scores[order], kw_scores[order])
        ranked.timings = {"dense": t1 - t0, "keyword": t2 - t1, "fusion": time.perf_counter() - t2}
        return ranked
