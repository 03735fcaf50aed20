"""Chunks: news-aware paragraphs and sentences, with offsets into the original text.

Text extracted from a print layout (our bundled page) has headlines, bylines
(`□ 本报记者 …`), datelines (`本报青岛讯`) and paragraphs cut in two by a blank
line in mid-sentence (`帮助企` ⏎⏎ `业拓展国际市场`). We parse that structure so each
chunk knows its article's title, and glue broken paragraphs back together. The
glued text is what gets indexed; every sentence keeps `(start, end)` in the
original document, so a quote is always `document[start:end]`.

No library does this news-layout repair for Chinese, hence the hand-written rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .documents import Document
from .zh import BYLINE, DATELINE

TERMINAL = "。！？!?；;…"
CLOSERS = "”’」』）)》\"'"
_SENTENCE_END = re.compile(rf"[{TERMINAL}]+[{re.escape(CLOSERS)}]*|(?<=[A-Za-z0-9)][.])(?=\s)")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_INNER_PUNCT = re.compile(r"[，、：,:]")
_LAYOUT_BREAK = re.compile(r"\s*\n\s*")


@dataclass
class Block:
    start: int
    end: int
    text: str
    gap: int  # blank lines before the block
    kind: str = "body"  # body | heading | byline
    level: int = 0  # markdown heading level, 0 for inferred headings


@dataclass
class Chunk:
    chunk_id: str
    doc_id: str
    title: str
    section: str
    text: str  # repaired text, what gets embedded and keyword-indexed (with the title)
    start: int
    end: int
    sentences: list[tuple[int, int]] = field(default_factory=list)  # original offsets
    sentence_spans: list[tuple[int, int]] = field(default_factory=list)  # offsets in `text`

    def indexed_text(self) -> str:
        """What is embedded and keyword-indexed: the title and section line, then the text."""
        head = " ".join(p for p in (self.title, self.section) if p)
        return f"{head}\n{self.text}" if head else self.text

    def indexed_sentence_spans(self) -> list[tuple[int, int]]:
        """`sentence_spans` shifted into `indexed_text()` (past its title line)."""
        head = len(self.indexed_text()) - len(self.text)
        return [(a + head, b + head) for a, b in self.sentence_spans]

    def to_dict(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, row: dict) -> Chunk:
        row = dict(row)
        row["sentences"] = [tuple(s) for s in row["sentences"]]
        row["sentence_spans"] = [tuple(s) for s in row["sentence_spans"]]
        return cls(**row)


def split_blocks(text: str) -> list[Block]:
    """Runs of non-blank lines, with their offsets and the blank lines before them."""
    blocks, gap = [], 0
    pos = 0
    current: list[tuple[int, int]] = []
    for line in text.splitlines(keepends=True):
        body = line.strip()
        if body:
            lead = len(line) - len(line.lstrip())
            span = (pos + lead, pos + lead + len(body))
            if _is_byline(body):  # a byline often sits on the line right above the dateline
                if current:
                    blocks.append(_make_block(text, current, gap))
                    gap = 0
                blocks.append(_make_block(text, [span], gap))
                current, gap = [], 0
            else:
                current.append(span)
        else:
            if current:
                blocks.append(_make_block(text, current, gap))
                current, gap = [], 0
            gap += 1
        pos += len(line)
    if current:
        blocks.append(_make_block(text, current, gap))
    return blocks


def _make_block(text: str, lines: list[tuple[int, int]], gap: int) -> Block:
    start, end = lines[0][0], lines[-1][1]
    return Block(start, end, text[start:end], gap)


def _is_byline(line: str) -> bool:
    return len(line) <= 60 and bool(BYLINE.match(line))


def _ends_sentence(text: str) -> bool:
    return text.rstrip(CLOSERS)[-1:] in TERMINAL or text[-1:] in "”」』"


def classify(blocks: list[Block], max_heading_chars: int = 40) -> None:
    prev = None
    for block in blocks:
        md = _MD_HEADING.match(block.text)
        continues = prev is not None and prev.kind == "body" and not _ends_sentence(prev.text) and block.gap < 2
        if md:
            block.kind, block.level = "heading", len(md.group(1))
        elif _is_byline(block.text):
            block.kind = "byline"
        elif not continues and _heading_like(block.text, max_heading_chars):
            block.kind = "heading"
        prev = block


def _heading_like(text: str, max_chars: int = 40) -> bool:
    """A short line without sentence or clause punctuation: how a heading looks in running text."""
    return (
        len(text) <= max_chars
        and "\n" not in text
        and not _ends_sentence(text)
        and not _INNER_PUNCT.search(text)
        and not _is_byline(text)
    )


def heading_text(block: Block) -> str:
    md = _MD_HEADING.match(block.text)
    return md.group(2) if md else block.text


@dataclass
class Paragraph:
    pieces: list[Block]
    title: str
    section: str


def paragraphs(doc: Document) -> list[Paragraph]:
    """Body paragraphs (broken ones glued back) with their article title and section."""
    if any(loc.heading for loc in doc.locations):
        return _structured_paragraphs(doc)
    blocks = split_blocks(doc.text)
    classify(blocks)
    out: list[Paragraph] = []
    title, section = doc.title, ""
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if block.kind == "heading":
            run = [block]
            while (
                i + len(run) < len(blocks) and blocks[i + len(run)].kind == "heading" and not blocks[i + len(run)].level
            ):
                run.append(blocks[i + len(run)])
            after = blocks[i + len(run)] if i + len(run) < len(blocks) else None
            starts_article = (
                block.level == 1
                or not out
                and not doc.title
                or block.gap >= 2
                or (after is not None and (after.kind == "byline" or DATELINE.match(after.text)))
            )
            if block.level > 1 or not starts_article or (doc.title and block.level != 1):
                section = " ".join(heading_text(b) for b in run)
            else:
                title, section = " ".join(heading_text(b) for b in run), ""
            i += len(run)
            continue
        pieces = [block]
        while (
            block.kind == "body"
            and not _ends_sentence(pieces[-1].text)
            and i + len(pieces) < len(blocks)
            and blocks[i + len(pieces)].kind == "body"
        ):
            pieces.append(blocks[i + len(pieces)])
        out.append(Paragraph(pieces, title or _fallback_title(doc), section))
        i += len(pieces)
    return out


def _structured_paragraphs(doc: Document) -> list[Paragraph]:
    """A Word file or web page says which paragraphs are headings: the top heading is the chunk's
    title, the deeper ones its section. A PDF marks only headings set in larger type; a
    subheading set in body type is told by its look, as in plain text, and joins the section."""
    out: list[Paragraph] = []
    previous, subheading = None, ""
    for loc in doc.locations:
        text = doc.text[loc.start : loc.end]
        if loc.heading:
            previous, subheading = None, ""
            continue
        if loc.page is not None and previous is not None and previous.end == loc.start:
            out[-1].pieces.append(Block(loc.start, loc.end, text, 1, "body"))  # ran over a page break
            previous = loc
            continue
        prior = doc.text[previous.start : previous.end] if previous else ""
        if loc.page is not None and _heading_like(text) and (not prior or _ends_sentence(prior)):
            previous, subheading = None, text
            continue
        path = loc.section.split(" / ") if loc.section else []
        block = Block(loc.start, loc.end, text, 1, "byline" if _is_byline(text) else "body")
        section = " / ".join(path[1:] + ([subheading] if subheading else []))
        out.append(Paragraph([block], path[0] if path else doc.title or _fallback_title(doc), section))
        previous = loc
    return out


def _fallback_title(doc: Document) -> str:
    name = doc.doc_id.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def split_sentences(doc_text: str, para: Paragraph, max_chars: int) -> list[tuple[int, int]]:
    """Sentence spans in original offsets, found in the glued paragraph text.

    A sentence may cross a repaired break (its quote then holds the blank line).
    Sentences longer than `max_chars` are cut at line breaks, then at `max_chars`.
    """
    offsets: list[int] = []
    for piece in para.pieces:
        offsets.extend(range(piece.start, piece.end))
    joined = "".join(doc_text[piece.start : piece.end] for piece in para.pieces)
    spans, cursor = [], 0
    for match in _SENTENCE_END.finditer(joined):
        spans.append((cursor, match.end()))
        cursor = match.end()
    if cursor < len(joined):
        spans.append((cursor, len(joined)))
    out = []
    for a, b in spans:
        for a2, b2 in _cut_long(joined, a, b, max_chars):
            a2, b2 = _strip(joined, (a2, b2))
            if b2 > a2:
                out.append((offsets[a2], offsets[b2 - 1] + 1))
    return out


def _cut_long(text: str, a: int, b: int, max_chars: int) -> list[tuple[int, int]]:
    """`text[a:b]` in pieces of at most `max_chars`, cut after a line break where there is one.
    A loop, not recursion: a megabyte without 。 or a newline is a few thousand pieces."""
    pieces = []
    while b - a > max_chars:
        newline = text.rfind("\n", a + 1, a + max_chars)
        cut = newline + 1 if newline > a else a + max_chars
        pieces.append((a, cut))
        a = cut
    pieces.append((a, b))
    return pieces


def _strip(text: str, span: tuple[int, int]) -> tuple[int, int]:
    a, b = span
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def repaired(text: str) -> str:
    """Original text with layout line breaks inside a sentence removed."""
    return _LAYOUT_BREAK.sub(lambda m: "" if _cjk_join(text, m) else " ", text)


def repaired_offsets(text: str) -> list[int]:
    """For each character of `repaired(text)`, its index in `text` (a joining space maps to the break)."""
    out: list[int] = []
    pos = 0
    for m in _LAYOUT_BREAK.finditer(text):
        out.extend(range(pos, m.start()))
        if not _cjk_join(text, m):
            out.append(m.start())
        pos = m.end()
    out.extend(range(pos, len(text)))
    return out


def char_map(doc_text: str, chunk: Chunk) -> list[int]:
    """The document offset of every character of `chunk.text` (-1 for the line breaks joining its parts),
    so a span the reader finds in the indexed text becomes a verbatim `document[start:end]`."""
    out: list[int] = []
    for (a, b), (ta, _) in zip(chunk.sentences, chunk.sentence_spans):
        out.extend([-1] * (ta - len(out)))
        out.extend(a + i for i in repaired_offsets(doc_text[a:b]))
    out.extend([-1] * (len(chunk.text) - len(out)))
    return out


def _cjk_join(text: str, m: re.Match) -> bool:
    before = text[m.start() - 1 : m.start()]
    after = text[m.end() : m.end() + 1]
    return not (before.isascii() and before.isalnum() and after.isascii() and after.isalnum())


class Chunker:
    """Paragraph chunks: long paragraphs split at sentence ends, tiny ones merged.

    >>> from rag.documents import Document
    >>> doc = Document("d1", "标题一\\n\\n第一句。第二句。\\n\\n第三句，\\n\\n接着说完。")
    >>> [c.text for c in Chunker(max_chars=200, min_chars=5).split(doc)]
    ['第一句。第二句。\\n第三句，接着说完。']
    """

    def __init__(self, max_chars: int = 400, min_chars: int = 80):
        if min_chars >= max_chars:
            raise ValueError("chunk min_chars must be smaller than max_chars")
        self.max_chars = max_chars
        self.min_chars = min_chars

    def split(self, doc: Document) -> list[Chunk]:
        groups: list[tuple[Paragraph, list[list[tuple[int, int]]]]] = []
        for para in paragraphs(doc):
            sentences = split_sentences(doc.text, para, self.max_chars)
            if sentences:
                groups.append((para, self._pack(doc.text, sentences)))
        chunks: list[Chunk] = []
        pending: list[list[tuple[int, int]]] = []
        if not groups:
            return chunks
        pending_para = groups[0][0]  # the paragraph `pending` comes from
        for para, parts in groups:
            for part in parts:
                size = self._size(doc.text, pending) + self._size(doc.text, [part])
                same_place = (pending_para.title, pending_para.section) == (
                    para.title,
                    para.section,
                )
                if pending and (
                    not same_place or size > self.max_chars or self._size(doc.text, pending) >= self.min_chars
                ):
                    chunks.append(self._make(doc, pending_para, pending, len(chunks)))
                    pending = []
                pending.append(part)
                pending_para = para
        if pending:
            if (
                chunks
                and self._size(doc.text, pending) < self.min_chars
                and self._mergeable(chunks[-1], pending_para, doc, pending)
            ):
                last = chunks.pop()
                merged = [list(last.sentences)] + pending
                chunks.append(self._make(doc, pending_para, merged, len(chunks)))
            else:
                chunks.append(self._make(doc, pending_para, pending, len(chunks)))
        return chunks

    def _mergeable(self, last: Chunk, para: Paragraph, doc: Document, pending) -> bool:
        return (last.title, last.section) == (para.title, para.section) and (
            len(last.text) + self._size(doc.text, pending) <= self.max_chars
        )

    def _pack(self, text: str, sentences: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
        parts: list[list[tuple[int, int]]] = [[]]
        for span in sentences:
            if parts[-1] and self._size(text, [parts[-1] + [span]]) > self.max_chars:
                parts.append([])
            parts[-1].append(span)
        return parts

    @staticmethod
    def _size(text: str, parts: list[list[tuple[int, int]]]) -> int:
        return sum(len(repaired(text[a:b])) for part in parts for a, b in part)

    @staticmethod
    def _make(doc: Document, para: Paragraph, parts: list[list[tuple[int, int]]], index: int) -> Chunk:
        pieces, spans, cursor = [], [], 0
        for p, part in enumerate(parts):
            if p:
                pieces.append("\n")
                cursor += 1
            for a, b in part:
                sentence = repaired(doc.text[a:b])
                spans.append((cursor, cursor + len(sentence)))
                pieces.append(sentence)
                cursor += len(sentence)
        sentences = [s for part in parts for s in part]
        return Chunk(
            chunk_id=f"{doc.doc_id}#{index}",
            doc_id=doc.doc_id,
            title=para.title,
            section=para.section,
            text="".join(pieces),
            start=sentences[0][0],
            end=sentences[-1][1],
            sentences=sentences,
            sentence_spans=spans,
        )
