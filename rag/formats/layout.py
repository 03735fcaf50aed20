"""Assemble a document's text from paragraphs, headings and pages, keeping where each came from."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from dataclasses import dataclass

from ..documents import Document, Location

_ENDS_SENTENCE = re.compile(r"[。！？!?；;：:…”」』）)]$")
_LATIN_END = re.compile(r"[A-Za-z0-9,.;:]$")
_LATIN_START = re.compile(r"^[A-Za-z0-9(]")


@dataclass(frozen=True)
class Line:
    """A line of a page: its text and the size of its characters (font size, or OCR box height)."""

    text: str
    size: float = 0.0


HEADING_SIZE = 1.2  # a line set this much larger than the page's body text is a heading


class TextBuilder:
    """Paragraphs separated by blank lines (what the chunker splits on); headings on their own
    line (the chunker takes a short line without sentence punctuation as the article's title)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.locations: list[Location] = []
        self.headings: list[tuple[int, str]] = []  # (level, text) path currently open
        self.page: int | None = None

    def heading(self, text: str, level: int = 1) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self.headings = [h for h in self.headings if h[0] < level] + [(level, text)]
        self.paragraph(text, heading=True)

    def paragraph(self, text: str, heading: bool = False) -> None:
        text = text.strip()
        if not text:
            return
        if self.parts:
            self._append("\n\n")
        start = self.size
        self._append(text)
        section = " / ".join(h for _, h in self.headings)
        self.locations.append(Location(start, self.size, self.page, section, heading))

    def add_page(self, lines: list[Line]) -> None:
        """A page's lines: a run of lines set larger than the page's body text is a heading (the
        larger, the higher its level); the other runs become paragraphs."""
        sizes: Counter[float] = Counter()
        for ln in lines:
            sizes[round(ln.size, 1)] += len(ln.text)
        body = sizes.most_common(1)[0][0] if sizes else 0.0

        def heading_size(ln: Line) -> float | None:
            return round(ln.size, 1) if body > 0 and ln.size >= HEADING_SIZE * body else None

        levels = sorted({s for ln in lines if (s := heading_size(ln)) is not None}, reverse=True)
        for size, group in itertools.groupby(lines, key=heading_size):
            texts = [ln.text for ln in group]
            if size is not None:
                self.heading(_join_all(texts), levels.index(size) + 1)
            else:
                for paragraph in lines_to_paragraphs(texts):
                    self.paragraph(paragraph)

    def _append(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def document(self, doc_id: str, title: str, source: str) -> Document:
        return Document(doc_id, "".join(self.parts), title, source, tuple(self.locations))


def lines_to_paragraphs(lines: list[str]) -> list[str]:
    """Lines of a page (PDF text layer or OCR) as paragraphs: joined without a space inside Chinese
    sentences; a line shorter than the page's usual one that ends a sentence, a very short line, or
    a short line without sentence punctuation (a heading) ends its paragraph."""
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


def _join_all(texts) -> str:
    out = ""
    for t in texts:
        out = _join(out, t)
    return out


def _join(left: str, right: str) -> str:
    if not left:
        return right
    space = " " if _LATIN_END.search(left) and _LATIN_START.match(right) else ""
    return left + space + right
