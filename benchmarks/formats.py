"""The bundled Q&A set's dev split answered over the page in each format, with the same reader.

    .venv/bin/python benchmarks/formats.py

The page is rebuilt as .docx, .html, a text PDF (Chromium print) and a scanned PDF (each page of
the text PDF rendered to pixels and wrapped as an image-only PDF) by `format_files.py`. Reports
quote@1 and short-answer F1 per format next to the .txt figures, the OCR character error rate
against the PDF's text layer, and reading speed (pages/s) for the text PDF and for OCR; also the
page set in two columns, and the text PDF's pages repeated to 30 and 300 pages, each read in a
fresh process, for speed and peak memory (flat means the 300-page peak is the 30-page one). Writes
`eval/reports/formats-<date>.md`. Dev split only: the test split stays held out.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import format_files

from rag import KnowledgeBase
from rag.documents import read_path
from rag.evaluation import load_dataset, run_qa
from rag.paths import bundled_corpus
from rag.report import benchmark_header, figures_table


def scanned_copy(pdf_path: Path, out: Path) -> Path:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    images = [page.render(scale=2).to_pil().convert("RGB") for page in pdf]
    pdf.close()
    images[0].save(out, save_all=True, append_images=images[1:])
    return out


def long_pdf(pdf_path: Path, pages: int, work: Path) -> dict:
    """The PDF's pages repeated to `pages`, read by a fresh process: pages/s and its peak RSS."""
    import json
    import subprocess

    from pypdf import PdfReader, PdfWriter

    source, writer = PdfReader(pdf_path), PdfWriter()
    while len(writer.pages) < pages:
        for page in source.pages[: pages - len(writer.pages)]:
            writer.add_page(page)
    path = work / f"long-{pages}.pdf"
    writer.write(path)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
    code = (
        "import json, sys, time; from pathlib import Path; from rag.documents import read_path; "
        "t = time.perf_counter(); d = read_path(Path(sys.argv[1]))[0]; s = time.perf_counter() - t; "
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]; "
        "print(json.dumps({'seconds': s, 'chars': len(d.text), 'peak_rss_mb': int(hwm) / 1024}))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return {"pages": pages, "pages_per_s": pages / got["seconds"], "peak_rss_mb": got["peak_rss_mb"]}


def main() -> None:
    from rapidfuzz.distance import Levenshtein

    logging.disable(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="formats-"))
    files = {
        ".txt": next(bundled_corpus().glob("*.txt")),
        ".docx": format_files.write_docx(work / "page.docx"),
        ".html": format_files.write_html(work / "page.html"),
        ".pdf (text)": format_files.write_pdf(work / "page.pdf", work),
        ".pdf (2 columns)": format_files.write_pdf(work / "columns.pdf", work, columns=2),
    }
    files[".pdf (scanned)"] = scanned_copy(files[".pdf (text)"], work / "scan.pdf")
    items = load_dataset("qingdao").split("dev")
    columns: dict[str, dict] = {}
    texts: dict[str, str] = {}
    for label, path in files.items():
        t = time.perf_counter()
        doc = read_path(path)[0]
        seconds = time.perf_counter() - t
        texts[label] = doc.text
        pages = max((loc.page or 0 for loc in doc.locations), default=0)
        kb = KnowledgeBase()
        kb.add_documents([doc])
        m = run_qa(kb, items, progress=False)["metrics"]
        columns[label] = {
            "quote@1": m["quote@1"],
            "short_f1": m["short_f1"],
            "abstention_recall": m.get("abstention_recall"),
            "false_abstention": m.get("false_abstention"),
            "pages": pages or None,
            "pages_per_s": pages / seconds if pages else None,
            "read_seconds": seconds,
        }
        print(label, columns[label], flush=True)
    cer = Levenshtein.distance(texts[".pdf (scanned)"], texts[".pdf (text)"]) / len(texts[".pdf (text)"])
    columns[".pdf (scanned)"]["ocr_cer_vs_text_layer"] = cer
    for pages in (30, 300):
        columns[f".pdf ({pages} pages)"] = long_pdf(files[".pdf (text)"], pages, work)
        print(pages, columns[f".pdf ({pages} pages)"], flush=True)
    note = f"; dev split, {len(items)} questions; `python benchmarks/formats.py`"
    text = "\n".join(benchmark_header("Formats", note) + figures_table(columns)) + "\n"
    print(text)
    out = ROOT / "eval" / "reports" / f"formats-{time.strftime('%Y%m%d')}.md"
    out.write_text(text, encoding="utf-8")
    print(f"report: {out}")


if __name__ == "__main__":
    main()
