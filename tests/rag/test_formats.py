"""PDF, Word and web-page readers on the bundled page rebuilt in each format (benchmarks/format_files.py)."""

import sys
import zipfile
from pathlib import Path

import pytest

from rag import KnowledgeBase
from rag.documents import DocumentError, read_path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import format_files

QUESTION, ANSWER, ARTICLE = "2024年青岛市进出口达多少亿元？", "9076.7亿元", "2024年青岛进出口达9076.7亿元"
needs_chromium = pytest.mark.skipif(not Path(format_files.CHROMIUM).exists(), reason="Chromium is not installed")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    work = tmp_path_factory.mktemp("formats")
    out = {"docx": format_files.write_docx(work / "page.docx"), "html": format_files.write_html(work / "page.html")}
    if Path(format_files.CHROMIUM).exists():
        out["pdf"] = format_files.write_pdf(work / "page.pdf", work)
    return out


def _answer(path: Path):
    kb = KnowledgeBase.build([path])
    a = kb.answer(QUESTION)
    c = a.citations[0]
    assert a.short == ANSWER and kb.document(c.doc_id)[c.start : c.end] == c.quote
    return kb, c


def test_word_headings_become_the_section_and_headers_stay_out(files):
    kb, c = _answer(files["docx"])
    assert ARTICLE in c.section and c.page is None
    assert "页眉" not in kb.document("page.docx")


def test_web_page_main_text_only_with_its_headings(files):
    kb, c = _answer(files["html"])
    text = kb.document("page.html")
    assert ARTICLE in c.section and "关于我们" not in text and "版权所有" not in text


@needs_chromium
def test_pdf_text_layer_lines_joined_and_the_page_cited(files):
    kb, c = _answer(files["pdf"])
    assert c.page is not None and c.page >= 1
    text = kb.document("page.pdf")
    assert "帮助企业拓展国际市场" in text  # a sentence the PDF breaks across lines, joined without a space
    assert c.to_dict()["page"] == c.page


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("empty.pdf", b"", "cannot open this PDF"),
        ("cut.pdf", b"%PDF-1.7\n1 0 obj\n<<", "cannot open this PDF"),
        ("other.docx", None, "not a readable Word"),
        ("noise.docx", b"PK\x03\x04 not really", "not a readable Word"),
        ("empty.html", b"<html><body><nav>menu</nav></body></html>", "no main text"),
    ],
)
def test_unreadable_files_are_named_with_the_reason(tmp_path, name, data, reason):
    path = tmp_path / name
    if data is None:  # a zip of something else
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("hello.txt", "not a Word document")
    else:
        path.write_bytes(data)
    with pytest.raises(DocumentError, match=reason):
        read_path(path)


@needs_chromium
def test_a_pdf_without_text_is_named(tmp_path):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    pdf.new_page(595, 842)
    pdf.save(str(tmp_path / "scan.pdf"))
    with pytest.raises(DocumentError, match="no text found, neither a text layer nor by OCR"):
        read_path(tmp_path / "scan.pdf")


@needs_chromium
def test_a_scanned_page_is_read_by_ocr_and_cited_with_its_page(files, tmp_path):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(files["pdf"]))
    image = pdf[0].render(scale=2).to_pil().convert("RGB")  # page 1 as a scan: pixels, no text layer
    pdf.close()
    image.save(tmp_path / "scan.pdf")
    image.save(tmp_path / "scan.png")
    for name in ("scan.pdf", "scan.png"):
        doc = read_path(tmp_path / name)[0]
        assert "创新型产业体系" in doc.text and doc.locations[0].page == 1
        start = doc.text.index("创新型产业体系")
        page, rects = doc.boxes_of(start, start + 7)  # OCR line boxes locate the quote on the scan
        assert page == 1 and rects and all(0 <= v <= 1 for r in rects for v in r)
    kb = KnowledgeBase.build([tmp_path / "scan.pdf"])
    a = kb.answer("青岛规上高技术制造业增加值年均增长多少？")
    assert a.short and "15%" in a.short and a.citations[0].page == 1
    assert kb.page_image(a.citations[0])[:2] == b"\xff\xd8"  # a JPEG of the scanned page


