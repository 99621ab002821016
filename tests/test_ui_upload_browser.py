"""Uploads in real headless Chromium: a PDF and a DOCX dropped on the UI are answerable after one
ingest, and the PDF's citation shows its page with the span highlighted.

Its own `assistant serve` (login on, as ASSISTANT_UI_AUTH), so the shared site of
test_ui_browser.py keeps its three documents. Skipped when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

from tests.docfiles import CHROMIUM, report_docx, report_pdf  # noqa: E402
from tests.test_ui_browser import (  # noqa: E402
    ANSWER_TIMEOUT_MS,
    CHROMIUM_ARGS,
    _ask,
    _free_port,
    _in_view,
    _wait_until_serving,
)

USER, PASSWORD = "uploader", "battery-staple"
NOTE = "The Brightwater lighthouse was built in 1874 by the engineer Ada Morrow.\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    base = tmp_path_factory.mktemp("upload")
    seeds = base / "seeds"
    seeds.mkdir()
    (seeds / "lighthouse.txt").write_text(NOTE, encoding="utf-8")
    files = base / "files"
    files.mkdir()
    report_pdf(files / "harbour review.pdf")
    report_docx(files / "handbook.docx")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASSISTANT_", "OPENAI_", "GRADIO_"))}  # fmt: skip
    env.update(ASSISTANT_MODE="extractive", ASSISTANT_UI_AUTH=f"{USER}:{PASSWORD}",
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1")  # fmt: skip
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "serve", "--port", str(port), "--seeds",
             str(seeds), "--index", str(base / "index")],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=base,
        )  # fmt: skip
    try:
        _wait_until_serving(url, proc, log)
        yield url, seeds, files
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def page(server: tuple[str, Path, Path]) -> Iterator[Any]:
    url = server[0]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        pg = context.new_page()
        pg.goto(url)
        pg.fill("input[data-testid=textbox]", USER)
        pg.fill("input[type=password]", PASSWORD)
        pg.click("button.primary")
        pg.wait_for_selector("#chat", timeout=ANSWER_TIMEOUT_MS)
        yield pg
        browser.close()


def _drop(pg: Any, selector: str, paths: list[Path]) -> None:
    """Drop files on an element the way a desktop drag and drop does (a DataTransfer)."""
    files = [(p.name, base64.b64encode(p.read_bytes()).decode()) for p in paths]
    transfer = pg.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, data] of files) {
                const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
                dt.items.add(new File([bytes], name));
            }
            return dt;
        }""",
        files,
    )
    for event in ("dragenter", "dragover", "drop"):
        pg.dispatch_event(selector, event, {"dataTransfer": transfer})


def test_ui_dropped_pdf_and_docx_are_answerable_and_the_pdf_page_is_highlighted(
    page: Any, server: tuple[str, Path, Path]
) -> None:
    from PIL import Image

    _, seeds, files = server
    page.click("#documents button, #documents .label-wrap")  # open the accordion
    page.locator("#upload").wait_for()
    _drop(page, "#upload button.upload-container",
          [files / "harbour review.pdf", files / "handbook.docx"])
    status = page.locator("#upload-status")
    status.locator("text=answerable now").wait_for(timeout=120_000)
    text = status.inner_text()
    assert "Added harbour review.pdf." in text and "Added handbook.docx." in text
    stored = (seeds / "harbour review.pdf").read_bytes()
    assert stored == (files / "harbour review.pdf").read_bytes()
    assert "Documents indexed 3" in " ".join(page.inner_text("#status").split())

    answer = _ask(page, "Who retired after thirty-one years on the northern cape?")
    assert "Marta Quennell" in answer.inner_text()
    root = page.locator('#sources .sources[data-turn="0"]')
    figure = root.locator('figure.page-view[data-page="2"]')
    figure.wait_for(timeout=10_000)
    assert "page 2" in root.locator(".citation-list li").first.inner_text()
    src = figure.locator("img.page-image").get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")
    mark = figure.locator("mark.page-mark").first
    box = page.evaluate(
        """(m) => { const r = m.getBoundingClientRect(),
                          i = m.parentElement.querySelector('img').getBoundingClientRect();
                    return [(r.left + r.width / 2 - i.left) / i.width,
                            (r.top + r.height / 2 - i.top) / i.height]; }""",
        mark.element_handle(),
    )
    w, h = picture.size
    r, g, b = picture.getpixel((int(box[0] * w), int(box[1] * h)))
    assert (r, g, b) != (255, 255, 255) and b < 200 < r  # the highlight's yellow under the mark
    assert _in_view(page, '#sources .sources[data-turn="0"] mark.page-mark')

    # a highlight low on its page: the sources pane scrolls itself down to it
    answer = _ask(page, "When does the harbour master's office close on Saturdays?")
    assert "four o'clock" in answer.inner_text()
    pane = '#sources .sources[data-turn="1"]'
    page.locator(f'{pane} figure.page-view[data-page="3"]').wait_for(timeout=10_000)
    page.wait_for_function(f"() => document.querySelector('{pane}').scrollTop > 0")
    below_fold = page.evaluate(
        f"""() => {{ const p = document.querySelector('{pane}'), m = p.querySelector('mark');
                   return m.getBoundingClientRect().top - p.getBoundingClientRect().top
                          + p.scrollTop > p.clientHeight; }}"""
    )
    assert below_fold  # it was out of sight before the pane scrolled
    assert _in_view(page, f"{pane} mark.page-mark")

    answer = _ask(page, "When are apple trees pruned?")
    assert "late February" in answer.inner_text()
    mark = page.locator('#sources .sources[data-turn="2"] mark.cite').first
    mark.wait_for()
    assert "late February" in mark.inner_text()
    answer.locator("a.cite-marker").first.click()
    page.wait_for_selector('#sources .sources[data-turn="2"] mark.cite-active', timeout=5000)
