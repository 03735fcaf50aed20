"""Does joining paragraphs across PDF page breaks pay? CMRC 2018 trial (tuning data) printed as one PDF.

    .venv/bin/python benchmarks/pdf_page_breaks.py

Every context becomes a headed paragraph of one web page, which headless Chromium prints to a PDF
(about 65 A4 pages, so dozens of paragraphs run over a page break). The PDF is indexed twice —
as read, and with the join across page breaks turned off — and the trial questions are answered
over each: quote@1, short-answer F1, false abstention.
"""

from __future__ import annotations

import html
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import format_files

from rag import KnowledgeBase
from rag.documents import read_path
from rag.evaluation import load_dataset, run_qa
from rag.formats import layout


def main() -> None:
    logging.disable(logging.WARNING)
    data = load_dataset("cmrc2018-trial")
    work = Path(tempfile.mkdtemp(prefix="page-breaks-"))
    body = "".join(
        f"<h2>{html.escape(d.title)}</h2><p>{html.escape(' '.join(d.text.split()))}</p>" for d in data.documents
    )
    page = work / "trial.html"
    page.write_text(
        "<html><head><meta charset='utf-8'><style>body{font-family:'WenQuanYi Zen Hei';font-size:14px}</style>"
        f"</head><body>{body}</body></html>",
        encoding="utf-8",
    )
    pdf = format_files.print_pdf(page, work / "trial.pdf")
    joined_add_page = layout.TextBuilder.add_page

    def page_broken(self, lines):  # every page starts a new paragraph
        self._open = False
        joined_add_page(self, lines)

    for label, add_page in (("joined across page breaks", joined_add_page), ("broken at page breaks", page_broken)):
        layout.TextBuilder.add_page = add_page  # type: ignore[method-assign]
        docs = read_path(pdf)
        kb = KnowledgeBase()
        kb.add_documents(docs)
        m = run_qa(kb, data.items, progress=False)["metrics"]
        pages = max(loc.page or 0 for loc in docs[0].locations)
        print(
            f"{label}: {pages} pages, {len(data.items)} questions, quote@1 {m['quote@1']:.3f}, "
            f"F1 {m['short_f1']:.3f}, false abstention {m['false_abstention']:.3f}",
            flush=True,
        )
    layout.TextBuilder.add_page = joined_add_page  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
