"""Versioned, atomic storage of a knowledge base on disk.

`<root>/CURRENT` names the live version folder, which holds `manifest.json`,
`documents.jsonl`, `chunks.jsonl`, `tokens.jsonl`, `sentences.npy`, `dense.faiss` and `bm25/`.
A save writes a new version folder, fsyncs it, then swaps `CURRENT` with an atomic rename
(as SQLite and Lucene commit), so an interrupted build leaves the previous version whole and
answering. One writer at a time: `write_lock` holds `<root>/write.lock` (Lucene's write.lock);
readers never lock. `<root>/originals/` keeps PDF and image files by content hash, for showing
a quote on its page.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunk_index import ChunkIndex, load_index
from .chunking import Chunk
from .config import Config, StoreKind
from .documents import Document, LineBox, Location
from .milvus_index import MilvusStoreError
from .paths import file_sha256

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WRITE_LOCK_TIMEOUT = 120.0  # seconds a writer waits for another to finish
_VERSION_NAME = re.compile(r"^v\d+$")
ORIGINALS = "originals"  # copies of PDF and image files, named by content hash
FILES = ("documents.jsonl", "chunks.jsonl", "tokens.jsonl", "sentences.npy")  # + the chunk index's own


class IndexMismatchError(RuntimeError):
    """An index that cannot be used as asked; the message says how to rebuild it."""


class IndexDamagedError(IndexMismatchError):
    """A file of the live version is missing, truncated or not what the manifest recorded."""


class WriterBusyError(RuntimeError):
    """Another process holds the knowledge base's write lock."""


class StoreWriteError(RuntimeError):
    """A save failed (disk full, read-only folder…); the previous version is untouched."""


@contextlib.contextmanager
def write_lock(root: Path, timeout: float = WRITE_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold `<root>/write.lock` (an OS file lock, released if the process dies)."""
    import fasteners

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreWriteError(f"{root}: cannot create the knowledge base folder ({exc.strerror}).") from exc
    lock = fasteners.InterProcessLock(str(root / "write.lock"))
    try:
        acquired = lock.acquire(timeout=timeout)
    except OSError as exc:  # a read-only folder cannot hold the lock file
        raise StoreWriteError(f"{root}: cannot write here ({exc.strerror}); check the folder's permissions.") from exc
    if not acquired:
        raise WriterBusyError(
            f"{root}: another process is writing this knowledge base (waited {timeout:.0f} s); "
            "try again when it has finished."
        )
    try:
        yield
    finally:
        lock.release()


@dataclass
class StoredIndex:
    """Everything a knowledge base keeps, keyed by chunk row id (rows survive removals)."""

    documents: dict[str, Document]
    chunks: dict[int, Chunk]
    tokens: dict[int, list[str]]
    sentence_vectors: dict[int, np.ndarray]  # per chunk: (sentences, dim) float16
    index: ChunkIndex  # where the rows' vectors and keywords are searched (local files or Milvus)
    manifest: dict
    version: str | None = None  # the version folder it was loaded from or saved as


def current_version(root: Path) -> str | None:
    """The live version folder's name; None when there is no knowledge base at `root`."""
    try:
        version = (root / "CURRENT").read_text("utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexDamagedError(
            f"{root}/CURRENT cannot be read ({exc}); rebuild: `rag index SRC... --out {root}`."
        ) from exc
    if not _VERSION_NAME.match(version):  # e.g. ../elsewhere: never follow a pointer out of the folder
        raise IndexDamagedError(f"{root}/CURRENT names {version[:40]!r}, not a version folder; rebuild it.")
    return version if (root / version).is_dir() else None


def read_manifest(root: Path) -> dict:
    version = current_version(root)
    if not version:
        raise FileNotFoundError(f"{root}: no knowledge base here. Build one with `rag index SRC... --out {root}`.")
    path = root / version / "manifest.json"
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexDamagedError(f"{path} is damaged ({exc}); rebuild: `rag index SRC... --out {root}`.") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict) or "dim" not in manifest:
        raise IndexDamagedError(f"{path} is not a knowledge-base manifest; rebuild: `rag index SRC... --out {root}`.")
    return manifest


