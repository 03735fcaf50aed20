"""PDF with a text layer (pypdfium2, Apache-2.0/BSD): one paragraph per run of lines, page numbers kept.

Tables drawn with ruling lines become rows of cells: on a page with enough vector paths to hold a
table, pdfplumber (MIT) finds the tables and their cells, and the rows replace the text lines
inside each table.

PDF text comes as lines. A run of lines set larger than the page's body text is a heading (so
chunks know their titles); Chinese lines break inside sentences, so the other lines are joined
without a space (a space stays between two Latin words) and a line shorter than the page's usual
line ends its paragraph. Lines that repeat at
the top or bottom of most pages (running headers, footers) and bare page numbers are dropped.
Pages without a text layer (scans) are rendered and read by OCR (`ocr.py`).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..documents import Document, DocumentError
from . import ocr
from .layout import CELL_SEPARATOR, Line, TextBuilder, join_lines

_PAGE_NUMBER = re.compile(r"^[-—–\s]*(?:第\s*)?\d{1,4}\s*(?:页|/\s*\d{1,4})?[-—–\s]*$")


def read(path: Path, doc_id: str) -> list[Document]:
    import pypdfium2 as pdfium
    from tqdm import tqdm

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        reason = "it is encrypted (remove the password first)" if "password" in str(exc).lower() else str(exc)
        raise DocumentError(f"{path}: cannot open this PDF: {reason}.") from None
    pages: list[list[Line]] = []
    tables = _TableFinder(path)
    try:
        for index, page in enumerate(tqdm(pdf, desc=f"reading {path.name}", unit="page", leave=False)):
            lines = _text_layer_lines(page)
            if not lines:  # no text layer: a scanned page
                lines = ocr.page_lines(np.asarray(page.render(scale=ocr.RENDER_SCALE).to_pil().convert("RGB")))
            elif _ruled(page):
                lines = tables.rows_in_place(index, lines)
            pages.append(lines)
            page.close()
    finally:
        pdf.close()
        tables.close()
    if not any(pages):
        raise DocumentError(f"{path}: no text found, neither a text layer nor by OCR.")
    furniture = _running_lines([[ln.text for ln in lines] for lines in pages])
    out = TextBuilder()
    for number, lines in enumerate(pages, 1):
        out.page = number
        out.add_page([ln for ln in lines if not _PAGE_NUMBER.match(ln.text) and _shape(ln.text) not in furniture])
    return [out.document(doc_id, "", str(path))]  # chunks take their titles from heading lines


def _text_layer_lines(page) -> list[Line]:
    """The page's text lines with each line's largest font size and its box (pdfium counts every
    character of the text it returns, line breaks included, so sizes and boxes line up with the text)."""
    import pypdfium2.raw as raw

    width, height = page.get_size()
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    lines, pos = [], 0
    for raw_line in text.split("\r\n"):
        chars = range(pos, pos + len(raw_line))
        pos += len(raw_line) + 2
        if not raw_line.strip():
            continue
        sizes = [raw.FPDFText_GetFontSize(textpage, i) for i in chars]
        # char boxes are (left, bottom, right, top) in PDF points from the bottom-left corner
        boxes = [b for i in chars if (b := textpage.get_charbox(i)) and b[2] > b[0]]
        box = None
        if boxes and width > 0 and height > 0:
            left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
            right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
            box = (left / width, 1 - top / height, right / width, 1 - bottom / height)
        lines.append(Line(raw_line.strip(), max(sizes, default=0.0), box))
    textpage.close()
    return lines


TABLE_PATHS = 4  # a ruled table has at least this many vector paths (its rules) on the page


def _ruled(page) -> bool:
    import pypdfium2.raw as raw

    paths = page.get_objects(filter=(raw.FPDF_PAGEOBJ_PATH,), max_depth=1)
    return sum(1 for _ in itertools.islice(paths, TABLE_PATHS)) >= TABLE_PATHS


class _TableFinder:
    """pdfplumber's table finder (ruling lines → cells), opened only if a page may hold a table."""

    def __init__(self, path: Path):
        self.path = path
        self.pdf: Any = None

    def rows_in_place(self, index: int, lines: list[Line]) -> list[Line]:
        """`lines` with those inside a table replaced by the table's rows (one Line with cells each)."""
        import pdfplumber

        if self.pdf is None:
            self.pdf = pdfplumber.open(self.path)
        page = self.pdf.pages[index]
        found = []
        for table in page.find_tables():
            x0, top, x1, bottom = table.bbox
            rows = []
            for row, cells in zip(table.rows, table.extract()):
                texts = tuple(dict.fromkeys(t for c in cells if c and (t := join_lines(c.splitlines()))))
                if texts:
                    rx0, rtop, rx1, rbottom = row.bbox
                    box = (rx0 / page.width, rtop / page.height, rx1 / page.width, rbottom / page.height)
                    rows.append((box, texts))
            found.append(((x0 / page.width, top / page.height, x1 / page.width, bottom / page.height), rows))
        out: list[Line] = []
        emitted: set[int] = set()
        for ln in lines:
            inside = next((i for i, (bbox, _) in enumerate(found) if ln.box and _centre_in(ln.box, bbox)), None)
            if inside is None:
                out.append(ln)
            elif inside not in emitted:
                emitted.add(inside)
                out += [Line(CELL_SEPARATOR.join(cells), ln.size, box, cells) for box, cells in found[inside][1]]
        return out

    def close(self) -> None:
        if self.pdf is not None:
            self.pdf.close()


def _centre_in(box: tuple[float, float, float, float], bbox: tuple[float, float, float, float]) -> bool:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bbox[0] <= x <= bbox[2] and bbox[1] <= y <= bbox[3]


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
