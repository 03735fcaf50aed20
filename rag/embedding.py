"""Embeddings with sentence-transformers: query vectors, chunk vectors, sentence vectors.

Queries and documents go through `encode_query` / `encode_document`, so each model's
own prompts apply (`query: `/`passage: ` for e5, the retrieval instruction for bge).

Sentence vectors come free with the chunk pass ("late chunking"): the token
embeddings of a chunk are mean-pooled over each sentence's tokens. The composer uses
them to find the answering sentence without a second encoder pass.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL, EncoderBackend


class ModelLoadError(RuntimeError):
    pass


@lru_cache(maxsize=4)
def load_model(name: str, device: str = "cpu", max_seq_length: int = 512):
    """A SentenceTransformer, loaded once per process; `default` is the offline e5-small."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from . import offline_model

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    hf_logging.disable_progress_bar()  # the weight-loading bar is noise in a CLI or chat app
    path = str(offline_model.ensure_model()) if name == DEFAULT_MODEL else name
    try:
        model = SentenceTransformer(path, device=device)
    except Exception as exc:  # the library raises OSError, ValueError or HF errors here
        raise ModelLoadError(
            f"could not load embedding model {name!r}: {exc}. Give a local sentence-transformers folder, "
            f"a model already in the Hugging Face cache (set HF_HUB_OFFLINE=1 to use it offline), "
            f"or use model={DEFAULT_MODEL!r} for the bundled offline model."
        ) from exc
    model.max_seq_length = min(max_seq_length, model.max_seq_length or max_seq_length)
    return model


@dataclass
class EncodedChunks:
    vectors: np.ndarray  # (n_chunks, dim) float32, normalised
    sentence_vectors: list[np.ndarray]  # per chunk: (n_sentences, dim) float16


def model_folder(name: str) -> Path:
    """The local sentence-transformers folder for `name` (the ONNX backends need one)."""
    from . import offline_model

    if name == DEFAULT_MODEL:
        return offline_model.ensure_model()
    if Path(name).is_dir():
        return Path(name)
    raise ModelLoadError(
        f"the ONNX backends need a local model folder, and {name!r} is not one; download the model to a "
        f"folder and give its path, or use backend='torch'."
    )


class Encoder:
    """Query, chunk and sentence vectors from one model, by sentence-transformers (torch) or ONNX Runtime.

    >>> enc = Encoder("default", backend="onnx-int8")          # doctest: +SKIP
    >>> enc.encode_queries(["青岛进出口总值是多少？"]).shape     # doctest: +SKIP
    (1, 384)
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        device: str = "cpu",
        max_seq_length: int = 512,
        backend: str | EncoderBackend = EncoderBackend.TORCH,
    ):
        backend = EncoderBackend.parse(backend)
        self.model_name, self.device, self.max_seq_length, self.backend = model_name, device, max_seq_length, backend
        self._st = None
        self._onnx = None
        if backend is EncoderBackend.TORCH:
            self._st = load_model(model_name, device, max_seq_length)
            self.dim = int(self._st.get_embedding_dimension())
            self.prompts = self._st.prompts or {}
        else:
            from .onnx_backend import OnnxModel

            self._onnx = OnnxModel(model_folder(model_name), backend, max_seq_length)
            self.dim = self._onnx.dim
            self.prompts = self._onnx.prompts

    @property
    def model(self):
        """The SentenceTransformer (loaded on first use when the ONNX backend serves queries)."""
        if self._st is None:
            self._st = load_model(self.model_name, self.device, self.max_seq_length)
        return self._st

    def encode_queries(self, queries: list[str], batch_size: int = 32) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.encode(queries, self.prompts.get("query", ""), batch_size)
        vecs = self.model.encode_query(queries, batch_size=batch_size, normalize_embeddings=True)
        return np.asarray(vecs, dtype=np.float32)

    def encode_documents(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        """Plain document vectors (the encoder's own throughput, without sentence vectors)."""
        if self._onnx is not None:
            return self._onnx.encode(texts, self.document_prompt(), batch_size)
        return np.asarray(
            self.model.encode_document(texts, batch_size=batch_size, normalize_embeddings=True), np.float32
        )

    def document_prompt(self) -> str:
        for name in ("document", "passage", "corpus"):
            if name in self.prompts:
                return self.prompts[name]
        return ""

    def encode_chunks(
        self,
        texts: list[str],
        sentence_spans: list[list[tuple[int, int]]],
        batch_size: int = 16,
        progress: bool = False,
    ) -> EncodedChunks:
        """Chunk vectors plus one late-chunked vector per sentence span of each text."""
        if not texts:
            return EncodedChunks(np.zeros((0, self.dim), np.float32), [])
        prompt = self.document_prompt()
        vectors = np.zeros((len(texts), self.dim), np.float32)
        sentence_vectors: list = [None] * len(texts)
        for i, tokens, offsets, pooled in self._token_outputs(texts, prompt, batch_size, progress):
            vectors[i] = pooled
            sentence_vectors[i] = _pool_spans(tokens, offsets, sentence_spans[i], len(prompt), pooled)
        return EncodedChunks(vectors, sentence_vectors)

    def _token_outputs(self, texts, prompt, batch_size, progress):
        """(index, token embeddings, char offsets, normalised chunk vector) for each text."""
        if self._onnx is not None:
            from tqdm import tqdm

            with tqdm(total=len(texts), disable=not progress, desc="encoding chunks") as bar:
                for out in self._onnx.forward([prompt + t for t in texts], batch_size):
                    bar.update(1)
                    yield out
            return
        outputs = self.model.encode_document(
            texts, batch_size=batch_size, output_value=None, show_progress_bar=progress
        )
        encoded = self.model.tokenizer(
            [prompt + t for t in texts],
            return_offsets_mapping=True,
            truncation=True,
            max_length=self.model.max_seq_length,
        )
        for i, out in enumerate(outputs):
            tokens = out["token_embeddings"].float().numpy()
            offsets = np.asarray(encoded["offset_mapping"][i])
            n = min(len(offsets), len(tokens))  # token embeddings may carry batch padding
            pooled = out["sentence_embedding"].float().numpy()
            yield i, tokens[:n], offsets[:n], unit_vector(pooled)


_shared: dict[tuple, Encoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(model_name: str, device: str, max_seq_length: int, backend: str | EncoderBackend) -> Encoder:
    """One `Encoder` per (model, device, length, backend) in a process: knowledge bases share it
    (each would otherwise hold its own ~470 MB copy)."""
    key = (model_name, device, max_seq_length, EncoderBackend.parse(backend))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Encoder(*key)
        return _shared[key]


def unit_vector(vec: np.ndarray) -> np.ndarray:
    """`vec` scaled to length 1 (inner product = cosine); a zero vector stays zero."""
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


def _pool_spans(tokens, offsets, spans, shift, fallback) -> np.ndarray:
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = ends > starts  # special tokens have empty offsets
    out = np.empty((len(spans), tokens.shape[1]), np.float32)
    for j, (a, b) in enumerate(spans):
        mask = real & (starts < b + shift) & (ends > a + shift)
        vec = tokens[mask].mean(axis=0) if mask.any() else fallback  # truncated away: use the chunk
        out[j] = unit_vector(vec)
    return out.astype(np.float16)
