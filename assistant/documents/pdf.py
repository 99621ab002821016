"""PDF text with exact offsets, and the page image of a cited span: the one module with pypdfium2.

A PDF's text is one deterministic extraction (`EXTRACTOR` names it in the manifest), pages joined
by `PAGE_BREAK` (a form feed on a line of its own), so a citation's page is the number of form
feeds before it, plus one. Every character of the text is either a pdfium character (`PdfPage.src`
holds its pdfium index, which gives its box on the page) or synthetic (-1): the spaces and blank
lines that join lines into paragraphs, and the `# ` mark of a heading. What is changed on the way:

- line breaks inside a paragraph become spaces, a vertical gap or a column jump a blank line;
- a word hyphenated at a line end is joined: a soft hyphen (pdfium gives U+2010 or U+00AD) is
  dropped, a real `-` kept ("state-of-the-\\nart" -> "state-of-the-art");
- a line in a larger font than the body text is a heading (`# ` before it, as in Markdown);
- a running header or footer is dropped: a line in the top or bottom `MARGIN_BAND` of its page
  that (digits read as `#`) recurs at the same height on at least half the pages (and two), not
  in a larger font than the body. (Body text repeated page after page stays: it is not in the
  margins.)

pdfium is not thread-safe: every call into it holds `_LOCK`. pypdfium2 (and Pillow, for the page
image) are imported on first use, so reading a folder of text files never loads them.
"""

from __future__ import annotations

import ctypes
import io
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import DocumentError

EXTRACTOR_VERSION = 1  # bump when the text this module makes from the same file changes
PAGE_BREAK = "\n\f\n"
SYNTHETIC = -1
DEFAULT_MAX_PAGES = 1000
RENDER_DPI = 110
HIGHLIGHT_RGBA = (255, 200, 0, 110)
MARGIN_BAND = 0.12  # the share of a page's height at its top and bottom where running lines sit

_LOCK = threading.RLock()
_SOFT_HYPHENS = ("\u00ad", "\u2010")
_DIGITS = re.compile(r"\d+")
_FILE_NAME = re.compile(r"^[\w .,()-]+\.(?:html?|pdf|docx?|txt|md)$", re.I)
_LIST_START = re.compile(r"\s*(?:[-*+•▪◦]|\d{1,3}[.)])\s")


def page_of(text: str, offset: int) -> int:
    """The 1-based page of a PDF's extracted text that holds character `offset`."""
    return text.count("\f", 0, offset) + 1


@dataclass(frozen=True)
class PdfPage:
    """One page of the extracted text: where it starts and each character's pdfium index."""

    number: int  # 1-based
    start: int  # offset of the page's text in the document's text
    src: tuple[int, ...]  # pdfium char index of each character of the page's text, or -1


@dataclass(frozen=True)
class PdfText:
    """A PDF's extracted text, its title and the per-page map back to pdfium characters."""

    text: str
    title: str
    pages: tuple[PdfPage, ...]

    def page_at(self, offset: int) -> PdfPage:
        return self.pages[min(page_of(self.text, offset), len(self.pages)) - 1]


@dataclass
class _Line:
    chars: list[tuple[str, int]]
    size: float = 0.0  # largest font size of its visible characters
    first: tuple[float, float] = (0.0, 0.0)  # (bottom, top) of its first visible character
    last: tuple[float, float] = (0.0, 0.0)  # ... and of its last one
    heading: bool = False
    in_margin: bool = False  # in the top or bottom MARGIN_BAND of the page
    key: tuple[str, int] = ("", 0)  # header/footer key: digits as '#', height bucket
    text: str = field(default="", repr=False)


def _pdfium() -> Any:
    import pypdfium2

    return pypdfium2


