"""Saved web pages: the main text only (trafilatura drops navigation and boilerplate); headings
become the section path, lists and tables stay as lines."""

from __future__ import annotations

from pathlib import Path

from ..documents import Document, DocumentError, decode_bytes
from .layout import TextBuilder


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
        text = (
            " ".join("".join(el.itertext()).split())
            if el.tag != "row"
            else "｜".join(" ".join("".join(c.itertext()).split()) for c in el.iter("cell"))
        )
        if el.tag == "head":
            out.heading(text, int((el.get("rend") or "h2")[1:] or 2) if (el.get("rend") or "").startswith("h") else 2)
        elif el.tag == "p" and el.getparent() is not None and el.getparent().tag == "cell":
            continue  # inside a table: its row is written whole
        else:
            out.paragraph(text)
    meta = root.find(".//doc") if root.tag != "doc" else root
    title = (meta.get("title") if meta is not None else "") or ""
    doc = out.document(doc_id, title, str(path))
    if not doc.text.strip():
        raise DocumentError(f"{path}: no main text found in this web page.")
    return [doc]
