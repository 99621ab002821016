"""PDF and DOCX files the tests build themselves: headless Chromium prints HTML to PDF,
python-docx writes DOCX. `CHROMIUM_SKIP` skips a test cleanly when /usr/bin/chromium is absent."""

from __future__ import annotations

import base64
import io
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_SKIP = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")

STYLE = "body{font-family:'DejaVu Serif',serif;font-size:11pt;line-height:1.35} h1{font-size:18pt}"
RUNNING = (
    "@page{size:A4;margin:25mm 20mm;"
    "@top-center{content:'Harbour Board Annual Review';font-size:9pt}"
    "@bottom-right{content:'Page ' counter(page) ' of ' counter(pages);font-size:9pt}}"
)


def print_pdf(html: str, pdf: Path, css: str = STYLE) -> Path:
    """`html` (a body) printed to `pdf` by headless Chromium, with `css`."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{pdf.stem}'
            f"</title><style>{css}</style></head><body>{html}</body></html>",
            encoding="utf-8",
        )
        subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp}/profile", f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
             page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return pdf


FILLER = (
    "The board met every month in the old customs house, and its minutes were read aloud at the "
    "start of each meeting so that members who had missed one could follow the business. "
)

# Three pages with a running header and a page-number footer; facts on pages 1, 2 and 3.
REPORT_PAGES = [
    "<h1>Harbour dredging</h1><p>The harbour was dredged to a depth of nine metres in March, "
    "which lets the larger grain ships berth at any tide.</p>" + f"<p>{FILLER * 6}</p>",
    "<h1 style='break-before:page'>Lighthouse keepers</h1><p>The lighthouse keeper Marta "
    "Quennell retired after thirty-one years on the northern cape.</p>" + f"<p>{FILLER * 6}</p>",
    "<h1 style='break-before:page'>Ferry timetable</h1><p>The winter ferry to Skellan Island "
    "now leaves at a quarter past seven every weekday morning.</p>" + f"<p>{FILLER * 14}</p>"
    "<p>The harbour master's office closes at four o'clock on Saturdays.</p>",
]  # the last fact sits low on page 3: below the fold of the page image in the UI


def report_pdf(path: Path) -> Path:
    return print_pdf("".join(REPORT_PAGES), path, STYLE + RUNNING)


def two_column_pdf(path: Path) -> Path:
    left = "".join(f"<p>Westward note {i}: {FILLER}</p>" for i in range(1, 4))
    right = "".join(f"<p>Eastward note {i}: {FILLER}</p>" for i in range(1, 4))
    return print_pdf(
        f"<h1>Two columns</h1><div style='columns:2;column-gap:10mm'>{left}{right}</div>",
        path, STYLE + "@page{size:A4;margin:20mm} h1{column-span:all}",
    )  # fmt: skip


def hyphenated_pdf(path: Path) -> Path:
    words = "extra&shy;ordinary inter&shy;nation&shy;alization tele&shy;communi&shy;cation"
    soft = " ".join([words] * 10)
    hard = " ".join(["well-known state-of-the-art re-entry"] * 10)
    return print_pdf(
        f"<div style='width:45mm;text-align:justify;hyphens:manual'><p>{soft}</p><p>{hard}</p>"
        "</div>",
        path, STYLE + "@page{size:A4;margin:15mm}",
    )  # fmt: skip


def scanned_pdf(path: Path) -> Path:
    """A page that is only a picture of text (no text layer)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(image).text((20, 80), "Scanned: this text is pixels only", fill="black")
    buf = io.BytesIO()
    image.save(buf, "PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    return print_pdf(f"<img style='width:150mm' src='data:image/png;base64,{data}'>", path, "")


def pages_pdf(path: Path, pages: int) -> Path:
    """A PDF of `pages` short pages (for the page limit and the benchmark)."""
    words = ("harbour", "ferry", "lighthouse", "quay", "pier", "slipway", "buoy")
    body = "".join(  # lines that differ in more than digits (or they read as running headers)
        f"<p style='break-after:page'>Page note {i}: the {words[i % 7]} table for week {i} was "
        f"posted.</p>"
        for i in range(1, pages + 1)
    )
    return print_pdf(body, path, STYLE + "@page{size:A6;margin:10mm}")


def report_docx(path: Path) -> Path:
    """A DOCX with a title, two headed sections, a list and a table between paragraphs."""
    import docx

    d = docx.Document()
    d.add_heading("Orchard Society Handbook", 0)
    d.add_heading("Pruning", 1)
    d.add_paragraph("Apple trees are pruned in late February, before the buds break.")
    d.add_paragraph("Bring your own loppers", style="List Bullet")
    d.add_heading("Harvest", 1)
    d.add_paragraph("The harvest supper follows the last picking.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Variety", "Picking month"
    table.cell(1, 0).text, table.cell(1, 1).text = "Ashmead's Kernel", "October"
    d.add_paragraph("The press is cleaned with cold water only.")
    d.sections[0].header.paragraphs[0].text = "Running header, not body text"
    d.save(path)
    return path
