"""Adding a file to the seeds folder (an upload) and taking one out, losing nothing either way.

An upload is written to a hidden temporary file in the seeds folder (the folder scan skips dot
files), checked by content (`sniff`; the extension must agree, or is supplied when missing), read
through its reader as the ingest would read it (an encrypted or scanned PDF is refused here, with
the reason), and only then linked into place under a safe name. `os.link` never replaces a file:
an upload whose name is taken by a *different* file is stored as `name (2).ext` (then 3, 4, ...)
and the new name is reported; the same bytes under the same name are left as they are. A removed
document is moved to `.removed/` in the seeds folder, not deleted.
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from assistant.documents.reader import (
    DEFAULT_MAX_PDF_PAGES,
    SUFFIXES,
    read_bytes,
    read_document,
)
from assistant.documents.sniff import NAMES, mismatch, sniff, suffix_for
from assistant.errors import BadInputError, DocumentError
from assistant.fileio import file_sha256

REMOVED = ".removed"
MAX_NAME = 120
_UNSAFE = re.compile(r"[^\w .,()+-]+")


@dataclass(frozen=True)
class Stored:
    """Where an upload went: its source name in the seeds folder and what happened."""

    source: str
    status: str  # "added", "renamed" (the name was taken by another file) or "unchanged"
    requested: str  # the name it was uploaded as


def safe_name(name: str) -> str:
    """A file name without folders, control or shell characters, or a leading dot."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = _UNSAFE.sub("_", base).strip(" ._") or "upload"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = stem[: MAX_NAME - len(ext) - 1].rstrip(" .") or "upload"
    return f"{stem}.{ext.lower()}" if ext else stem


def store_upload(seeds_dir: Path, name: str, upload: Path, *, max_bytes: int,
                 max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES) -> Stored:  # fmt: skip
    """Check an uploaded file and add it to the seeds folder (see the module docstring)."""
    wanted = safe_name(name)
    size = upload.stat().st_size
    if size > max_bytes:
        raise BadInputError(
            f"{wanted} is {size / 2**20:.1f} MB; the upload limit is {max_bytes / 2**20:g} MB.",
            "Split it, or raise ASSISTANT_MAX_UPLOAD_MB.",
        )
    data = read_bytes(upload, max_bytes)
    kind = sniff(data)
    if kind not in ("pdf", "docx", "html", "text"):
        raise BadInputError(
            f"{wanted} is not a document the assistant can read (its content is {NAMES[kind]}).",
            "Upload PDF, DOCX, TXT, Markdown or HTML files.",
        )
    suffix = Path(wanted).suffix.lower()
    if suffix not in SUFFIXES:
        wanted, suffix = wanted + suffix_for(kind), suffix_for(kind)
    reason = mismatch(suffix, kind)
    if reason:
        raise BadInputError(f"{wanted} was not added: {reason}.",
                            "Rename it to what it is and upload it again.")  # fmt: skip
    seeds_dir.mkdir(parents=True, exist_ok=True)
    tmp = seeds_dir / f".upload-{uuid.uuid4().hex}{suffix}"
    try:
        tmp.write_bytes(data)
        try:
            text, _ = read_document(tmp, max_bytes, max_pdf_pages)
        except DocumentError as exc:
            raise BadInputError(f"{wanted} was not added: {exc.message}.", exc.hint) from None
        except UnicodeDecodeError:
            raise BadInputError(f"{wanted} was not added: it is not UTF-8 text.",
                                "Save it as UTF-8 and upload it again.") from None  # fmt: skip
        if not text.strip():
            raise BadInputError(f"{wanted} was not added: it has no text.",
                                "Upload a document with text in it.")  # fmt: skip
        return _place(seeds_dir, tmp, wanted)
    finally:
        tmp.unlink(missing_ok=True)


def _place(seeds_dir: Path, tmp: Path, wanted: str) -> Stored:
    stem, suffix = Path(wanted).stem, Path(wanted).suffix
    sha = file_sha256(tmp)
    for n in range(1, 1000):
        name = wanted if n == 1 else f"{stem} ({n}){suffix}"
        dest = seeds_dir / name
        try:
            os.link(tmp, dest)  # atomic, and never replaces an existing file
        except FileExistsError:
            if dest.is_file() and not dest.is_symlink() and file_sha256(dest) == sha:
                return Stored(name, "unchanged", wanted)
            continue
        return Stored(name, "added" if n == 1 else "renamed", wanted)
    raise BadInputError(f"{wanted} was not added: too many files share its name.",
                        "Rename it and upload it again.")  # fmt: skip


def remove_document(seeds_dir: Path, source: str) -> Path:
    """Move a document out of the seeds folder into `.removed/`; returns where it went."""
    root = seeds_dir.resolve()
    path = (seeds_dir / source).resolve()
    if root not in path.parents or not path.is_file() or source.startswith("."):
        raise BadInputError(f"There is no document {source!r} in the seeds folder.",
                            "Pick one from the list of documents.")  # fmt: skip
    target_dir = root / REMOVED / Path(source).parent
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    n = 2
    while target.exists():
        target = target_dir / f"{path.stem} ({n}){path.suffix}"
        n += 1
    os.replace(path, target)
    return target