def _open(pdfium: Any, data: bytes) -> Any:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise DocumentError(
                "it is an encrypted PDF (it needs a password)",
                "Save a copy without the password (print to PDF) and add that.",
            ) from None
        raise DocumentError(
            "it is not a readable PDF (corrupt or truncated)",
            "Open it in a PDF viewer to check it, or export it again.",
        ) from None


def extract(data: bytes, max_pages: int = DEFAULT_MAX_PAGES) -> PdfText:
    """The text of a PDF (see the module docstring); `DocumentError` if it cannot give one."""
    pdfium = _pdfium()
    with _LOCK:
        doc = _open(pdfium, data)
        try:
            n = len(doc)
            if n > max_pages:
                raise DocumentError(
                    f"it has {n} pages; the limit is {max_pages} (ASSISTANT_MAX_PDF_PAGES)",
                    "Split it, or raise ASSISTANT_MAX_PDF_PAGES.",
                )
            pages = [_page_lines(pdfium, doc, i) for i in range(n)]
            title = (doc.get_metadata_dict().get("Title") or "").strip()
            if _FILE_NAME.match(title):
                title = ""  # a printer's stand-in (Chromium puts the page's file name there)
        finally:
            doc.close()
    if not any(c.strip() for lines in pages for line in lines for c, _ in line.chars):
        raise DocumentError(
            "it is a PDF without a text layer (a scan?), and OCR is not supported",
            "Add a PDF with selectable text, or run OCR on it first.",
        )
    return _assemble(pages, title)


def _raw_chars(raw: Any, tp: Any) -> list[tuple[str, int]]:
    """(character, pdfium index) for every pdfium character; surrogate pairs joined."""
    n = tp.count_chars()
    out: list[tuple[str, int]] = []
    i = 0
    while i < n:
        cp = raw.FPDFText_GetUnicode(tp, i)
        if 0xD800 <= cp < 0xDC00 and i + 1 < n:
            lo = raw.FPDFText_GetUnicode(tp, i + 1)
            if 0xDC00 <= lo < 0xE000:
                out.append((chr(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)), i))
                i += 2
                continue
        if raw.FPDFText_IsHyphen(tp, i):  # a '-' at a line end: pdfium swallows the break
            out += [("-", i), ("\n", SYNTHETIC)]
        elif cp in (0x0A, 0x0D):
            out.append((chr(cp), i))
        elif cp < 0x20 or cp in (0xFFFE, 0xFFFF) or 0xD800 <= cp < 0xE000:
            out.append((" ", i))  # a control character or a stray surrogate: a space
        else:
            out.append((chr(cp), i))
        i += 1
    return out


