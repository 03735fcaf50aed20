"""Where chunk rows are searched: the `ChunkIndex` a knowledge base holds, chosen by `Config.store`.

- `local` (`LocalIndex`): FAISS (`dense.py`) and BM25 (`keyword_index.py`) files inside each
  saved version folder; the default, and right up to a few million chunks on one machine.
- `milvus` (`milvus_index.MilvusIndex`): one Milvus collection per knowledge base, on a server
  (`http://host:19530`) or in milvus-lite's local file, for stores past one machine.

Documents, chunks, their tokens and sentence vectors stay in the version folder either way, so
the answer step, citations and verbatim offsets do not change with the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from .chunking import Chunk
from .config import Config, StoreKind
from .dense import DenseIndex, choose_kind
from .keyword_index import KeywordIndex
from .retriever import DenseSearch, HybridRetriever, KeywordSearch


class ChunkIndex(Protocol):
    kind: StoreKind
    dim: int
    FILES: tuple[str, ...]  # what it writes into the version folder, hashed in the manifest

    @property
    def dense(self) -> DenseSearch: ...

    @property
    def keyword(self) -> KeywordSearch: ...

    @property
    def size(self) -> int: ...

    def apply(
        self,
        rows: np.ndarray,
        vectors: np.ndarray,
        chunks: list[Chunk],
        tokens: dict[int, list[str]],
        removed: np.ndarray,
    ) -> None:
        """Add `rows` (their vectors and chunks) and drop `removed`; `tokens` are every row's after the change."""

    def idf(self, tokens: set[str]) -> dict[str, float]: ...

    def retriever(self) -> HybridRetriever:
        """What a knowledge base searches through: our fusion over the two searches, or the store's own."""

    def save(self, folder: Path) -> dict:
        """Write what the version folder keeps of this index; return the manifest's `store` entry."""

    def committed(self, previous: dict | None = None) -> None:
        """The saved version is live (or, unsaved, the change applied): finish what had to wait for it.
        `previous` is the manifest `store` entry of the version it replaced."""

    def discard_from(self, row: int) -> None:
        """Drop rows from `row` on that no version holds (left by a writer that died before its switch)."""

    def describe(self) -> dict: ...

    def check(self, rows: set[int]) -> list[str]:
        """Problems with what the index holds for `rows` beyond the version folder's files."""


class LocalIndex:
    """FAISS + BM25 in the version folder (`dense.faiss`, `bm25/`)."""

    kind = StoreKind.LOCAL
    FILES: tuple[str, ...] = ("dense.faiss",)  # hashed in the manifest; bm25s writes its own folder

    def __init__(self, dense: DenseIndex, keyword: KeywordIndex, config: Config):
        self.dense = dense
        self.keyword = keyword
        self.dim = dense.dim
        self._config = config

    @classmethod
    def empty(cls, dim: int, config: Config) -> LocalIndex:
        return cls(DenseIndex.empty(dim, config.dense_index, **dense_params(config)), KeywordIndex([]), config)

    @classmethod
    def load(cls, folder: Path, rows: np.ndarray, config: Config) -> LocalIndex:
        dense = DenseIndex.load(folder / "dense.faiss", **dense_params(config))
        return cls(dense, KeywordIndex.load(folder / "bm25", rows), config)

    @property
    def size(self) -> int:
        return self.dense.size

    def apply(self, rows, vectors, chunks, tokens, removed) -> None:
        self.dense.remove(removed)
        self.dense.add(rows, vectors)
        wanted = choose_kind(self._config.dense_index, self.dense.size)
        if wanted != self.dense.kind:  # grown past the exact-search size: rebuild approximate
            ids = self.dense.ids()
            self.dense = DenseIndex.build(self.dim, ids, self.dense.vectors(ids), wanted, **dense_params(self._config))
        ordered = np.array(sorted(tokens), np.int64)
        self.keyword = KeywordIndex([tokens[int(r)] for r in ordered], ordered)

    def idf(self, tokens: set[str]) -> dict[str, float]:
        return self.keyword.idf(tokens)

    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.dense, self.keyword)

    def save(self, folder: Path) -> dict:
        self.dense.save(folder / "dense.faiss")
        self.keyword.save(folder / "bm25")
        return {"kind": self.kind.value}

    def committed(self, previous: dict | None = None) -> None:
        pass  # every change is in the version folder

    def discard_from(self, row: int) -> None:
        pass  # a dead writer's files died with its temporary folder

    def describe(self) -> dict:
        return {"kind": self.dense.kind.value, **self.dense.params}

    def check(self, rows: set[int]) -> list[str]:
        return []  # its files are hashed in the manifest


def dense_params(config: Config) -> dict:
    """Query-time ANN settings (IVF lists probed, HNSW candidate list)."""
    return {"nprobe": config.ivf_nprobe, "ef_search": config.hnsw_ef_search}


def empty_index(dim: int, config: Config, path: Path | None) -> ChunkIndex:
    """A new, empty index of the kind `config.store` names (a Milvus collection is created on first add)."""
    if config.store is StoreKind.MILVUS:
        from .milvus_index import MilvusIndex

        return MilvusIndex.create(dim, config, path)
    return LocalIndex.empty(dim, config)


def load_index(folder: Path, entry: dict, rows: np.ndarray, tokens: dict[int, list[str]], config: Config) -> ChunkIndex:
    """The index a saved version uses; `entry` is its manifest's `store` record (absent: local)."""
    kind = StoreKind.parse(entry.get("kind", StoreKind.LOCAL.value))
    if kind is StoreKind.MILVUS:
        from .milvus_index import MilvusIndex

        return MilvusIndex.open(entry, rows, tokens, config)
    return LocalIndex.load(folder, rows, config)
