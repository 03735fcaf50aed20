"""PDF with a text layer (pypdfium2, Apache-2.0/BSD): one paragraph per run of lines, page numbers kept.

PDF text comes as lines. Chinese lines break inside sentences, so lines are joined without a
space (a space stays between two Latin words); a line shorter than the page's usual line, or a
short line with no sentence punctuation (a heading), ends its paragraph. Lines that repeat at
the top or bottom of most pages (running headers, footers) and bare page numbers are dropped.
Pages without a text layer (scans) are rendered and read by OCR (`ocr.py`).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from ..documents import Document, DocumentError
from . import ocr
from .layout import TextBuilder, lines_to_paragraphs

_PAGE_NUMBER = re.compile(r"^[-—–\s]*(?:第\s*)?\d{1,4}\s*(?:页|/\s*\d{1,4})?[-—–\s]*$")


def read(path: Path, doc_id: str) -> list[Document]:
    import pypdfium2 as pdfium
    from tqdm import tqdm

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        reason = "it is encrypted (remove the password first)" if "password" in str(exc).lower() else str(exc)
        raise DocumentError(f"{path}: cannot open this PDF: {reason}.") from None
    pages, scanned = [], []
    try:
        for number, page in enumerate(tqdm(pdf, desc=f"reading {path.name}", unit="page", leave=False), 1):
            text = page.get_textpage().get_text_range()
            lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
            if not any(lines):  # no text layer: a scanned page
                lines = ocr.page_lines(np.asarray(page.render(scale=ocr.RENDER_SCALE).to_pil().convert("RGB")))
                scanned.append(number)
            pages.append(lines)
            page.close()
    finally:
        pdf.close()
    if not any(line for lines in pages for line in lines):
        raise DocumentError(f"{path}: no text found, neither a text layer nor by OCR.")
    furniture = _running_lines(pages)
    out = TextBuilder()
    for number, lines in enumerate(pages, 1):
        out.page = number
        kept = [ln for ln in lines if ln and not _PAGE_NUMBER.match(ln) and _shape(ln) not in furniture]
        for paragraph in lines_to_paragraphs(kept):
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
