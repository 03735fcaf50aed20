"""Chunk vectors and keywords in a Milvus collection (`Config(store="milvus", uri=...)`).

One collection per knowledge base, keyed by the chunk's row id (never reused), with the chunk's
document and chunk ids as scalar fields. The same code talks to a Milvus server
(`http://host:19530`) and to milvus-lite's local file: only `MilvusClient` calls documented for both.

Versions: a save inserts the new rows before `CURRENT` switches and deletes removed rows after
(`committed`), so a reader still on the old version keeps finding its rows; results are filtered
to the rows the reader's version holds (searches ask for a few more than needed). Rows a writer
inserted and then died before its switch are past the live version's `next_row` and are dropped
by the next writer (`discard_from`).

Keyword search, by `Config.milvus_keyword`:
- `tokens` (default): our jieba words + CJK bigrams (`keyword_index.ChineseTokenizer`), each chunk
  sent as a sparse vector of BM25 term weights (k1 1.5, b 0.75, the average length when written)
  and each question as IDF weights, searched by inner product: the local BM25 ranking, in Milvus.
- `bm25`: Milvus's own BM25 function over the chunk text with its jieba analyzer (words only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import threading
import time
import uuid
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .chunking import Chunk
from .config import Config, DenseKind, FusionMethod, MilvusKeyword, RetrievalMode, StoreKind
from .dense import choose_kind
from .keyword_index import bm25_idf
from .retriever import HybridRetriever, Ranked

BATCH = 1000  # entities per insert call (a gRPC message stays well under Milvus's 64 MB)
MAX_LIMIT = 16384  # the most hits one Milvus search returns
K1, B = 1.5, 0.75  # BM25, as bm25s and Milvus default
_SPARSE_DIMS = 2**32 - 1  # Milvus sparse indices are in [0, 2^32 - 1)
_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


class MilvusStoreError(RuntimeError):
    """Milvus cannot be reached or does not hold what the knowledge base needs; the message says what to do."""


def token_id(token: str) -> int:
    """A stable sparse dimension per token (CRC-32; no vocabulary to keep in step across writers)."""
    return zlib.crc32(token.encode("utf-8")) % _SPARSE_DIMS


def default_uri(path: Path | None) -> str:
    """milvus-lite's file next to the knowledge-base folder (`index/NAME.milvus.db`)."""
    if path is None:
        raise MilvusStoreError("a milvus store without a knowledge-base path needs `uri` (a server or a .db file)")
    return str(Path(path).resolve()) + ".milvus.db"


def collection_name(path: Path | None) -> str:
    """`rag_<folder>_<hash of the full path>_<build>`, in Milvus's alphabet: one collection per knowledge
    base, a new one when it is built afresh (the old version keeps answering from its own until the switch)."""
    build = uuid.uuid4().hex[:8]
    if path is None:
        return f"rag_memory_{build}"
    resolved = str(Path(path).resolve())
    slug = re.sub(r"[^A-Za-z0-9_]", "_", Path(resolved).name)[:40]
    return f"rag_{slug}_{hashlib.sha1(resolved.encode()).hexdigest()[:8]}_{build}"


def connect(uri: str, token: str | None) -> Any:
    """One client per (uri, credentials) in a process (milvus-lite allows one opener per file)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MilvusStoreError(
            "the milvus store needs pymilvus (and milvus-lite for a local file): pip install 'rag-qingdao[scale]'"
        ) from exc
    token = token or os.environ.get("RAG_MILVUS_TOKEN", "")
    key = (uri, token)
    if "://" not in uri:  # a milvus-lite file: its folder must exist
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    with _clients_lock:
        if key not in _clients:
            try:
                _clients[key] = MilvusClient(uri=uri, token=token)
            except Exception as exc:  # pymilvus raises its own kinds, and OSError for a lite file
                raise MilvusStoreError(
                    f"cannot reach Milvus at {uri} ({type(exc).__name__}: {str(exc)[:160]}); start the server "
                    "(docs/scale.md) or check --uri and the token."
                ) from exc
        return _clients[key]


def close_clients() -> None:
    """Close every client this process opened (a later `connect` opens afresh)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


