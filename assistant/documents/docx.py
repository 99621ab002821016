"""Word (DOCX) text with python-docx, the one module that imports it: body order, tables as text.

The text is paragraphs with a blank line between them, in body order (`iter_inner_content`, so
tables sit where they are): a heading (`Title`, `Heading n`) gets Markdown `#` marks, so the
sentence splitter treats it as a section as it treats a Markdown heading; a list item gets `- `;
a table is one paragraph, a line per row in Markdown's form (`| cell | cell |`, merged cells
once; the bars also keep a short row from reading as a heading). Headers,
footers and comments are not body text and are left out. Extraction is deterministic, so a
citation's offsets are verified by extracting again.

A DOCX is a zip: its index is checked before anything is unpacked (`check_zip`), so a
decompression bomb is refused by what it claims, and the claim is enforced while reading.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from assistant.errors import DocumentError

EXTRACTOR_VERSION = 1
MAX_UNPACKED = 200 * 2**20  # bytes, the whole package
MAX_MEMBER = 100 * 2**20
MAX_RATIO = 100  # unpacked / packed size of one member (beyond a megabyte)
MAX_MEMBERS = 5000

_HEADING = re.compile(r"^Heading ([1-9])$")


def _corrupt() -> DocumentError:
    return DocumentError(
        "it is not a readable Word document (corrupt or truncated)",
        "Open it in Word or LibreOffice to check it, or save it again.",
    )


def check_zip(data: bytes) -> None:
    """Refuse a zip that is not a DOCX or would unpack to too much, before unpacking it."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise _corrupt() from None
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if (len(infos) > MAX_MEMBERS or info.file_size > MAX_MEMBER or total > MAX_UNPACKED
                or (info.file_size > 2**20 and ratio > MAX_RATIO)):  # fmt: skip
            raise DocumentError(
                f"it is a Word document that would unpack to over {total // 2**20} MB "
                f"(a decompression bomb?)",
                "Save it again from Word or LibreOffice; it was not unpacked.",
            )


def extract(data: bytes) -> tuple[str, str]:
    """The text of a DOCX (see the module docstring) and its title."""
    check_zip(data)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(_blocks(document, Paragraph, Table))
        title = (document.core_properties.title or "").strip()
    except DocumentError:
        raise
    except Exception:  # python-docx and lxml raise many types on a damaged package
        raise _corrupt() from None
    if not title:
        title = next((b.lstrip("#").strip() for b in blocks if b.startswith("#")), "")
    text = "\n\n".join(blocks)
    return (text + "\n" if text else ""), title


def _blocks(container: Any, paragraph_type: type, table_type: type) -> Any:
    for item in container.iter_inner_content():
        if isinstance(item, paragraph_type):
            block = _paragraph(item)
            if block:
                yield block
        elif isinstance(item, table_type):
            rows = [_row(row) for row in item.rows]
            rows = [r for r in rows if r.strip("| ")]
            if rows:
                yield "\n".join(rows)


def _paragraph(p: Any) -> str:
    text = " ".join(p.text.split())
    if not text:
        return ""
    style = p.style.name if p.style is not None else ""
    if style == "Title":
        return f"# {text}"
    m = _HEADING.match(style)
    if m:
        return f"{'#' * min(int(m.group(1)) + 1, 6)} {text}"
    numbered = p._p.pPr is not None and p._p.pPr.numPr is not None
    if numbered or style.startswith("List"):
        return f"- {text}"
    return text


def _row(row: Any) -> str:
    cells, seen = [], set()
    for cell in row.cells:
        if id(cell._tc) in seen:  # a merged cell repeats the same w:tc
            continue
        seen.add(id(cell._tc))
        cells.append(" ".join(cell.text.split()))
    return "| " + " | ".join(cells) + " |"
