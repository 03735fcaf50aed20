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

import numpy as np

KINDS = ("auto", "flat", "ivf-sq8", "hnsw")
AUTO_APPROXIMATE_FROM = 100_000


def choose_kind(kind: str, size: int) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown dense index kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "ivf-sq8" if size >= AUTO_APPROXIMATE_FROM else "flat"


class DenseIndex:
    """Inner-product search keyed by chunk row ids (so rows can be removed)."""

    def __init__(self, dim: int, kind: str = "flat", nprobe: int = 32, ef_search: int = 128, hnsw_m: int = 32):
        import faiss

        self.dim, self.kind = dim, kind
        self.params = {"nprobe": nprobe, "ef_search": ef_search, "hnsw_m": hnsw_m}
        if kind == "flat":
            inner = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        elif kind == "ivf-sq8":
            inner = None  # needs training data: see `build`
        else:
            raise ValueError(f"unknown dense index kind {kind!r}; choose flat, ivf-sq8 or hnsw")
        self._index = faiss.IndexIDMap2(inner) if inner is not None else None
        self._apply_params()

    @classmethod
    def build(cls, dim: int, ids: np.ndarray, vectors: np.ndarray, kind: str = "auto", **params) -> "DenseIndex":
        """An index of `kind` holding `vectors` (IVF lists are trained on them)."""
        import faiss

        kind = choose_kind(kind, len(ids))
        index = cls(dim, "flat" if kind == "ivf-sq8" else kind, **params)
        if kind == "ivf-sq8":
            nlist = max(16, int(4 * math.sqrt(len(ids))))
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                faiss.METRIC_INNER_PRODUCT)
            sample = vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)]
            ivf.train(np.ascontiguousarray(sample, np.float32))
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
            index.kind = "ivf-sq8"
            index._index = ivf  # IVF keeps the ids itself
            index._apply_params()
        index.add(ids, vectors)
        return index

    def _apply_params(self) -> None:
        import faiss

        if self._index is None:
            return
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
        if self.kind == "hnsw":  # HNSW graphs cannot drop nodes: rebuild from the kept vectors
            keep = np.setdiff1d(self.ids(), np.asarray(ids, np.int64))
            rebuilt = DenseIndex.build(self.dim, keep, self.vectors(keep), "hnsw", **self.params)
            self._index = rebuilt._index
        elif self.kind == "ivf-sq8":
            import faiss

            ids = np.ascontiguousarray(ids, np.int64)
            self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))  # what a hashtable map takes
        else:
            self._index.remove_ids(np.asarray(ids, np.int64))

    def ids(self) -> np.ndarray:
        import faiss

        if self.kind != "ivf-sq8":
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
    def load(cls, path: Path, **params) -> "DenseIndex":
        import faiss

        index = cls.__new__(cls)
        index._index = faiss.read_index(str(path))
        index.dim = index._index.d
        inner = index._inner()
        index.kind = "ivf-sq8" if isinstance(inner, faiss.IndexIVF) else "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"
        defaults = {"nprobe": 32, "ef_search": 128, "hnsw_m": 32}
        index.params = {**defaults, **params}
        index._apply_params()
        return index
