"""Citation verification: a citation is shown only if its quote is exactly the file's text there.

"The file's text" is `documents.read_text`: the file as read, or for HTML the text extracted from
it again (extraction is deterministic), so offsets into stored HTML text verify like any other.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from assistant.documents.reader import DEFAULT_MAX_FILE_MB, mb_to_bytes, read_text
from assistant.types import Citation

log = logging.getLogger(__name__)


class SourceReader:
    """Reads source files for verification, cached by size and modification time.

    A file modified in the last two seconds is not cached: a rewrite within the same timestamp tick
    and with the same size would otherwise go unnoticed (git calls this the racy-clean problem).
    """

    def __init__(self, seeds_dir: Path, max_file_mb: float = DEFAULT_MAX_FILE_MB) -> None:
        self.root = seeds_dir
        self._max_bytes = mb_to_bytes(max_file_mb)
        self._cache: dict[str, tuple[tuple[int, int], str]] = {}

    def text(self, source: str) -> str | None:
        path = self.root / source
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
            hit = self._cache.get(source)
            if hit and hit[0] == key:
                return hit[1]
            text = read_text(path, self._max_bytes)
        except (OSError, UnicodeDecodeError):
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
