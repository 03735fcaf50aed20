"""Versioned, atomic storage of a knowledge base on disk.

`<root>/CURRENT` names the live version folder, which holds `manifest.json`,
`documents.jsonl`, `chunks.jsonl`, `tokens.jsonl`, `sentences.npy`, `dense.faiss` and `bm25/`.
A save writes a new version folder, then swaps `CURRENT` with an atomic rename, so an
interrupted build leaves the previous version whole and answering.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunking import Chunk
from .dense import DenseIndex
from .documents import Document
from .keyword_index import KeywordIndex

FORMAT_VERSION = 1


class IndexMismatchError(RuntimeError):
    """An index that cannot be used as asked; the message says how to rebuild it."""


@dataclass
class StoredIndex:
    """Everything a knowledge base keeps, keyed by chunk row id (rows survive removals)."""

    documents: dict[str, Document]
    chunks: dict[int, Chunk]
    tokens: dict[int, list[str]]
    sentence_vectors: dict[int, np.ndarray]  # per chunk: (sentences, dim) float16
    dense: DenseIndex
    keyword: KeywordIndex  # over the rows in ascending order
    manifest: dict


def current_version(root: Path) -> str | None:
    try:
        version = (root / "CURRENT").read_text("utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return version if (root / version).is_dir() else None


def read_manifest(root: Path) -> dict:
    version = current_version(root)
    if not version:
        raise FileNotFoundError(f"{root}: no knowledge base here. Build one with `rag index SRC... --out {root}`.")
    return json.loads((root / version / "manifest.json").read_text("utf-8"))


def save(root: Path, stored: StoredIndex) -> Path:
    """Write `stored` as a new version of `root` and make it the live one."""
    root.mkdir(parents=True, exist_ok=True)
    version = f"v{time.time_ns()}"
    tmp = root / f".{version}.tmp"
    tmp.mkdir()
    rows = sorted(stored.chunks)
    _write_jsonl(
        tmp / "documents.jsonl",
        ({"id": d.doc_id, "title": d.title, "text": d.text, "source": d.source} for d in stored.documents.values()),
    )
    _write_jsonl(tmp / "chunks.jsonl", ({"row": r, **stored.chunks[r].to_dict()} for r in rows))
    _write_jsonl(tmp / "tokens.jsonl", (stored.tokens[r] for r in rows))
    sentences = [stored.sentence_vectors[r] for r in rows]
    np.save(
        tmp / "sentences.npy", np.concatenate(sentences) if sentences else np.zeros((0, stored.dense.dim), np.float16)
    )
    stored.dense.save(tmp / "dense.faiss")
    stored.keyword.save(tmp / "bm25")
    (tmp / "manifest.json").write_text(json.dumps(stored.manifest, ensure_ascii=False, indent=2), "utf-8")
    tmp.rename(root / version)
    pointer = root / f".CURRENT.{os.getpid()}"
    pointer.write_text(version, "utf-8")
    old = current_version(root)
    os.replace(pointer, root / "CURRENT")  # the atomic switch
    if old and old != version:
        shutil.rmtree(root / old, ignore_errors=True)
    for stale in root.glob(".v*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    return root / version


def load(root: Path, **dense_params) -> StoredIndex:
    """The live version of `root`; `dense_params` are query-time FAISS settings (nprobe, ef_search)."""
    manifest = read_manifest(root)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{root} was built by an older format (version {manifest.get('format_version')}, this program "
            f"reads {FORMAT_VERSION}). Rebuild it: `rag index SRC... --out {root}`."
        )
    folder = root / str(current_version(root))
    documents = {
        row["id"]: Document(row["id"], row["text"], row["title"], row.get("source", ""))
        for row in _read_jsonl(folder / "documents.jsonl")
    }
    sentences = np.load(folder / "sentences.npy")
    chunks: dict[int, Chunk] = {}
    sentence_vectors: dict[int, np.ndarray] = {}
    offset = 0
    for row in _read_jsonl(folder / "chunks.jsonl"):
        r = row.pop("row")
        chunks[r] = Chunk.from_dict(row)
        sentence_vectors[r] = sentences[offset : offset + len(chunks[r].sentences)]
        offset += len(chunks[r].sentences)
    tokens = dict(zip(chunks, _read_jsonl(folder / "tokens.jsonl")))
    return StoredIndex(
        documents,
        chunks,
        tokens,
        sentence_vectors,
        DenseIndex.load(folder / "dense.faiss", **dense_params),
        KeywordIndex.load(folder / "bm25", len(chunks)),
        manifest,
    )


def _write_jsonl(path: Path, rows: Iterable) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> Iterator:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)
