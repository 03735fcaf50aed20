"""Assemble a document's text from paragraphs, headings and pages, keeping where each came from."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from dataclasses import dataclass

from ..documents import Document, LineBox, Location

_ENDS_SENTENCE = re.compile(r"[。！？!?；;：:…”」』）)]$")
_LATIN_END = re.compile(r"[A-Za-z0-9,.;:]$")
_LATIN_START = re.compile(r"^[A-Za-z0-9(]")


@dataclass(frozen=True)
class Line:
    """A line of a page: its text, the size of its characters (font size; 0 when unknown) and its
    rectangle on the page (x0, y0, x1, y1 as fractions of the page, top-left origin)."""

    text: str
    size: float = 0.0
    box: tuple[float, float, float, float] | None = None
    cells: tuple[str, ...] = ()  # a table row: its cells, left to right (the row is its own paragraph)


CELL_SEPARATOR = "｜"  # between the cells of a table row, in every reader
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
        self.boxes: list[LineBox] = []
        self._open = False  # the last page ended inside a paragraph (full last line, no sentence end)

    def heading(self, text: str, level: int = 1) -> int:
        """Start a section; returns where its text starts in the document (-1 when empty)."""
        text = " ".join(text.split())
        if not text:
            return -1
        self.headings = [h for h in self.headings if h[0] < level] + [(level, text)]
        return self.paragraph(text, heading=True)

    def paragraph(self, text: str, heading: bool = False, continues: bool = False) -> int:
        """Add a paragraph, or with `continues` the rest of the last one (it ran over a page
        break); returns where the text starts in the document (-1 when empty)."""
        text = text.strip()
        if not text:
            return -1
        if continues and self.parts:
            self._append(_separator(self.parts[-1], text))
        elif self.parts:
            self._append("\n\n")
        start = self.size
        self._append(text)
        section = " / ".join(h for _, h in self.headings)
        self.locations.append(Location(start, self.size, self.page, section, heading))
        return start

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
        body_lines = [len(ln.text) for ln in lines if heading_size(ln) is None and not ln.cells]
        usual = statistics.median(body_lines) if body_lines else 0
        continues, last = self._open, None
        for size, run in itertools.groupby(lines, key=heading_size):
            group = list(run)
            if size is not None:
                text, offsets = _join_all([ln.text for ln in group])
                self._place(group, offsets, self.heading(text, levels.index(size) + 1), text)
                continues, last = False, None
                continue
            for part in _paragraph_runs(group):
                last = group[part[-1]]
                if last.cells:  # a table row: its cells as the Word reader joins them
                    text, offsets = CELL_SEPARATOR.join(last.cells), [0]
                    start = self.paragraph(text)
                else:
                    text, offsets = _join_all([group[i].text for i in part])
                    start = self.paragraph(text, continues=continues)
                self._place([group[i] for i in part], offsets, start, text)
                continues = False
        # a paragraph runs on over the page break when the page's last line is full and unfinished
        self._open = bool(
            last and not last.cells and len(last.text) >= 0.85 * usual and not _ENDS_SENTENCE.search(last.text)
        )

    def _place(self, lines: list[Line], offsets: list[int], start: int, text: str) -> None:
        """Record each line's box over its piece of the paragraph (the text must be as joined)."""
        if start < 0 or self.page is None or self.parts[-1] != text:
            return  # nothing added, or heading whitespace collapsed: no exact places to record
        for ln, offset, end in zip(lines, offsets, [*offsets[1:], len(text)], strict=True):
            if ln.box is not None:
                self.boxes.append(LineBox(start + offset, start + end, self.page, *ln.box))

    def _append(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def document(self, doc_id: str, title: str, source: str) -> Document:
        return Document(doc_id, "".join(self.parts), title, source, tuple(self.locations), boxes=tuple(self.boxes))


def _paragraph_runs(lines: list[Line]) -> list[list[int]]:
    """Which lines make each paragraph: a table row stands alone; a short line without sentence
    punctuation after one that ends a sentence is a heading and stands alone; a line shorter than
    the page's usual one that ends a sentence, a very short line, or a heading ends its paragraph."""
    if not lines:
        return []
    usual = statistics.median(len(ln.text) for ln in lines)
    out: list[list[int]] = []
    current: list[int] = []
    for i, ln in enumerate(lines):
        if ln.cells:
            out += [current, [i]] if current else [[i]]
            current = []
            continue
        line = ln.text
        short = len(line) < 0.85 * usual
        heading = len(line) <= 30 and not _ENDS_SENTENCE.search(line) and short
        if heading and current and _ENDS_SENTENCE.search(lines[current[-1]].text):
            out.append(current)  # a full last line that ended its sentence: the heading starts anew
            current = []
        current.append(i)
        if heading or (short and _ENDS_SENTENCE.search(line)) or (short and len(line) < 0.5 * usual):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def join_lines(texts: list[str]) -> str:
    """Lines of one block (a wrapped table cell, say) as one text, joined as paragraphs are."""
    return _join_all(texts)[0]


def _join_all(texts: list[str]) -> tuple[str, list[int]]:
    """Lines joined without a space inside Chinese sentences (a space stays between two Latin
    words), and where each line starts in the result."""
    out, offsets = "", []
    for t in texts:
        out += _separator(out, t)
        offsets.append(len(out))
        out += t
    return out, offsets


def _separator(left: str, right: str) -> str:
    """What goes between two pieces of a line-broken text: a space between two Latin words, else nothing."""
    return " " if left and _LATIN_END.search(left) and _LATIN_START.match(right) else ""
