"""Citation verification: a citation is shown only if its quote is exactly the file's text there."""

from __future__ import annotations

import logging
from pathlib import Path

from .documents import read_text
from .types import Citation

log = logging.getLogger(__name__)


class SourceReader:
    """Reads source files for verification, cached by size and modification time."""

    def __init__(self, seeds_dir: Path) -> None:
        self.root = seeds_dir
        self._cache: dict[str, tuple[tuple[int, float], str]] = {}

    def text(self, source: str) -> str | None:
        path = self.root / source
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime)
            hit = self._cache.get(source)
            if hit and hit[0] == key:
                return hit[1]
            text = read_text(path)
        except (OSError, UnicodeDecodeError):
            return None
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
