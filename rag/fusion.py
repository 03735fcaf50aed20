"""Fusing dense and keyword scores over one candidate set (the union of both top lists).

- `minmax` (default): minmax(dense) + w · minmax(bm25). It keeps how far apart the scores are,
  not just their order, which is why it ranks better here (`python benchmarks/fusion.py`).
- `rrf`: reciprocal rank fusion, 1/(k + dense rank) + w / (k + keyword rank), k = 60.
"""

from __future__ import annotations

import numpy as np

from .config import FusionMethod

RRF_K = 60


def minmax(x: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1]; all ones when every score is equal (one candidate is not zero evidence)."""
    if not len(x):
        return x
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.ones_like(x)


def ranks(x: np.ndarray) -> np.ndarray:
    """1 for the best score, 2 for the next…"""
    out = np.empty(len(x), np.int64)
    out[np.argsort(-x, kind="stable")] = np.arange(1, len(x) + 1)
    return out


def fuse(dense: np.ndarray, keyword: np.ndarray, method: FusionMethod, keyword_weight: float) -> np.ndarray:
    """One score per candidate from its dense and keyword scores (higher is better)."""
    if FusionMethod.parse(method) is FusionMethod.RRF:
        return 1.0 / (RRF_K + ranks(dense)) + keyword_weight / (RRF_K + ranks(keyword))
    return minmax(dense) + keyword_weight * minmax(keyword)
