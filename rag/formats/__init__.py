"""Readers for documents other than plain text: PDF (text layer, or OCR for scanned pages), Word
`.docx`, saved web pages, and images (OCR).

Each reader returns `Document`s whose `text` is exactly what gets quoted, plus `locations`:
which character ranges came from which page (PDF) or under which heading path (Word, HTML), so a
citation can say where its quote stands in the original. `documents.read_path` dispatches here
by suffix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..documents import Document
from . import docx, html, ocr, pdf

READERS: dict[str, Callable[[Path, str], list[Document]]] = {
    ".pdf": pdf.read,
    ".docx": docx.read,
    ".html": html.read,
    ".htm": html.read,
    **dict.fromkeys(ocr.IMAGE_SUFFIXES, ocr.read_image),
}
