"""Assemble a document's text from paragraphs, headings and pages, keeping where each came from."""

from __future__ import annotations

from ..documents import Document, Location


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
        self.paragraph(text)

    def paragraph(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self.parts:
            self._append("\n\n")
        start = self.size
        self._append(text)
        section = " / ".join(h for _, h in self.headings)
        self.locations.append(Location(start, self.size, self.page, section))

    def _append(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def document(self, doc_id: str, title: str, source: str) -> Document:
        return Document(doc_id, "".join(self.parts), title, source, tuple(self.locations))
