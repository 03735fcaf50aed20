"""PDF with a text layer (pypdfium2, Apache-2.0/BSD): one paragraph per run of lines, page numbers kept.

PDF text comes as lines. Chinese lines break inside sentences, so lines are joined without a
space (a space stays between two Latin words); a line shorter than the page's usual line, or a
short line with no sentence punctuation (a heading), ends its paragraph. Lines that repeat at
the top or bottom of most pages (running headers, footers) and bare page numbers are dropped.
Pages without a text layer (scans) are named: OCR is not part of this reader.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from pathlib import Path

from ..documents import Document, DocumentError
from .layout import TextBuilder

_PAGE_NUMBER = re.compile(r"^[-—–\s]*(?:第\s*)?\d{1,4}\s*(?:页|/\s*\d{1,4})?[-—–\s]*$")
_ENDS_SENTENCE = re.compile(r"[。！？!?；;：:…”」』）)]$")
_LATIN_END = re.compile(r"[A-Za-z0-9,.;:]$")
_LATIN_START = re.compile(r"^[A-Za-z0-9(]")


def read(path: Path, doc_id: str) -> list[Document]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        reason = "it is encrypted (remove the password first)" if "password" in str(exc).lower() else str(exc)
        raise DocumentError(f"{path}: cannot open this PDF: {reason}.") from None
    pages = []
    try:
        for page in pdf:
            text = page.get_textpage().get_text_range()
            pages.append([line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")])
    finally:
        pdf.close()
    if not any(line for lines in pages for line in lines):
        raise DocumentError(f"{path}: no text layer (a scanned PDF?); OCR it first, or leave it out.")
    furniture = _running_lines(pages)
    out = TextBuilder()
    for number, lines in enumerate(pages, 1):
        out.page = number
        kept = [ln for ln in lines if ln and not _PAGE_NUMBER.match(ln) and _shape(ln) not in furniture]
        for paragraph in _paragraphs(kept):
            out.paragraph(paragraph)
    return [out.document(doc_id, "", str(path))]  # chunks take their titles from heading lines


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", line)


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Lines (digits ignored) at the top or bottom of at least half the pages, when there are 3+."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        body = [ln for ln in lines if ln]
        seen.update({_shape(ln) for ln in body[:2] + body[-2:]})
    return {shape for shape, n in seen.items() if n >= max(3, len(pages) // 2)}


def _paragraphs(lines: list[str]) -> list[str]:
    if not lines:
        return []
    usual = statistics.median(len(ln) for ln in lines)
    out, current = [], ""
    for line in lines:
        current = _join(current, line)
        short = len(line) < 0.85 * usual
        heading = len(line) <= 30 and not _ENDS_SENTENCE.search(line) and short
        if heading or (short and _ENDS_SENTENCE.search(line)) or (short and len(line) < 0.5 * usual):
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def _join(left: str, right: str) -> str:
    if not left:
        return right
    space = " " if _LATIN_END.search(left) and _LATIN_START.match(right) else ""
    return left + space + right
