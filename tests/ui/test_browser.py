"""A real browser (Debian's headless Chromium through Playwright) asks a question."""

import os
import shutil
from pathlib import Path

import pytest

from .conftest import chat_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium is not installed (apt-get install chromium)"
)


def test_question_quote_and_source_highlight(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    shot_dir = Path(os.environ.get("RAG_SCREENSHOT_DIR", tmp_path))
    shot_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.locator("#question textarea").fill("青岛有几个项目入选省绿色低碳高质量发展重点项目？")
        page.locator("#send").click()
        page.locator("#chat").get_by_text("答案：99个", exact=False).first.wait_for(timeout=120000)
        mark = page.locator("#sources mark").first
        mark.wait_for(timeout=120000)
        assert "99个项目入选" in mark.inner_text()
        page.locator("#question textarea").fill("总投资多少？")
        page.locator("#send").click()
        page.locator("#chat").get_by_text("答案：1565.5亿元", exact=False).first.wait_for(timeout=120000)
        page.locator("#searched").get_by_text("实际检索", exact=False).wait_for(timeout=120000)
        page.screenshot(path=str(shot_dir / "chat.png"), full_page=True)
        browser.close()
    assert (shot_dir / "chat.png").stat().st_size > 10000


def test_markup_in_a_document_shows_as_text_and_never_runs(tmp_path):
    """Issue 10: a document carrying <img onerror> and <script> is quoted literally; nothing runs."""
    from playwright.sync_api import sync_playwright

    from rag import KnowledgeBase

    doc = tmp_path / "notice.txt"
    doc.write_text(
        "<img src=x onerror=window.__xss=1>公告\n\n"
        "青岛<script>window.__xss=2</script>港<b onmouseover=window.__xss=3>2024年</b>货物吞吐量达到7.1亿吨。",
        encoding="utf-8",
    )
    kb = KnowledgeBase.build([doc], path=tmp_path / "kbs" / "notice")
    with chat_app(kb.path, tmp_path / "kbs") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(url)
        page.locator("#question textarea").fill("青岛港2024年货物吞吐量是多少？")
        page.locator("#send").click()
        page.locator("#chat").get_by_text("7.1亿吨", exact=False).first.wait_for(timeout=120000)
        page.locator("#sources").get_by_text("<script>", exact=False).first.wait_for(timeout=120000)
        page.locator("#question textarea").fill("济南2019年的人口是多少？")  # the no-answer branch too
        page.locator("#send").click()
        page.wait_for_function(
            "() => document.querySelector('#chat').innerText.includes('济南2019年')"
            " && !document.querySelector('#chat').innerText.includes('正在检索')",
            timeout=120000,
        )
        chat = page.locator("#chat").inner_text()
        assert "<script>" in chat and "onmouseover" in chat  # the markup is shown as text
        page.locator("#chat").get_by_text("onmouseover", exact=False).first.hover()
        assert page.evaluate("window.__xss === undefined")  # and none of it ran
        browser.close()


def test_a_pdf_quote_is_shown_highlighted_on_its_page(tmp_path):
    """Issue 11: the sources panel shows the cited PDF page as an image with the quote marked."""
    import sys

    from playwright.sync_api import sync_playwright

    from rag import KnowledgeBase

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import format_files

    pdf = format_files.write_pdf(tmp_path / "page.pdf", tmp_path)
    kb = KnowledgeBase.build([pdf], path=tmp_path / "kbs" / "pdf")
    with chat_app(kb.path, tmp_path / "kbs") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("#question textarea").fill("2024年青岛市进出口达多少亿元？")
        page.locator("#send").click()
        image = page.locator("#sources .src-page img").first
        image.wait_for(timeout=120000)
        assert page.locator("#sources .src-page summary").first.inner_text().startswith("原文第")
        assert image.evaluate("img => img.complete && img.naturalWidth") > 500  # decoded, not blocked
        shot_dir = Path(os.environ.get("RAG_SCREENSHOT_DIR", tmp_path))
        shot_dir.mkdir(parents=True, exist_ok=True)
        page.locator("#sources").screenshot(path=str(shot_dir / "pdf-sources.png"))
        browser.close()
