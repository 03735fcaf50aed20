"""Documents: read `.txt`, `.md` and `.jsonl` files and folders into `Document`s.

Chinese files often arrive as GBK/GB18030 rather than UTF-8, so decoding tries
UTF-8 (with or without BOM), UTF-16 with a BOM, then GB18030, and refuses bytes
that decode to nothing sensible. Unsupported and binary files are skipped with a
warning that names them; malformed input that the user asked for is an error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .paths import file_sha256

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
JSONL_SUFFIXES = {".jsonl"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}  # read by OCR
FORMAT_SUFFIXES = {".pdf", ".docx", ".html", ".htm"} | IMAGE_SUFFIXES  # rag.formats
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | JSONL_SUFFIXES | FORMAT_SUFFIXES
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


class DocumentError(ValueError):
    """A file the user gave cannot be read; the message names it and says what to do."""


@dataclass(frozen=True)
class Location:
    """Where `text[start:end]` of a document stands in the original file."""

    start: int
    end: int
    page: int | None = None  # 1-based page of a PDF
    section: str = ""  # heading path in a Word file or web page: "一、总体要求 / （一）目标"
    heading: bool = False  # this range is a heading itself (known from the file's structure)


@dataclass(frozen=True)
class LineBox:
    """Where `text[start:end]` (one line of a PDF page or a scan) was drawn: page and rectangle as
    fractions of the page's width and height, top-left origin, so any rendering scale can use it."""

    start: int
    end: int
    page: int
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    locations: tuple[Location, ...] = ()  # empty for plain text
    digest: str = ""  # SHA-256 of the file it was read from: `KnowledgeBase.sync` re-reads changed files only
    boxes: tuple[LineBox, ...] = ()  # PDF and image documents: where each line stands on its page

    def boxes_of(self, start: int, end: int) -> tuple[int | None, list[tuple[float, float, float, float]]]:
        """The page of `text[start:end]` and the rectangles covering it there (the first page it
        touches; part of a line gets the matching share of the line's width, which is exact for
        Chinese type, where every character is equally wide)."""
        page, rects = None, []
        for box in self.boxes:
            lo, hi = max(start, box.start), min(end, box.end)
            if lo >= hi or (page is not None and box.page != page):
                continue
            page = box.page
            width = (box.x1 - box.x0) / max(1, box.end - box.start)
            rects.append((box.x0 + width * (lo - box.start), box.y0, box.x0 + width * (hi - box.start), box.y1))
        return page, rects

    def locate(self, offset: int) -> Location | None:
        """The location holding character `offset`, if the reader recorded any."""
        for loc in self.locations:
            if loc.start <= offset < loc.end:
                return loc
        return None


def decode_bytes(data: bytes, name: str) -> str:
    """Decode a text file's bytes, or raise `DocumentError` naming the file."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                f"{name}: a UTF-16 file with a broken character at byte {exc.start}; re-save it as UTF-8."
            ) from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if len(_CONTROL.findall(text[:20000])) <= max(2, len(text[:20000]) // 1000):
            return text
    raise DocumentError(
        f"{name}: not readable text (tried UTF-8, UTF-16 with BOM and GB18030/GBK). "
        "Convert it to UTF-8, or leave it out."
    )


def looks_binary(data: bytes) -> bool:
    head = data[:8192]
    return b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))


def read_text_file(path: Path, doc_id: str) -> Document:
    data = path.read_bytes()
    if looks_binary(data):
        raise DocumentError(f"{path}: binary file, not text; .txt, .md, .jsonl, .pdf, .docx and .html are indexed.")
    return Document(doc_id=doc_id, text=decode_bytes(data, str(path)), source=str(path))


def read_jsonl(path: Path) -> list[Document]:
    """BEIR-shaped corpus: one `{"id" or "_id", "title", "text"}` object per line."""
    docs = []
    text = decode_bytes(path.read_bytes(), str(path))
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{path}, line {lineno}: not valid JSON ({exc.msg}).") from None
        if not isinstance(row, dict):
            raise DocumentError(f"{path}, line {lineno}: expected a JSON object with id, title and text.")
        doc_id = row.get("id", row.get("_id"))
        body = row.get("text")
        if doc_id is None or not isinstance(body, str):
            raise DocumentError(f'{path}, line {lineno}: each line needs an "id" (or "_id") and a string "text".')
        docs.append(Document(doc_id=str(doc_id), text=body, title=str(row.get("title") or ""), source=str(path)))
    return docs


def iter_files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            yield path


def read_path(path: Path, doc_id: str | None = None) -> list[Document]:
    """Documents in one file; `DocumentError` (naming the file) when it cannot be read."""
    path = Path(path)
    digest = file_sha256(path)
    return [dataclasses.replace(d, digest=digest) for d in _read_path(path, doc_id)]


def _read_path(path: Path, doc_id: str | None) -> list[Document]:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return read_jsonl(path)
    if suffix in TEXT_SUFFIXES:
        return [read_text_file(path, doc_id or path.name)]
    if suffix in FORMAT_SUFFIXES:
        from .formats import READERS

        return READERS[suffix](path, doc_id or path.name)
    raise DocumentError(
        f"{path}: unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}."
    )


def load_documents(sources: Iterable[str | Path]) -> list[Document]:
    """Read every supported file under `sources`.

    A missing path raises `FileNotFoundError`; a malformed JSONL file raises
    `DocumentError` with the line number; unsupported, binary or undecodable files
    are skipped with a warning that names them.
    """
    docs: list[Document] = []
    for source in sources:
        root = Path(source)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder. Check the path and try again.")
        for path in iter_files(root):
            explicit = path == root
            try:
                docs.extend(read_path(path, path.name if explicit else path.relative_to(root).as_posix()))
            except DocumentError as exc:
                if explicit and path.suffix.lower() in JSONL_SUFFIXES:
                    raise
                log.warning("skipped %s", exc)
    counts = Counter(d.doc_id for d in docs)
    if len(counts) != len(docs):
        dup = sorted(i for i, c in counts.items() if c > 1)[:5]
        raise DocumentError(f"duplicate document ids {dup}; give each document a unique id or file name.")
    return docs