class MilvusIndex:
    """The `ChunkIndex` of a knowledge base whose chunks are searched in Milvus."""

    kind = StoreKind.MILVUS
    FILES: tuple[str, ...] = ()  # everything is in the collection

    def __init__(
        self, client: Any, uri: str, collection: str, dim: int, config: Config, visible: np.ndarray, tokens: dict
    ):
        self.client = client
        self.uri = uri
        self.collection = collection
        self.dim = dim
        self._config = config
        self.mode = MilvusKeyword.parse(config.milvus_keyword)
        self._visible: set[int] = set(int(r) for r in visible)
        self._pending_deletes: list[int] = []
        self._document_frequency: Counter = Counter()
        self._average_length = 0.0
        self._count_tokens(tokens)
        self.dense = MilvusDense(self)
        self.keyword = MilvusKeywordSearch(self)

    def retriever(self) -> HybridRetriever:
        """Our fusion over Milvus's dense and keyword hits, or Milvus's own (`Config.fuse_in_milvus`)."""
        return MilvusFusedRetriever(self) if self._config.fuse_in_milvus else HybridRetriever(self.dense, self.keyword)

    @classmethod
    def create(cls, dim: int, config: Config, path: Path | None) -> MilvusIndex:
        uri = config.uri or default_uri(path)
        return cls(connect(uri, config.token), uri, collection_name(path), dim, config, np.zeros(0, np.int64), {})

    @classmethod
    def open(cls, entry: dict, rows: np.ndarray, tokens: dict, config: Config) -> MilvusIndex:
        uri, collection = entry["uri"], entry["collection"]
        config = dataclasses.replace(config, milvus_keyword=entry.get("keyword", config.milvus_keyword))  # as built
        index = cls(connect(uri, config.token), uri, collection, int(entry["dim"]), config, rows, tokens)
        if index._call("has_collection", collection):
            index._call("load_collection", collection)  # a server (or a new lite process) starts released
        elif len(rows):
            raise MilvusStoreError(
                f"Milvus at {uri} has no collection {collection} for this knowledge base's {len(rows)} chunks; "
                "rebuild it: `rag index SRC... --out PATH --store milvus --uri URI`."
            )
        return index

    # ---- what `ChunkIndex` asks ------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self._visible)

    def apply(self, rows, vectors, chunks: list[Chunk], tokens, removed) -> None:
        self._count_tokens(tokens)
        if len(rows):
            self._ensure_collection(len(self._visible) + len(rows))
            new_tokens = [tokens[int(r)] for r in rows]
            for start in range(0, len(rows), BATCH):
                end = start + BATCH
                self._call(
                    "insert",
                    self.collection,
                    self._entities(rows[start:end], vectors[start:end], chunks[start:end], new_tokens[start:end]),
                )
        self._visible.update(int(r) for r in rows)
        self._visible.difference_update(int(r) for r in removed)
        self._pending_deletes += [int(r) for r in removed]

    def _entities(self, rows, vectors, chunks: list[Chunk], token_lists: list[list[str]]) -> list[dict]:
        out = []
        for row, vector, chunk, toks in zip(rows, vectors, chunks, token_lists):
            entity = {
                "row": int(row),
                "vector": np.asarray(vector, np.float32),
                "doc_id": chunk.doc_id[:1024],
                "chunk_id": chunk.chunk_id[:1100],
            }
            if self.mode is MilvusKeyword.BM25:
                entity["text"] = chunk.indexed_text()[:60000]
            else:
                entity["tokens"] = document_weights(toks, self._average_length) or {0: 0.0}
            out.append(entity)
        return out

    def idf(self, tokens: set[str]) -> dict[str, float]:
        n = len(self._visible)
        return {t: bm25_idf(n, self._document_frequency.get(t, 0)) if n else 0.0 for t in tokens}

    def save(self, folder: Path) -> dict:
        if self._call("has_collection", self.collection):
            self._call("flush", self.collection)  # durable before the version naming these rows goes live
        return {
            "kind": self.kind.value,
            "uri": self.uri,
            "collection": self.collection,
            "dim": self.dim,
            "keyword": self.mode.value,
        }

    def committed(self, previous: dict | None = None) -> None:
        pending, self._pending_deletes = self._pending_deletes, []
        for start in range(0, len(pending), BATCH):
            self._call("delete", self.collection, filter=f"row in {pending[start : start + BATCH]}")
        if previous and previous.get("kind") == self.kind.value and previous.get("uri") == self.uri:
            old = previous.get("collection")
            if old and old != self.collection and self._call("has_collection", old):
                self._call("drop_collection", old)  # the knowledge base was built afresh

    def discard_from(self, row: int) -> None:
        if self._call("has_collection", self.collection):
            self._call("delete", self.collection, filter=f"row >= {int(row)}")

    def describe(self) -> dict:
        return {"kind": f"milvus {self._dense_index_type(len(self._visible)).lower()}", "uri": self.uri}

    def stored_rows(self, below: int | None = None) -> set[int]:
        """The rows the collection holds under `below` (default: past this version's highest row) —
        this version's, and any a newer version or a dead writer added in that range."""
        if not self._call("has_collection", self.collection):
            return set()
        below = max(self._visible, default=-1) + 1 if below is None else below
        rows: set[int] = set()
        for start in range(0, below, MAX_LIMIT):  # windows of row ids: exact, and no iterator needed
            got = self._call(
                "query",
                self.collection,
                filter=f"row >= {start} and row < {min(below, start + MAX_LIMIT)}",
                limit=MAX_LIMIT,
                output_fields=["row"],
            )
            rows.update(int(r["row"]) for r in got)
        return rows

    def check(self, rows: set[int]) -> list[str]:
        missing = rows - self.stored_rows()
        if not missing:
            return []
        return [
            f"Milvus collection {self.collection} at {self.uri} lacks {len(missing)} of the {len(rows)} chunks "
            f"(e.g. row {min(missing)}); rebuild: `rag index SRC... --out PATH --store milvus --uri {self.uri}`"
        ]

    def drop(self) -> None:
        """Delete the collection (the knowledge base is gone)."""
        if self._call("has_collection", self.collection):
            self._call("drop_collection", self.collection)

    # ---- Milvus -------------------------------------------------------------------------
    def _call(self, method: str, *args, **kwargs):
        """A client call; Milvus's errors become one kind that names the server and what to do."""
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except MilvusStoreError:
            raise
        except Exception as exc:
            raise MilvusStoreError(
                f"Milvus at {self.uri} failed on {method} ({type(exc).__name__}: {str(exc)[:200]}); "
                "check that it is running (docs/scale.md)."
            ) from exc

    def _count_tokens(self, tokens: dict) -> None:
        """Document frequencies for IDF (the answer step's and the question's sparse weights)."""
        self._document_frequency = Counter(t for toks in tokens.values() for t in set(toks))
        self._average_length = sum(len(toks) for toks in tokens.values()) / max(1, len(tokens))

    def _dense_index_type(self, size: int) -> str:
        kind = choose_kind(self._config.dense_index, size)  # the local store's rule, so both pick alike
        return {DenseKind.FLAT: "FLAT", DenseKind.IVF_SQ8: "IVF_SQ8", DenseKind.HNSW: "HNSW"}[kind]

    def _index_params(self, size: int):
        params = self.client.prepare_index_params()
        kind = self._dense_index_type(size)
        extra: dict = {}
        if kind == "IVF_SQ8":
            extra = {"nlist": max(16, int(4 * np.sqrt(size)))}  # as the local IVF-SQ8
        elif kind == "HNSW":
            extra = {"M": 32, "efConstruction": 200}
        params.add_index("vector", index_type=kind, metric_type="IP", params=extra)
        if self.mode is MilvusKeyword.BM25:
            params.add_index("bm25", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        else:
            params.add_index("tokens", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        return params

    def _ensure_collection(self, size: int) -> None:
        """Create the collection (index type by size), or rebuild its vector index when grown past the
        exact-search size."""
        if not self._call("has_collection", self.collection):
            self._call("create_collection", self.collection, schema=self._schema(), consistency_level="Strong")
            # sync=False: the server builds per segment in the background and `load` waits for it
            self._call("create_index", self.collection, self._index_params(size), sync=False)
            self._call("load_collection", self.collection)
            return
        wanted = self._dense_index_type(size)
        current = self._call("describe_index", self.collection, "vector").get("index_type")
        if current != wanted:
            self._call("release_collection", self.collection)
            self._call("drop_index", self.collection, "vector")
            params = self.client.prepare_index_params()
            vector_params = next(p for p in self._index_params(size) if p.field_name == "vector")
            params.add_index("vector", index_type=wanted, metric_type="IP", params=vector_params.params)
            self._call("create_index", self.collection, params, sync=False)
            self._call("load_collection", self.collection)
        else:
            schema = self._call("describe_collection", self.collection)
            dims = [f.get("params", {}).get("dim") for f in schema["fields"] if f["name"] == "vector"]
            if dims and int(dims[0]) != self.dim:
                raise MilvusStoreError(
                    f"collection {self.collection} at {self.uri} holds {dims[0]}-d vectors, not {self.dim}-d; "
                    "drop it or rebuild the knowledge base with the model it was built with."
                )

    def _schema(self):
        from pymilvus import DataType, Function, FunctionType

        schema = self.client.create_schema(auto_id=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("chunk_id", DataType.VARCHAR, max_length=1100)
        if self.mode is MilvusKeyword.BM25:
            schema.add_field(
                "text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params={"tokenizer": "jieba"}
            )
            schema.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function(
                    name="text_bm25",
                    function_type=FunctionType.BM25,
                    input_field_names=["text"],
                    output_field_names=["bm25"],
                )
            )
        else:
            schema.add_field("tokens", DataType.SPARSE_FLOAT_VECTOR)
        return schema

    def search(self, field: str, data: list, k: int, params: dict, also: np.ndarray | None = None):
        """(rows, scores) of the k best visible hits in `field`; over `also` only when given."""
        if not self._visible:  # nothing to find (the collection may not exist yet); a lost one is an error
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        extra: dict = {}
        if also is not None:
            if not len(also):
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            extra["filter"] = f"row in {[int(r) for r in also]}"
            limit = len(also)
        else:
            limit = min(MAX_LIMIT, 2 * k + 16)  # room for rows a newer version added, that this one must not see
        hits = self._call(
            "search",
            self.collection,
            data=data,
            anns_field=field,
            limit=limit,
            output_fields=["row"],
            search_params={"params": params},
            **extra,
        )[0]
        rows = np.array([h["row"] for h in hits], np.int64)
        # a BM25 metric is a similarity; milvus-lite reports it negated as a distance
        scores = np.abs(np.array([h["distance"] for h in hits], np.float32))
        keep = np.array([r in self._visible for r in rows.tolist()], bool)
        return rows[keep][: len(also) if also is not None else k], scores[keep][: len(also) if also is not None else k]


class MilvusDense:
    """Dense search over the collection's vectors (inner product of normalised vectors = cosine)."""

    def __init__(self, index: MilvusIndex):
        self._index = index

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        c = self._index._config
        params = {"nprobe": c.ivf_nprobe, "ef": max(c.hnsw_ef_search, k)}
        return self._index.search("vector", [np.asarray(query, np.float32)], k, params)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self._index.dim), np.float32)
        by_row = {}
        for start in range(0, len(ids), BATCH):  # a query's result is capped; ask in slices
            part = [int(i) for i in ids[start : start + BATCH]]
            got = self._index._call("query", self._index.collection, ids=part, output_fields=["vector"])
            by_row.update({int(g["row"]): np.asarray(g["vector"], np.float32) for g in got})
        return np.stack([by_row[int(i)] for i in ids])

    def scores(self, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return self.vectors(ids) @ np.asarray(query, np.float32) if len(ids) else np.zeros(0, np.float32)


class MilvusKeywordSearch:
    """Keyword search in the collection (see the module docstring for the two kinds)."""

    def __init__(self, index: MilvusIndex):
        self._index = index

    def query(self, query_tokens: list[str], text: str):
        """(field, search data) for the question; data None when no token is in the collection."""
        if self._index.mode is MilvusKeyword.BM25:
            return "bm25", [text or " ".join(query_tokens)]
        idf = self._index.idf(set(query_tokens))
        weights: dict[int, float] = {}
        for t in query_tokens:
            if idf[t] > 0 and self._index._document_frequency.get(t):
                weights[token_id(t)] = weights.get(token_id(t), 0.0) + idf[t]
        return "tokens", [weights] if weights else None

    def search(self, query_tokens: list[str], k: int, also: np.ndarray | None = None, text: str = ""):
        field, data = self.query(query_tokens, text)
        none = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if data is None:
            return none[0], none[1], np.zeros(len(also) if also is not None else 0, np.float32)
        rows, scores = self._index.search(field, data, k, {})
        also_scores = np.zeros(0, np.float32)
        if also is not None and len(also):
            found_rows, found = self._index.search(field, data, len(also), {}, also=np.asarray(also, np.int64))
            of = dict(zip(found_rows.tolist(), found.tolist()))
            also_scores = np.array([of.get(int(r), 0.0) for r in also], np.float32)
        keep = scores > 0
        return rows[keep], scores[keep], also_scores


def document_weights(tokens: list[str], average_length: float) -> dict[int, float]:
    """A chunk's BM25 term weights (the tf part; the question carries the IDF), by `token_id`."""
    counts = Counter(tokens)
    norm = K1 * ((1 - B) + B * len(tokens) / max(average_length, 1e-9))
    weights: dict[int, float] = {}
    for t, tf in counts.items():
        weights[token_id(t)] = weights.get(token_id(t), 0.0) + tf / (norm + tf)
    return weights


class MilvusFusedRetriever(HybridRetriever):
    """Hybrid retrieval fused inside Milvus (`hybrid_search` with `RRFRanker`, or `WeightedRanker` for
    minmax); dense and keyword modes search as `HybridRetriever` does. Hits carry only the fused score."""

    def __init__(self, index: MilvusIndex):
        super().__init__(index.dense, index.keyword)
        self._index = index
        self._keyword = index.keyword

    def retrieve(
        self,
        query_vector,
        query_tokens,
        k,
        mode=RetrievalMode.HYBRID,
        candidates=50,
        keyword_weight=0.5,
        fusion=FusionMethod.MINMAX,
        query_text="",
    ) -> Ranked:
        field, data = self._keyword.query(query_tokens, query_text)
        if mode is not RetrievalMode.HYBRID or query_vector is None or data is None or not self._index.size:
            return super().retrieve(query_vector, query_tokens, k, mode, candidates, keyword_weight, fusion, query_text)
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        t0 = time.perf_counter()
        n = max(k, candidates)
        c = self._index._config
        requests = [
            AnnSearchRequest(
                data=[np.asarray(query_vector, np.float32)],
                anns_field="vector",
                param={"params": {"nprobe": c.ivf_nprobe, "ef": max(c.hnsw_ef_search, n)}},
                limit=n,
            ),
            AnnSearchRequest(data=data, anns_field=field, param={"params": {}}, limit=n),
        ]
        ranker = (
            RRFRanker(60) if FusionMethod.parse(fusion) is FusionMethod.RRF else WeightedRanker(1.0, keyword_weight)
        )
        hits = self._index._call(
            "hybrid_search",
            self._index.collection,
            requests,
            ranker,
            limit=min(MAX_LIMIT, 2 * k + 16),
            output_fields=["row"],
        )[0]
        pairs = [(int(h["row"]), float(h["distance"])) for h in hits if int(h["row"]) in self._index._visible][:k]
        rows = np.array([r for r, _ in pairs], np.int64)
        fused = np.array([d for _, d in pairs], np.float32)
        nan = np.full(len(rows), np.nan)
        ranked = Ranked(rows, fused, nan, nan.copy())
        ranked.timings = {"dense": 0.0, "keyword": 0.0, "fusion": time.perf_counter() - t0}
        return ranked
