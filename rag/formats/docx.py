"""Word `.docx` (python-docx): headings become the section path, tables stay as rows of cells.

Body only: Word keeps headers and footers apart, so they never enter the text.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from ..documents import Document, DocumentError
from .layout import CELL_SEPARATOR, TextBuilder

_HEADING = re.compile(r"^(?:Heading|标题)\s*(\d)$", re.IGNORECASE)


def read(path: Path, doc_id: str) -> list[Document]:
    import docx
    from docx.opc.exceptions import OpcError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        word = docx.Document(str(path))
    except (OpcError, zipfile.BadZipFile, KeyError, ValueError) as exc:  # not a zip, or a zip of something else
        raise DocumentError(f"{path}: not a readable Word .docx file ({exc}); re-save it from Word.") from None
    out = TextBuilder()
    title = word.core_properties.title or ""
    for block in word.element.body.iterchildren():
        if block.tag.endswith("}p"):
            para = Paragraph(block, word)
            style = para.style.name if para.style is not None else ""
            level = _level(style)
            if level:
                out.heading(para.text, level)
                title = title or para.text.strip()
            else:
                out.paragraph(para.text)
        elif block.tag.endswith("}tbl"):
            for row in Table(block, word).rows:
                cells = [" ".join(c.text.split()) for c in row.cells]
                out.paragraph(CELL_SEPARATOR.join(dict.fromkeys(c for c in cells if c)))  # merged cells repeat
    doc = out.document(doc_id, title, str(path))
    if not doc.text.strip():
        raise DocumentError(f"{path}: the Word file holds no text.")
    return [doc]


def _level(style: str) -> int:
    if style.lower() == "title":
        return 1
    m = _HEADING.match(style)
    return int(m.group(1)) if m else 0
