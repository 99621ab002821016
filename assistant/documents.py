"""Finding and reading the documents of the seeds folder."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import SeedsError

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Document:
    """One source file: `source` is its path relative to the seeds folder, with `/` separators."""

    source: str
    path: Path
    text: str
    sha256: str


def discover(seeds_dir: Path) -> list[Path]:
    """Every candidate file under the seeds folder, sorted; outside symlinks are skipped."""
    if not seeds_dir.exists():
        raise SeedsError(
            f"The seeds folder {seeds_dir} does not exist.",
            "Create it and put .txt or .md files in it, or pass --seeds DIR.",
        )
    if not seeds_dir.is_dir():
        raise SeedsError(f"{seeds_dir} is not a folder.", "Pass a folder with --seeds DIR.")
    root = seeds_dir.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in SUFFIXES:
                continue
            if path.is_symlink():
                target = path.resolve()
                if root not in target.parents:
                    log.warning(
                        "Skipping %s: it is a symlink pointing outside the seeds folder.", path
                    )
                    continue
            found.append(path)
    return found


def relative_source(seeds_dir: Path, path: Path) -> str:
    return path.relative_to(seeds_dir.resolve()).as_posix()


def read_text(path: Path) -> str:
    """The file's text as UTF-8 with newlines untouched (offsets index into exactly this)."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "binary file (NUL bytes)")
    return data.decode("utf-8")


def load_documents(seeds_dir: Path) -> tuple[list[Document], list[str]]:
    """Read every document; return them and the skipped sources (each skip is logged)."""
    docs: list[Document] = []
    skipped: list[str] = []
    for path in discover(seeds_dir):
        source = relative_source(seeds_dir, path)
        try:
            text = read_text(path)
        except UnicodeDecodeError:
            log.warning("Skipping %s: it is not UTF-8 text (binary or another encoding).", source)
            skipped.append(source)
            continue
        except OSError as exc:
            log.warning("Skipping %s: it cannot be read (%s).", source, exc.strerror or exc)
            skipped.append(source)
            continue
        if not text.strip():
            log.warning("Skipping %s: it is empty.", source)
            skipped.append(source)
            continue
        docs.append(Document(source, path, text, hashlib.sha256(text.encode("utf-8")).hexdigest()))
    return docs, skipped
