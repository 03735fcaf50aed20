"""The bundled page rebuilt as a Word file, a web page and a PDF — real files for the format
readers' tests and `benchmarks/formats.py`, made from the page's own articles and paragraphs.

The PDF is printed by headless Chromium (Debian's, with the CJK font CI installs) from the web
page, so it has real Chinese line breaks, running layout and a text layer.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chunking import paragraphs, repaired
from rag.documents import load_documents
from rag.paths import bundled_corpus

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def articles() -> list[tuple[str, list[tuple[str, str]]]]:
    """(headline, [(kind, text)]) of each article of the bundled page, in order; kind is
    "subheading" (a section's heading inside the article) or "paragraph"."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    section = ""
    for doc in load_documents([bundled_corpus()]):
        for para in paragraphs(doc):
            text = repaired("".join(doc.text[b.start : b.end] for b in para.pieces))
            if not out or out[-1][0] != para.title:
                out.append((para.title, []))
                section = ""
            if para.section and para.section != section:
                out[-1][1].append(("subheading", para.section))
            section = para.section
            out[-1][1].append(("paragraph", " ".join(text.split())))
    return out


def write_docx(path: Path) -> Path:
    import docx

    word = docx.Document()
    for title, blocks in articles():
        word.add_heading(title, level=1)
        for kind, text in blocks:
            if kind == "subheading":
                word.add_heading(text, level=2)
            else:
                word.add_paragraph(text)
    section = word.sections[0]
    section.header.paragraphs[0].text = "大众日报·青岛新闻 页眉"  # headers must not reach the text
    word.save(str(path))
    return path


def write_html(path: Path, columns: int = 1) -> Path:
    tag = {"subheading": "h3", "paragraph": "p"}
    body = "".join(
        f"<article><h2>{html.escape(title)}</h2>"
        + "".join(f"<{tag[kind]}>{html.escape(text)}</{tag[kind]}>" for kind, text in blocks)
        + "</article>"
        for title, blocks in articles()
    )
    path.write_text(
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>青岛新闻</title>"
        "<style>body{font-family:'WenQuanYi Zen Hei';font-size:14px;"
        + ("width:40em" if columns == 1 else f"column-count:{columns};column-gap:2em")
        + "}</style></head><body>"
        "<nav><a href='/'>首页</a> <a href='/news'>新闻</a> <a href='/about'>关于我们</a></nav>"
        f"<main>{body}</main><footer>版权所有 © 2025 示例网站 · 联系我们</footer></body></html>",
        encoding="utf-8",
    )
    return path


def write_pdf(path: Path, work: Path, columns: int = 1) -> Path:
    """Chromium prints the web page (A4, several pages; `columns` > 1 sets it in columns)."""
    return print_pdf(write_html(work / f"page-for-pdf-{columns}.html", columns), path)


def print_pdf(page: Path, path: Path) -> Path:
    """Headless Chromium prints an HTML file to `path` (A4)."""
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={path}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path