def _dehyphenate(chars: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Drop '\\r' and mid-line soft hyphens; join words hyphenated at a line end."""
    chars = [(c, k) for c, k in chars if c != "\r"]
    out: list[tuple[str, int]] = []
    j = 0
    while j < len(chars):
        c, k = chars[j]
        at_line_end = j + 2 < len(chars) and chars[j + 1][0] == "\n"
        if (c in _SOFT_HYPHENS or c == "-") and at_line_end and out and out[-1][0].isalpha() \
                and chars[j + 2][0].islower():  # fmt: skip
            if c == "-":
                out.append((c, k))  # a real hyphen stays; the line break goes
            j += 2
            continue
        if c != "\u00ad":  # a soft hyphen inside a line is invisible
            out.append((c, k))
        j += 1
    return out


def _page_lines(pdfium: Any, doc: Any, index: int) -> list[_Line]:
    raw = pdfium.raw
    page = doc[index]
    tp = page.get_textpage()
    height = page.get_height()
    try:
        chars = _dehyphenate(_raw_chars(raw, tp))
        lines, current = [], []
        for c, k in [*chars, ("\n", SYNTHETIC)]:
            if c == "\n":
                if current:
                    lines.append(_Line(current))
                current = []
            else:
                current.append((c, k))
        for line in lines:
            boxes, sizes = [], []
            for c, k in line.chars:
                if k < 0 or c.isspace():
                    continue
                left, bottom, right, top = tp.get_charbox(k, loose=True)
                if right > left and top > bottom:
                    boxes.append((bottom, top))
                sizes.append(round(raw.FPDFText_GetFontSize(tp, k), 1))
            line.text = "".join(c for c, _ in line.chars)
            line.size = max(sizes, default=0.0)
            if boxes:
                line.first, line.last = boxes[0], boxes[-1]
            top = max((t for _, t in boxes), default=0.0)
            bottom = min((b for b, _ in boxes), default=0.0)
            band = MARGIN_BAND * height
            line.in_margin = bool(boxes) and (top >= height - band or bottom <= band)
            line.key = (_DIGITS.sub("#", line.text.strip()), round(top / 3.0))
        return lines
    finally:
        tp.close()
        page.close()


def _body_size(pages: list[list[_Line]]) -> float:
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            sizes[line.size] += len(line.text.strip())
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _drop_running_lines(pages: list[list[_Line]], body: float) -> list[list[_Line]]:
    """Without the lines that recur at the same height on most pages (headers, footers)."""
    counts: Counter[tuple[str, int]] = Counter()
    for lines in pages:
        counts.update({line.key for line in lines if line.text.strip() and line.in_margin})
    need = max(2, -(-len(pages) // 2))

    def running(ln: _Line) -> bool:
        return ln.in_margin and counts[ln.key] >= need and ln.size <= body

    return [[ln for ln in lines if not running(ln)] for lines in pages]


def _separator(prev: _Line, line: _Line) -> str:
    """How two consecutive lines of a page join: a space, a line break or a blank line."""
    if prev.heading or line.heading:
        return " " if prev.heading and line.heading and prev.size == line.size else "\n\n"
    gap = prev.last[0] - line.first[1]  # PDF y grows upwards: the next line is lower
    size = max(prev.size, line.size, 1.0)
    if gap > 0.45 * size or gap < -0.5 * size:  # a paragraph gap, or up to the next column
        return "\n\n"
    if _LIST_START.match(line.text):
        return "\n"
    return " "


def _assemble(pages: list[list[_Line]], title: str) -> PdfText:
    body = _body_size(pages)
    for lines in pages:
        for line in lines:
            line.heading = line.size > body * 1.15 and len(line.text.strip()) <= 120
    pages = _drop_running_lines(pages, body)
    texts, maps, starts = [], [], []
    pos = 0
    for lines in pages:
        out: list[tuple[str, int]] = []
        prev: _Line | None = None
        for line in lines:
            if not line.text.strip():
                continue
            if prev is not None:
                out += [(c, SYNTHETIC) for c in _separator(prev, line)]
            if line.heading and (prev is None or not prev.heading):
                out += [("#", SYNTHETIC), (" ", SYNTHETIC)]
            out += line.chars
            prev = line
        if not title:
            title = next((ln.text.strip() for ln in lines if ln.heading), "")
        starts.append(pos)
        texts.append("".join(c for c, _ in out))
        maps.append(tuple(k for _, k in out))
        pos += len(texts[-1]) + len(PAGE_BREAK)
    text = PAGE_BREAK.join(texts) + "\n"
    pdf_pages = tuple(PdfPage(i + 1, starts[i], maps[i]) for i in range(len(texts)))
    return PdfText(text, title, pdf_pages)


# -- the page image of a span ---------------------------------------------------------------------
_CACHE: dict[tuple[str, int, int], PdfText] = {}
_CACHE_SIZE = 8


def load(path: Path, max_bytes: int | None = None, max_pages: int = DEFAULT_MAX_PAGES) -> PdfText:
    """`extract` of a file, cached by path, size and modification time (a few files)."""
    from assistant.documents.reader import read_bytes

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    hit = _CACHE.get(key)
    if hit is None:
        hit = extract(read_bytes(path, max_bytes), max_pages)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = hit
    return hit


@dataclass(frozen=True)
class PageImage:
    """A rendered page with spans highlighted: PNG bytes and each highlight box as (the span's
    index, (left, top, right, bottom) as fractions of the image), for scrolling to it."""

    page: int
    png: bytes
    boxes: tuple[tuple[int, tuple[float, float, float, float]], ...]


Span = tuple[int, int, tuple[int, int, int, int]]  # start, end (of the text), highlight RGBA


def render_span(path: Path, start: int, end: int, **kwargs: Any) -> PageImage:
    """The page holding `[start, end)` of the PDF's text, with those characters highlighted."""
    pdf = load(path, kwargs.get("max_bytes"), kwargs.get("max_pages", DEFAULT_MAX_PAGES))
    return render_page(path, pdf.page_at(start).number, [(start, end, HIGHLIGHT_RGBA)], **kwargs)


def render_page(path: Path, page_number: int, spans: list[Span], *, dpi: int = RENDER_DPI,
                max_bytes: int | None = None, max_pages: int = DEFAULT_MAX_PAGES
                ) -> PageImage:  # fmt: skip
    """Page `page_number` (1-based) with the characters of each span on it highlighted."""
    from assistant.documents.reader import read_bytes

    pdf = load(path, max_bytes, max_pages)
    page = pdf.pages[page_number - 1]
    chars = []
    for start, end, _ in spans:
        lo, hi = max(start - page.start, 0), max(min(end - page.start, len(page.src)), 0)
        chars.append(sorted({k for k in page.src[lo:hi] if k >= 0}))
    pdfium = _pdfium()
    from PIL import Image, ImageDraw

    with _LOCK:
        doc = _open(pdfium, read_bytes(path, max_bytes))
        try:
            p = doc[page.number - 1]
            tp = p.get_textpage()
            image = p.render(scale=dpi / 72).to_pil().convert("RGBA")
            w, h = image.size
            boxes = []
            for i, indices in enumerate(chars):
                for left, bottom, right, top in _line_rects(tp, indices):
                    x0, y0 = _to_pixels(pdfium.raw, p, w, h, left, top)
                    x1, y1 = _to_pixels(pdfium.raw, p, w, h, right, bottom)
                    boxes.append((i, (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))))
            tp.close()
            p.close()
        finally:
            doc.close()
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for i, box in boxes:
        draw.rectangle(box, fill=spans[i][2])
    buf = io.BytesIO()
    Image.alpha_composite(image, overlay).convert("RGB").save(buf, "PNG", compress_level=3)
    fractions = tuple((i, (a / w, b / h, c / w, d / h)) for i, (a, b, c, d) in boxes)
    return PageImage(page.number, buf.getvalue(), fractions)


def _line_rects(tp: Any, indices: list[int]) -> list[tuple[float, float, float, float]]:
    """Loose character boxes merged per line (pdfium's own rects are one per glyph here)."""
    rects: list[tuple[float, float, float, float]] = []
    for k in indices:
        left, bottom, right, top = tp.get_charbox(k, loose=True)
        if not (right > left and top > bottom):
            continue  # generated spaces and line breaks have no box
        if rects:
            pl, pb, pr, pt = rects[-1]
            same_line = min(top, pt) - max(bottom, pb) > 0.5 * min(top - bottom, pt - pb)
            if same_line and left >= pl - 1 and left - pr < 3 * (top - bottom):
                rects[-1] = (pl, min(bottom, pb), max(right, pr), max(top, pt))
                continue
        rects.append((left, bottom, right, top))
    return rects


def _to_pixels(raw: Any, page: Any, w: int, h: int, x: float, y: float) -> tuple[int, int]:
    dx, dy = ctypes.c_int(), ctypes.c_int()
    raw.FPDF_PageToDevice(page, 0, 0, w, h, 0, x, y, dx, dy)  # honours /Rotate and the crop box
    return dx.value, dy.value
