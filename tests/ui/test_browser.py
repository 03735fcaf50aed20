"""A real browser (Debian's headless Chromium through Playwright) asks a question."""

import os
import shutil
from pathlib import Path

import pytest

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