def test_a_folder_of_mixed_files_indexes_the_readable_ones(files, tmp_path):
    (tmp_path / "a.docx").write_bytes(files["docx"].read_bytes())
    (tmp_path / "b.html").write_bytes(files["html"].read_bytes())
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-garbage")
    kb = KnowledgeBase.build([tmp_path])
    assert set(kb.documents) == {"a.docx", "b.html"}


def _bounded_text(pdf_path: Path, page: int, rects) -> str:
    """What the PDF itself holds inside the rectangles (pdfium's text-in-a-box), spaces removed."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    width, height = pdf[page - 1].get_size()
    textpage = pdf[page - 1].get_textpage()
    text = "".join(
        textpage.get_text_bounded(x0 * width, (1 - y1) * height, x1 * width, (1 - y0) * height)
        for x0, y0, x1, y1 in rects
    )
    pdf.close()
    return "".join(text.split())


@needs_chromium
def test_a_paragraph_running_over_a_page_break_is_one_paragraph(files):
    doc = read_path(files["pdf"])[0]
    # the printed page breaks inside sentences (e.g. 「…出口值5278.2亿元，增速|12%…」): each such
    # paragraph continues on the next page with no paragraph break, the page known on either side
    runs = [(a, b) for a, b in zip(doc.locations, doc.locations[1:]) if a.end == b.start]
    assert runs and all(b.page == a.page + 1 for a, b in runs)
    kb = KnowledgeBase.build([files["pdf"]])
    for a, _ in runs:  # and one chunk holds the text on both sides of the break
        assert any(c.start < a.end < c.end for c in kb.chunks.values())


@needs_chromium
def test_pdf_quote_boxes_hold_the_quoted_text(files):
    from difflib import SequenceMatcher

    kb, c = _answer(files["pdf"])
    page, rects = kb.documents["page.pdf"].boxes_of(c.start, c.end)
    assert page == c.page and rects
    inside = _bounded_text(files["pdf"], page, rects)
    quote = "".join(c.quote.split())
    assert SequenceMatcher(None, quote, inside).ratio() > 0.9, (quote, inside)


@needs_chromium
def test_the_page_is_shown_with_the_quote_highlighted_after_the_file_is_gone(files, tmp_path):
    from io import BytesIO

    from PIL import Image

    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(files["pdf"].read_bytes())
    KnowledgeBase.build([pdf]).save(tmp_path / "kb")
    pdf.unlink()  # an upload is deleted once indexed: the knowledge base keeps its own copy
    kb = KnowledgeBase.open(tmp_path / "kb")
    c = kb.answer(QUESTION).citations[0]
    image = Image.open(BytesIO(kb.page_image(c, width=600)))
    _, rects = kb.documents["page.pdf"].boxes_of(c.start, c.end)
    x0, y0, x1, y1 = rects[0]
    region = image.crop((int(x0 * image.width), int(y0 * image.height), int(x1 * image.width), int(y1 * image.height)))
    yellow = sum(1 for r, g, b in region.get_flattened_data() if r > 200 and g > 170 and b < 170)
    assert image.width == 600 and yellow > 0.3 * region.width * region.height  # the highlight's yellow
    kb.remove(["page.pdf"])
    assert not any((tmp_path / "kb" / "originals").iterdir())  # the copy goes with its document


def test_plain_text_has_no_page_to_show(tmp_path):
    (tmp_path / "a.txt").write_text("青岛港2024年货物吞吐量7亿吨。", encoding="utf-8")
    kb = KnowledgeBase.build([tmp_path / "a.txt"])
    assert kb.page_image(kb.answer("青岛港2024年货物吞吐量多少？").citations[0]) is None


@needs_chromium
def test_an_encrypted_pdf_is_named_and_nothing_indexed_is_lost(files, tmp_path, caplog):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(files["pdf"]))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    writer.write(tmp_path / "locked.pdf")
    with pytest.raises(DocumentError, match="encrypted"):
        read_path(tmp_path / "locked.pdf")
    kb = KnowledgeBase.build([files["docx"]])
    kb.save(tmp_path / "kb")
    assert kb.add([tmp_path / "locked.pdf"]) == [] and "encrypted" in caplog.text  # skipped, named
    assert set(KnowledgeBase.open(tmp_path / "kb").documents) == {"page.docx"}


@needs_chromium
def test_a_300_page_pdf_is_read_with_every_page_cited(files, tmp_path):
    from pypdf import PdfReader, PdfWriter

    source = PdfReader(files["pdf"])
    writer = PdfWriter()
    while len(writer.pages) < 300:
        for page in source.pages:
            writer.add_page(page)
    writer.write(tmp_path / "long.pdf")
    doc = read_path(tmp_path / "long.pdf")[0]
    pages = {loc.page for loc in doc.locations}
    assert len(pages) >= 290 and max(pages) >= 300 - len(source.pages)
    assert all(0 <= v <= 1 for b in doc.boxes for v in (b.x0, b.y0, b.x1, b.y1))


@needs_chromium
def test_a_two_column_pdf_reads_down_each_column(tmp_path):
    pdf = format_files.write_pdf(tmp_path / "columns.pdf", tmp_path, columns=2)
    text = read_path(pdf)[0].text
    # sentences broken across the narrow column's lines are joined, and paragraphs keep their order
    assert "数字经济核心产业增加值" in text and "帮助企业拓展国际市场" in text
    assert text.index("主攻方向是") < text.index("今后将根据产业发展趋势") < text.index("加快打造高能级科创平台")
    kb = KnowledgeBase.build([pdf])
    assert kb.answer(QUESTION).short == ANSWER


@needs_chromium
def test_a_ruled_pdf_table_becomes_rows_of_cells(tmp_path):
    rows = [("指标", "2024年", "同比增长"), ("进出口（亿元）", "9076.7", "3.6%"), ("出口（亿元）", "5278.2", "5.6%")]
    table = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    page = tmp_path / "table.html"
    page.write_text(
        "<html><head><meta charset='utf-8'><style>body{font-family:'WenQuanYi Zen Hei'}</style></head><body>"
        f"<p>青岛海关发布数据，2024年青岛市外贸情况如下。</p><table border=1>{table}</table>"
        "<p>以上数据来自青岛海关。</p></body></html>",
        encoding="utf-8",
    )
    pdf = format_files.print_pdf(page, tmp_path / "table.pdf")
    doc = read_path(pdf)[0]
    paragraphs = doc.text.split("\n\n")
    for row in rows:  # each row its own paragraph, cells in order
        assert "｜".join(row) in paragraphs
    row = "｜".join(rows[2])
    start = doc.text.index(row)
    page_no, rects = doc.boxes_of(start, start + len(row))  # a quote from a table is its whole row
    assert _bounded_text(pdf, page_no, rects) == "".join(rows[2])  # the row's box is where it is drawn


def test_an_image_without_text_is_named(tmp_path):
    from PIL import Image

    Image.new("RGB", (400, 300), "white").save(tmp_path / "blank.png")
    with pytest.raises(DocumentError, match="no text found in this image"):
        read_path(tmp_path / "blank.png")


@needs_chromium
def test_pdf_subheadings_in_body_type_become_sections_as_in_plain_text(files):
    from rag.paths import bundled_corpus

    def sections(kb):
        return {c.section for c in kb.chunks.values() if c.section}

    plain = sections(KnowledgeBase.build([next(bundled_corpus().glob("*.txt"))]))
    pdf = sections(KnowledgeBase.build([files["pdf"]]))
    assert "主攻“10+1”产业40个赛道" in pdf and len(plain & pdf) >= 0.9 * len(plain)
