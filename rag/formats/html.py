"""Saved web pages: the main text only (trafilatura drops navigation and boilerplate); headings
become the section path, lists and tables stay as lines."""

from __future__ import annotations

import re
from pathlib import Path

from ..documents import Document, DocumentError, decode_bytes
from .layout import CELL_SEPARATOR, TextBuilder


def read(path: Path, doc_id: str) -> list[Document]:
    import trafilatura
    from lxml import etree

    page = decode_bytes(path.read_bytes(), str(path))
    xml = trafilatura.extract(
        page,
        output_format="xml",
        include_tables=True,
        include_formatting=False,
        include_links=False,
        include_comments=False,
        favor_recall=True,
    )
    if not xml:
        raise DocumentError(f"{path}: no main text found in this web page.")
    root = etree.fromstring(xml.encode("utf-8"))
    out = TextBuilder()
    for el in root.iter("head", "p", "item", "row"):
        parent = el.getparent()
        if el.tag == "p" and parent is not None and parent.tag == "cell":
            continue  # inside a table: its row is written whole
        if el.tag == "head":
            out.heading(_text(el), _level(el.get("rend") or ""))
        elif el.tag == "row":
            out.paragraph(CELL_SEPARATOR.join(_text(cell) for cell in el.iter("cell")))
        else:
            out.paragraph(_text(el))
    meta = root.find(".//doc") if root.tag != "doc" else root
    title = (meta.get("title") if meta is not None else "") or ""
    doc = out.document(doc_id, title, str(path))
    if not doc.text.strip():
        raise DocumentError(f"{path}: no main text found in this web page.")
    return [doc]


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split())


def _level(rend: str) -> int:
    """trafilatura keeps the HTML heading level as rend="h1"…"h6"; 2 when it does not say."""
    m = re.fullmatch(r"h(\d+)", rend)
    return int(m.group(1)) if m else 2