def save(root: Path, stored: StoredIndex) -> str:
    """Write `stored` as a new version of `root`, make it the live one, and return its name.

    Call it holding `write_lock(root)`: then every other `.v*.tmp` folder is a dead writer's and
    is removed. On any OS error (disk full, read-only) the partial folder is removed, the live
    version is untouched, and a `StoreWriteError` says what happened.
    """
    version = f"v{time.time_ns()}"
    tmp = root / f".{version}.tmp"
    for stale in root.glob(".v*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        rows = sorted(stored.chunks)
        _write_jsonl(tmp / "documents.jsonl", (_document_row(d) for d in stored.documents.values()))
        _write_jsonl(tmp / "chunks.jsonl", ({"row": r, **stored.chunks[r].to_dict()} for r in rows))
        _write_jsonl(tmp / "tokens.jsonl", (stored.tokens[r] for r in rows))
        sentences = [stored.sentence_vectors[r] for r in rows]
        empty = np.zeros((0, stored.index.dim), np.float16)
        np.save(tmp / "sentences.npy", np.concatenate(sentences) if sentences else empty)
        entry = stored.index.save(tmp)
        originals = _copy_originals(root, stored.documents.values())
        files = FILES + stored.index.FILES
        manifest = {**stored.manifest, "store": entry, "files": {name: _digest(tmp / name) for name in files}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
        _fsync_tree(tmp)
        tmp.rename(root / version)
        _fsync_dir(root)
        pointer = root / f".CURRENT.{os.getpid()}"
        with open(pointer, "w", encoding="utf-8") as f:
            f.write(version)
            f.flush()
            os.fsync(f.fileno())
        old = _current_or_none(root)
        previous = _store_entry(root, old)
        os.replace(pointer, root / "CURRENT")  # the atomic switch
        _fsync_dir(root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if _current_or_none(root) != version:
            shutil.rmtree(root / version, ignore_errors=True)
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise StoreWriteError(f"could not save {root}: {reason}. The previous version is unchanged.") from exc
    try:
        stored.index.committed(previous)  # e.g. Milvus rows (or a collection) only the old version used
    except MilvusStoreError as exc:  # the new version is live; rows left behind are never shown
        log.warning("saved %s, but dropping its removed rows failed: %s", version, exc)
    if old and old != version:
        shutil.rmtree(root / old, ignore_errors=True)
    with contextlib.suppress(OSError):
        _drop_originals(root, originals)
    stored.manifest, stored.version = manifest, version
    return version


def check(root: Path) -> list[str]:
    """Problems with the live version of `root` (missing or changed files); empty when whole."""
    manifest = read_manifest(root)
    folder = root / str(current_version(root))
    recorded = manifest.get("files")
    if not recorded:
        return [f"{folder}: the manifest records no file hashes (saved by an older version); re-save to record them"]
    problems = []
    for name, want in recorded.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif _digest(path) != want:
            problems.append(f"{path}: {path.stat().st_size} bytes, not the {want['bytes']} recorded, or changed")
    try:
        stored = load(root)
        problems += stored.index.check(set(stored.chunks))
    except (IndexMismatchError, MilvusStoreError) as exc:
        problems.append(str(exc))
    return problems


def load(root: Path, config: Config | None = None) -> StoredIndex:
    """The live version of `root`; `config` gives the query-time search settings (nprobe, ef_search,
    Milvus credentials).

    A missing, truncated or garbled file is an `IndexDamagedError` naming it.
    """
    manifest = read_manifest(root)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{root} was built by an older format (version {manifest.get('format_version')}, this program "
            f"reads {FORMAT_VERSION}). Rebuild it: `rag index SRC... --out {root}`."
        )
    version = str(current_version(root))
    folder = root / version
    current = folder / "documents.jsonl"
    try:
        documents = {row["id"]: _document(row) for row in _read_jsonl(current)}
        current = folder / "sentences.npy"
        sentences = np.load(current)
        chunks: dict[int, Chunk] = {}
        sentence_vectors: dict[int, np.ndarray] = {}
        offset = 0
        current = folder / "chunks.jsonl"
        for row in _read_jsonl(current):
            r = row.pop("row")
            chunks[r] = Chunk.from_dict(row)
            sentence_vectors[r] = sentences[offset : offset + len(chunks[r].sentences)]
            offset += len(chunks[r].sentences)
        current = folder / "tokens.jsonl"
        token_lists = list(_read_jsonl(current))
        tokens = dict(zip(chunks, token_lists))
        entry = manifest.get("store", {})
        # what a failure below names: the local files, or the manifest's record of the Milvus collection
        current = folder / (
            "dense.faiss" if entry.get("kind", StoreKind.LOCAL.value) == StoreKind.LOCAL.value else "manifest.json"
        )
        rows = np.array(list(chunks), np.int64)
        index = load_index(folder, entry, rows, tokens, config or Config())
    except MilvusStoreError:
        raise
    except Exception as exc:  # json, numpy, faiss and bm25s each raise their own kinds for a damaged file
        raise IndexDamagedError(
            f"{current} is damaged or missing ({type(exc).__name__}: {str(exc)[:120]}); "
            f"rebuild: `rag index SRC... --out {root}`."
        ) from exc
    counts = {"chunks": len(chunks), "token lists": len(token_lists), "vectors": index.size}
    if (
        len(set(counts.values())) > 1
        or offset != len(sentences)
        or any(c.doc_id not in documents for c in chunks.values())
    ):
        detail = ", ".join(f"{v} {k}" for k, v in counts.items()) + f", {len(sentences)} sentence vectors for {offset}"
        raise IndexDamagedError(f"{folder} does not add up ({detail}); rebuild: `rag index SRC... --out {root}`.")
    return StoredIndex(documents, chunks, tokens, sentence_vectors, index, manifest, version)


def _document_row(d: Document) -> dict:
    row: dict[str, object] = {"id": d.doc_id, "title": d.title, "text": d.text, "source": d.source, "digest": d.digest}
    if d.locations:
        row["locations"] = [[loc.start, loc.end, loc.page, loc.section, loc.heading] for loc in d.locations]
    if d.boxes:
        row["boxes"] = [[b.start, b.end, b.page, *(round(v, 5) for v in (b.x0, b.y0, b.x1, b.y1))] for b in d.boxes]
    return row


def _document(row: dict) -> Document:
    locations = tuple(Location(*loc) for loc in row.get("locations", ()))
    boxes = tuple(LineBox(*b) for b in row.get("boxes", ()))
    return Document(
        row["id"], row["text"], row["title"], row.get("source", ""), locations, row.get("digest", ""), boxes
    )


def original(root: Path, doc: Document) -> Path | None:
    """The kept copy of a paged document's file (PDF, image), to show its pages; None if not kept."""
    path = root / ORIGINALS / _original_name(doc)
    return path if doc.digest and path.is_file() else None


def _original_name(doc: Document) -> str:
    return doc.digest + Path(doc.source).suffix.lower()


def _copy_originals(root: Path, documents: Iterable[Document]) -> set[str]:
    """Copy each paged document's file into `<root>/originals/`, named by content hash; return the
    names in use. Outside the version folders: a file is written once, not per save, and never
    half-replaced (copied to a temp name, checked, renamed)."""
    folder = root / ORIGINALS
    names = set()
    for d in documents:
        if not (d.boxes and d.digest):
            continue
        name = _original_name(d)
        names.add(name)
        target, source = folder / name, Path(d.source)
        if target.exists() or not source.is_file():
            continue
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        shutil.copyfile(source, tmp)
        if file_sha256(tmp) == d.digest:  # the file may have changed since it was read
            os.replace(tmp, target)
        else:
            tmp.unlink()
    return names


def _drop_originals(root: Path, keep: set[str]) -> None:
    """Remove kept files no document of the live version uses (best effort, under the write lock)."""
    folder = root / ORIGINALS
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)


def _store_entry(root: Path, version: str | None) -> dict | None:
    """The `store` record of a version's manifest (None when unreadable: nothing to clean up then)."""
    if not version:
        return None
    try:
        return json.loads((root / version / "manifest.json").read_text("utf-8")).get("store")
    except (OSError, ValueError, AttributeError):
        return None


def _current_or_none(root: Path) -> str | None:
    try:
        return current_version(root)
    except IndexDamagedError:
        return None


def _digest(path: Path) -> dict:
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Every file and folder under `root` on disk before the pointer switch names it."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
        else:
            _fsync_dir(path)
    _fsync_dir(root)


def _write_jsonl(path: Path, rows: Iterable) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> Iterator:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)
