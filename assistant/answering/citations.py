"""Citation verification: a citation is shown only if its quote is exactly the file's text there.

"The file's text" is `documents.read_text`: the file as read, or for HTML, PDF and DOCX the text
extracted from it again (extraction is deterministic), so offsets into extracted text verify like
any other. A verified PDF citation gets its page (`with_pages`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from assistant.documents.reader import (
    DEFAULT_MAX_FILE_MB,
    DEFAULT_MAX_PDF_PAGES,
    mb_to_bytes,
    page_of,
    read_text,
)
from assistant.errors import DocumentError
from assistant.types import Citation

log = logging.getLogger(__name__)


class SourceReader:
    """Reads source files for verification, cached by size and modification time.

    A file modified in the last two seconds is not cached: a rewrite within the same timestamp tick
    and with the same size would otherwise go unnoticed (git calls this the racy-clean problem).
    """

    def __init__(self, seeds_dir: Path, max_file_mb: float = DEFAULT_MAX_FILE_MB,
                 max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES) -> None:  # fmt: skip
        self.root = seeds_dir
        self._max_bytes = mb_to_bytes(max_file_mb)
        self._max_pages = max_pdf_pages
        self._cache: dict[str, tuple[tuple[int, int], str]] = {}

    def text(self, source: str) -> str | None:
        path = self.root / source
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
            hit = self._cache.get(source)
            if hit and hit[0] == key:
                return hit[1]
            text = read_text(path, self._max_bytes, self._max_pages)
        except (OSError, UnicodeDecodeError, DocumentError):
            return None
        if time.time() - st.st_mtime > 2.0:
            self._cache[source] = (key, text)
        return text


def verify(citations: list[Citation], reader: SourceReader) -> list[Citation]:
    """Keep only citations whose quote equals the source text at their offsets; log the rest."""
    good = []
    for c in citations:
        text = reader.text(c.source)
        if (
            text is not None
            and 0 <= c.start < c.end <= len(text)
            and text[c.start : c.end] == c.quote
        ):
            good.append(c)
        else:
            log.warning(
                "Dropped a citation that does not match its source: %s [%d, %d)",
                c.source,
                c.start,
                c.end,
            )
    return good


def with_pages(citations: list[Citation], reader: SourceReader) -> list[Citation]:
    """The citations, each PDF one with the 1-based page its span starts on."""
    out = []
    for c in citations:
        text = reader.text(c.source) if c.page is None else None
        page = page_of(c.source, text, c.start) if text is not None else None
        out.append(dataclasses.replace(c, page=page) if page is not None else c)
    return out
