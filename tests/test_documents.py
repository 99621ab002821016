"""PDF and DOCX documents: exact offsets, reading order, pages, and files that cannot be read."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.documents import pdf as pdf_module
from assistant.documents.reader import read_document, scan
from assistant.documents.splitter import parse_document
from assistant.errors import DocumentError
from tests.docfiles import (
    CHROMIUM_SKIP,
    hyphenated_pdf,
    pages_pdf,
    report_docx,
    report_pdf,
    scanned_pdf,
    two_column_pdf,
)

ROOT = Path(__file__).resolve().parent.parent
ENCRYPTED = ROOT / "tests" / "data" / "encrypted.pdf"  # made with pypdf (user password "secret")


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("needs /usr/bin/chromium")
    base = tmp_path_factory.mktemp("pdfs")
    return {
        "report": report_pdf(base / "report.pdf"),
        "columns": two_column_pdf(base / "columns.pdf"),
        "hyphens": hyphenated_pdf(base / "hyphens.pdf"),
        "scanned": scanned_pdf(base / "scanned.pdf"),
    }


@CHROMIUM_SKIP
def test_pdf_every_character_maps_to_its_pdfium_character(pdfs: dict[str, Path]) -> None:
    import pypdfium2 as pdfium

    for path in pdfs["report"], pdfs["columns"], pdfs["hyphens"]:
        found = pdf_module.extract(path.read_bytes())
        doc = pdfium.PdfDocument(str(path))
        mapped = 0
        for page in found.pages:
            tp = doc[page.number - 1].get_textpage()
            for i, k in enumerate(page.src):
                if k < 0:
                    continue
                mapped += 1
                ours = found.text[page.start + i]
                theirs = chr(pdfium.raw.FPDFText_GetUnicode(tp, k))
                # pdfium reports a line-end '-' as U+0002 (IsHyphen); controls read as spaces
                assert ours == theirs or ours == "-" or (ours == " " and ord(theirs) < 32)
        assert mapped > 0.95 * sum(not c.isspace() for c in found.text)
        doc.close()


@CHROMIUM_SKIP
def test_pdf_two_columns_read_left_column_first(pdfs: dict[str, Path]) -> None:
    text = pdf_module.extract(pdfs["columns"].read_bytes()).text
    order = [text.index(f"{side} note {i}:") for side in ("Westward", "Eastward")
             for i in (1, 2, 3)]  # fmt: skip
    assert order == sorted(order)


@CHROMIUM_SKIP
def test_pdf_words_hyphenated_at_line_ends_are_joined(pdfs: dict[str, Path]) -> None:
    text = pdf_module.extract(pdfs["hyphens"].read_bytes()).text
    assert text.count("internationalization") == 10
    assert text.count("telecommunication") == 10
    assert text.count("state-of-the-art") == 10
    assert "\u2010" not in text and "\u00ad" not in text


@CHROMIUM_SKIP
def test_pdf_running_header_and_footer_are_dropped_and_pages_known(pdfs: dict[str, Path]) -> None:
    found = pdf_module.extract(pdfs["report"].read_bytes())
    assert len(found.pages) == 3
    assert "Harbour Board Annual Review" not in found.text
    assert "Page 2 of 3" not in found.text
    # the filler repeats line for line on every page, but in the body, not the margins: it stays
    assert found.text.count("The board met every month") == 6 + 6 + 14
    quennell = found.text.index("Marta Quennell")
    assert pdf_module.page_of(found.text, quennell) == 2
    assert found.text[found.pages[1].start :].startswith("# Lighthouse keepers")
    # headings are sections for the splitter, and sentences do not swallow line breaks
    parsed = parse_document(found.text)
    assert [h[2] for h in parsed.headings] == ["Harbour dredging", "Lighthouse keepers",
                                               "Ferry timetable"]  # fmt: skip
    sentence = next(s for s in parsed.sentences if "Quennell" in s.text)
    assert sentence.text == ("The lighthouse keeper Marta Quennell retired after thirty-one "
                             "years on the northern cape.")  # fmt: skip


@CHROMIUM_SKIP
def test_pdf_extraction_is_deterministic(pdfs: dict[str, Path]) -> None:
    data = pdfs["report"].read_bytes()
    assert pdf_module.extract(data) == pdf_module.extract(data)


@CHROMIUM_SKIP
def test_pdf_citation_carries_its_page_and_the_manifest_its_extractor(
    pdfs: dict[str, Path], tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "review.pdf").write_bytes(pdfs["report"].read_bytes())
    a = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index")
    a.ingest()
    answer = a.ask("Who retired after thirty-one years on the northern cape?")
    assert not answer.abstained
    c = answer.citations[0]
    assert (c.source, c.page) == ("review.pdf", 2)
    assert "Marta Quennell" in c.quote
    assert read_document(seeds / "review.pdf")[0][c.start : c.end] == c.quote
    assert answer.to_dict()["citations"][0]["page"] == 2
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    entry = manifest["documents"]["review.pdf"]
    assert entry["extractor"].startswith("pypdfium2 5.15.2")
    assert len(entry["file_sha256"]) == 64
    # the CLI shows the page, in text and in --json
    env_args = ["--seeds", str(seeds), "--index", str(tmp_path / "index")]
    cli = [sys.executable, "-m", "assistant", "ask", *env_args,
           "Who retired after thirty-one years on the northern cape?"]  # fmt: skip
    out = subprocess.run(cli, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "[1] review.pdf page 2 [" in out.stdout, out.stderr
    out = subprocess.run([*cli, "--json"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert json.loads(out.stdout)["citations"][0]["page"] == 2


@CHROMIUM_SKIP
def test_pdf_page_image_highlights_the_span(pdfs: dict[str, Path]) -> None:
    from PIL import Image

    text = pdf_module.extract(pdfs["report"].read_bytes()).text
    start = text.index("The lighthouse keeper")
    end = text.index("northern cape.") + len("northern cape.")
    image = pdf_module.render_span(pdfs["report"], start, end)
    assert image.page == 2 and image.boxes
    picture = Image.open(io.BytesIO(image.png)).convert("RGB")
    w, h = picture.size
    left, top, right, bottom = image.boxes[0][1]
    inside = picture.getpixel((int((left + right) / 2 * w), int((top + bottom) / 2 * h)))
    outside = picture.getpixel((int(0.5 * w), int(0.97 * h)))
    assert outside == (255, 255, 255)
    assert inside[2] < 200 and inside[0] > 200  # yellow-ish: the highlight, not paper or ink
    # every box lies in the top half of page 2, where the paragraph is
    assert all(0 < b[1] < b[3] < 0.5 for _, b in image.boxes)


def test_docx_headings_are_sections_and_tables_text_in_body_order(tmp_path: Path) -> None:
    text, title = read_document(report_docx(tmp_path / "handbook.docx"))
    assert title == "Orchard Society Handbook"
    assert "Running header" not in text
    assert text.index("before the buds break") < text.index("Ashmead's Kernel | October") \
        < text.index("cold water only")  # fmt: skip
    parsed = parse_document(text)
    assert [h[2] for h in parsed.headings] == ["Orchard Society Handbook", "Pruning", "Harvest"]
    pruning = next(s for s in parsed.sentences if "pruned" in s.text)
    assert pruning.section == "Pruning"
    assert text[pruning.start : pruning.end] == pruning.text


def _bomb(path: Path) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (8 * 2**20))  # 8 MB of zeros, ~8 KB packed
    path.write_bytes(buf.getvalue())
    return path


@CHROMIUM_SKIP
def test_unreadable_documents_are_skipped_with_one_reason_each(
    pdfs: dict[str, Path], tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    good = pdfs["report"].read_bytes()
    (seeds / "encrypted.pdf").write_bytes(ENCRYPTED.read_bytes())
    (seeds / "scanned.pdf").write_bytes(pdfs["scanned"].read_bytes())
    (seeds / "truncated.pdf").write_bytes(good[: len(good) // 2])
    (seeds / "notes.pdf").write_text("Plain notes, not a PDF at all.\n", encoding="utf-8")
    (seeds / "report.txt").write_bytes(good)
    (seeds / "broken.docx").write_bytes(report_docx(tmp_path / "h.docx").read_bytes()[:5000])
    _bomb(seeds / "bomb.docx")
    (seeds / "fine.pdf").write_bytes(good)
    found = scan(seeds)
    assert [d.source for d in found.docs] == ["fine.pdf"]
    assert found.skipped == {
        "bomb.docx": "it is a Word document that would unpack to over 8 MB (a decompression "
        "bomb?)",
        "broken.docx": "it is not a readable Word document (corrupt or truncated)",
        "encrypted.pdf": "it is an encrypted PDF (it needs a password)",
        "notes.pdf": "it is named .pdf but its content is text (the extension lies)",
        "report.txt": "it is named .txt but its content is a PDF (the extension lies)",
        "scanned.pdf": "it is a PDF without a text layer (a scan?), and OCR is not supported",
        "truncated.pdf": "it is not a readable PDF (corrupt or truncated)",
    }
    # and a whole ingest goes on with the readable one
    summary = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index").ingest()
    assert summary.added == 1 and len(summary.skipped) == 7


@CHROMIUM_SKIP
def test_pdf_over_the_page_limit_is_skipped_unread(tmp_path: Path) -> None:
    path = pages_pdf(tmp_path / "long.pdf", 3)
    with pytest.raises(DocumentError) as err:
        read_document(path, max_pdf_pages=2)
    assert err.value.message == "it has 3 pages; the limit is 2 (ASSISTANT_MAX_PDF_PAGES)"
    assert "Page note 3" in read_document(path, max_pdf_pages=3)[0]
