"""Dense search: FAISS inner product over normalised vectors (= cosine).

Index kinds (chosen by size when `kind="auto"`):
- `flat`: exact search; right up to ~100k chunks.
- `ivf-sq8`: inverted lists over 8-bit scalar-quantised vectors — a quarter of the memory
  (384 MB per million 384-d vectors), supports adding and removing, `nprobe` trades speed
  for recall.
- `hnsw`: graph search over full vectors; fastest queries but 4× the memory of `ivf-sq8`,
  and removals rebuild the graph.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .config import DenseKind

AUTO_APPROXIMATE_FROM = 100_000


def choose_kind(kind: str | DenseKind, size: int) -> DenseKind:
    """The concrete kind for an index of `size` vectors (AUTO picks by size)."""
    kind = DenseKind.parse(kind)
    if kind is not DenseKind.AUTO:
        return kind
    return DenseKind.IVF_SQ8 if size >= AUTO_APPROXIMATE_FROM else DenseKind.FLAT


def create_faiss_index(dim: int, kind: DenseKind, sample: np.ndarray | None = None, hnsw_m: int = 32) -> Any:
    """The FAISS index for `kind`, keyed by our row ids. IVF-SQ8 trains its lists on `sample`."""
    import faiss

    if kind is DenseKind.FLAT:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind is DenseKind.HNSW:
        return faiss.IndexIDMap2(faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT))
    if kind is DenseKind.IVF_SQ8:
        if sample is None or not len(sample):
            raise ValueError("an ivf-sq8 index is trained on vectors: build it with DenseIndex.build")
        nlist = max(16, int(4 * math.sqrt(len(sample))))
        ivf = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        picked = np.random.default_rng(0).choice(len(sample), min(len(sample), 40 * nlist), replace=False)
        ivf.train(np.ascontiguousarray(sample[picked], np.float32))
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # reconstruct and remove by id; IVF keeps the ids itself
        return ivf
    raise ValueError(f"no FAISS index for kind {kind.value!r}; resolve AUTO with choose_kind first")


class DenseIndex:
    """Inner-product search keyed by chunk row ids (so rows can be removed)."""

    DEFAULT_PARAMS = {"nprobe": 32, "ef_search": 128, "hnsw_m": 32}

    def __init__(self, index: Any, kind: DenseKind, **params):
        self._index = index
        self.dim: int = int(index.d)
        self.kind = kind
        self.params = {**self.DEFAULT_PARAMS, **params}
        self._apply_params()

    @classmethod
    def empty(cls, dim: int, kind: str | DenseKind = DenseKind.FLAT, **params) -> DenseIndex:
        kind = choose_kind(kind, 0)
        if kind is DenseKind.IVF_SQ8:
            kind = DenseKind.FLAT  # nothing to train IVF lists on yet; `KnowledgeBase` switches as it grows
        return cls(create_faiss_index(dim, kind, hnsw_m=params.get("hnsw_m", 32)), kind, **params)

    @classmethod
    def build(
        cls, dim: int, ids: np.ndarray, vectors: np.ndarray, kind: str | DenseKind = DenseKind.AUTO, **params
    ) -> DenseIndex:
        """An index of `kind` holding `vectors` (IVF lists are trained on them)."""
        kind = choose_kind(kind, len(ids))
        index = cls(create_faiss_index(dim, kind, vectors, params.get("hnsw_m", 32)), kind, **params)
        index.add(ids, vectors)
        return index

    def _apply_params(self) -> None:
        import faiss

        inner = self._inner()
        if isinstance(inner, faiss.IndexIVF):
            inner.nprobe = self.params["nprobe"]
        elif isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = self.params["ef_search"]

    def _inner(self):
        import faiss

        return faiss.downcast_index(self._index.index if isinstance(self._index, faiss.IndexIDMap2) else self._index)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if not len(ids):
            return
        if self.kind is DenseKind.HNSW:  # HNSW graphs cannot drop nodes: rebuild from the kept vectors
            keep = np.setdiff1d(self.ids(), np.asarray(ids, np.int64))
            rebuilt = DenseIndex.build(self.dim, keep, self.vectors(keep), DenseKind.HNSW, **self.params)
            self._index = rebuilt._index
        elif self.kind is DenseKind.IVF_SQ8:
            import faiss

            ids = np.ascontiguousarray(ids, np.int64)
            self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))  # what a hashtable map takes
        else:
            self._index.remove_ids(np.asarray(ids, np.int64))

    def ids(self) -> np.ndarray:
        import faiss

        if self.kind is not DenseKind.IVF_SQ8:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._index.invlists  # an IVF keeps its ids in its inverted lists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in range(lists.nlist)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.size:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores, ids = self._index.search(np.ascontiguousarray(query.reshape(1, -1), np.float32), min(k, self.size))
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._index.reconstruct(int(i)) for i in ids])

    def scores(self, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Inner product of the query with each of `ids` (to fuse with keyword-only candidates)."""
        return self.vectors(ids) @ query.astype(np.float32) if len(ids) else np.zeros(0, np.float32)

    def memory_bytes(self) -> int:
        import faiss

        return int(faiss.serialize_index(self._index).size)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, **params) -> DenseIndex:
        import faiss

        index = faiss.read_index(str(path))
        inner = faiss.downcast_index(index.index if isinstance(index, faiss.IndexIDMap2) else index)
        kind = (
            DenseKind.IVF_SQ8
            if isinstance(inner, faiss.IndexIVF)
            else DenseKind.HNSW
            if isinstance(inner, faiss.IndexHNSW)
            else DenseKind.FLAT
        )
        return cls(index, kind, **params)
