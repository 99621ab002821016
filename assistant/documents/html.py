"""Plain text from HTML with the standard library's `html.parser`: the text we store and cite.

Extraction is deterministic (the same bytes give the same text), so a citation's offsets into the
extracted text are verified by extracting the file again. Block elements become paragraphs with a
blank line between them; headings get Markdown `#` marks and list items a `- ` mark, so the
sentence splitter sees them as it sees a Markdown file; `<br>` and table cells break lines; script,
style and other non-content elements are dropped; whitespace runs collapse to one space except
inside `<pre>`. Character references (`&amp;`, `&#8217;`) are decoded.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas"}
)
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header",
        "hgroup", "hr", "html", "legend", "main", "nav", "ol", "p", "section", "summary", "table",
        "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_LINE = frozenset({"br", "td", "th"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACES = re.compile(r"[ \t\f\v\r\n\u00a0]+")


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.title_parts: list[str] = []
        self.first_h1 = ""
        self._parts: list[str] = []
        self._prefix = ""
        self._skip = 0
        self._pre = 0
        self._in_title = False
        self._heading = 0

    # -- paragraphs -----------------------------------------------------------------------------
    def _flush(self) -> None:
        raw = "".join(self._parts)
        self._parts = []
        if self._pre:
            text = raw.strip("\r\n")
            text = text if text.strip() else ""
        else:
            lines = (_SPACES.sub(" ", line).strip() for line in raw.split("\n"))
            text = "\n".join(line for line in lines if line)
        if text:
            if self._heading == 1 and not self.first_h1:
                self.first_h1 = text.replace("\n", " ")
            self.paragraphs.append(self._prefix + text)
        self._prefix = ""

    # -- parser callbacks -----------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif self._skip:
            return
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
            self._prefix = "#" * self._heading + " "
        elif tag == "li":
            self._flush()
            self._prefix = "- "
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag in _BLOCK:
            self._flush()
        elif tag in _LINE:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif self._skip:
            return
        elif tag in _HEADINGS:
            self._flush()
            self._heading = 0
        elif tag == "pre":
            self._flush()
            self._pre = max(0, self._pre - 1)
        elif tag in _BLOCK or tag == "li":
            self._flush()
        elif tag in ("td", "th"):
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip:
            self._parts.append(data if self._pre else _SPACES.sub(" ", data))

    def close(self) -> None:
        super().close()
        self._flush()


def extract(html: str) -> tuple[str, str]:
    """The text of an HTML document and its title (`<title>`, else the first `<h1>`, else "")."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    text = "\n\n".join(parser.paragraphs)
    title = _SPACES.sub(" ", "".join(parser.title_parts)).strip() or parser.first_h1
    return (text + "\n" if text else ""), title
