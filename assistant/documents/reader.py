"""Finding and reading the documents of the seeds folder.

The text of a document is what the assistant stores, cites and verifies: a `.txt` or `.md` file's
UTF-8 text exactly as read (newlines untouched), or the text extracted from an `.html`/`.htm` file
by `html.extract`, a `.pdf` by `pdf.extract`, a `.docx` by `docx.extract` (each deterministic, so
verification extracts again and compares). A file's content must agree with its name's suffix
(`sniff`): a "PDF" that is a zip, or a ".txt" that is a PDF, is skipped with the reason.

Hostile files are skipped with a warning naming them, never followed or read blindly: symlinks
pointing outside the seeds folder, anything that is not a regular file (a FIFO would block the
read), files larger than `max_file_mb` (checked with `stat` before reading, so memory stays
bounded), binary or non-UTF-8 files, unreadable and empty files, and documents their reader
refuses (`DocumentError`: encrypted, scanned or corrupt PDFs, too many pages, corrupt DOCX, a
decompression bomb, a lying extension). Files with the same text at two
paths are indexed once, under the first path in sorted order.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from assistant.documents.sniff import mismatch, sniff
from assistant.errors import DocumentError, SeedsError

log = logging.getLogger(__name__)

HTML_SUFFIXES = (".html", ".htm")
SUFFIXES = (".txt", ".md", *HTML_SUFFIXES, ".pdf", ".docx")
DEFAULT_MAX_FILE_MB = 20.0
DEFAULT_MAX_PDF_PAGES = 1000
DEFAULT_MAX_BYTES = int(DEFAULT_MAX_FILE_MB * 1024 * 1024)


@dataclass(frozen=True)
class Document:
    """One source file: `source` is its path relative to the seeds folder, with `/` separators."""

    source: str
    path: Path
    text: str
    sha256: str
    title: str = ""  # from the file itself (an HTML <title>); else the index derives one
    extractor: str = ""  # what made the text of a PDF or DOCX (name and version)


@dataclass
class Scan:
    """What a pass over the seeds folder found."""

    docs: list[Document] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why it was skipped
    duplicates: dict[str, str] = field(default_factory=dict)  # source -> source indexed instead


def check_seeds_dir(seeds_dir: Path) -> None:
    """Raise `SeedsError` unless the seeds folder exists and is a folder."""
    if not seeds_dir.exists():
        raise SeedsError(
            f"The seeds folder {seeds_dir} does not exist.",
            "Create it and put .txt, .md, .html, .pdf or .docx files in it, or pass --seeds DIR.",
        )
    if not seeds_dir.is_dir():
        raise SeedsError(f"{seeds_dir} is not a folder.", "Pass a folder with --seeds DIR.")


def discover(seeds_dir: Path) -> list[Path]:
    """Every candidate file under the seeds folder, sorted; outside symlinks are skipped."""
    return _walk(seeds_dir)[0]


def _walk(seeds_dir: Path) -> tuple[list[Path], dict[str, str]]:
    check_seeds_dir(seeds_dir)
    root = seeds_dir.resolve()
    found: list[Path] = []
    skipped: dict[str, str] = {}

    def unreadable(exc: OSError) -> None:
        source = relative_source(seeds_dir, Path(exc.filename)) + "/"
        source = os.fsencode(source).decode("utf-8", "backslashreplace")
        skipped[source] = f"it is a folder that cannot be read ({exc.strerror or exc})"
        log.warning("Skipping %s: %s.", source, skipped[source])

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in SUFFIXES:
                continue
            source = relative_source(seeds_dir, path)
            if not _utf8(source):  # cannot be stored, shown or cited as text: name it by its bytes
                source = os.fsencode(source).decode("utf-8", "backslashreplace")
                reason = "its name is not valid UTF-8 (rename the file)"
                log.warning("Skipping %s: %s.", source, reason)
                skipped[source] = reason
                continue
            reason = _outside(root, path) or _not_regular(path)
            if reason:
                log.warning("Skipping %s: %s.", source, reason)
                skipped[source] = reason
                continue
            found.append(path)
    found.sort(key=lambda p: relative_source(seeds_dir, p))  # by source, folders mixed in
    return found, skipped


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.walk decodes undecodable bytes as lone surrogates
        return False
    return True


def _outside(root: Path, path: Path) -> str:
    if not path.is_symlink() or not path.exists():
        return ""  # a dangling symlink is a file that cannot be read (`_not_regular` says so)
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return "it is a symlink that cannot be resolved (not followed)"
    if root in target.parents:
        return ""
    return "it is a symlink pointing outside the seeds folder (not followed)"


def _not_regular(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    return "" if stat.S_ISREG(mode) else "it is not a regular file"


def relative_source(seeds_dir: Path, path: Path) -> str:
    return path.relative_to(seeds_dir.resolve()).as_posix()


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """A regular file's bytes; OSError(EFBIG) past `max_bytes`, read no further than that."""
    if not stat.S_ISREG(path.stat().st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    with path.open("rb", buffering=0) as fh:
        if max_bytes is None:
            return fh.read()
        if os.fstat(fh.fileno()).st_size > max_bytes:
            raise OSError(errno.EFBIG, "file too large")
        # In blocks: read(n) allocates n bytes up front, and the file may grow while we read.
        blocks, total = [], 0
        while block := fh.read(1 << 20):
            total += len(block)
            if total > max_bytes:
                raise OSError(errno.EFBIG, "file too large")
            blocks.append(block)
    return b"".join(blocks)


def read_document(path: Path, max_bytes: int | None = DEFAULT_MAX_BYTES,
                  max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES) -> tuple[str, str]:  # fmt: skip
    """The text the assistant stores for a file (see the module docstring) and its own title."""
    data = read_bytes(path, max_bytes)
    suffix = path.suffix.lower()
    reason = mismatch(suffix, sniff(data))
    if reason:
        raise DocumentError(reason, "Rename it to what it is, or remove it.")
    if suffix == ".pdf":
        from assistant.documents.pdf import extract as extract_pdf

        if not data.strip():
            return "", ""
        found = extract_pdf(data, max_pdf_pages)
        return found.text, found.title
    if suffix == ".docx":
        from assistant.documents.docx import extract as extract_docx

        if not data.strip():
            return "", ""
        return extract_docx(data)
    nul = data.find(b"\x00")  # anywhere in the file, not only its first block
    if nul >= 0:
        raise UnicodeDecodeError("utf-8", data, nul, nul + 1, "binary file (NUL bytes)")
    text = data.decode("utf-8")
    if path.suffix.lower() in HTML_SUFFIXES:
        from assistant.documents.html import extract

        return extract(text)
    return text, ""


def read_text(path: Path, max_bytes: int | None = DEFAULT_MAX_BYTES,
              max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES) -> str:  # fmt: skip
    """The text offsets index into: UTF-8 as read, or the extracted text of an HTML/PDF/DOCX."""
    return read_document(path, max_bytes, max_pdf_pages)[0]


# The kinds whose text an extractor makes: (our module, whose EXTRACTOR_VERSION counts; the
# distribution it reads with, whose version counts too; the kind's name in the string). A new
# version of either re-extracts the documents.
_EXTRACTORS = {
    ".pdf": ("assistant.documents.pdf", "pypdfium2", "pdf"),
    ".docx": ("assistant.documents.docx", "python-docx", "docx"),
}


def extractor_of(source: str) -> str:
    """The name and version of what makes a document's text, for the kinds that need one
    ("pypdfium2 5.15.2 / assistant pdf 1"), recorded in the manifest for each document."""
    entry = _EXTRACTORS.get(Path(source).suffix.lower())
    if entry is None:
        return ""
    module, dist, kind = entry
    try:
        dist_version = version(dist)
    except PackageNotFoundError:  # pragma: no cover - the dependencies are pinned
        dist_version = "?"
    return f"{dist} {dist_version} / assistant {kind} {import_module(module).EXTRACTOR_VERSION}"


def page_of(source: str, text: str, offset: int) -> int | None:
    """The 1-based page of a PDF citation at `offset` of its text; None for other kinds."""
    if Path(source).suffix.lower() != ".pdf":
        return None
    from assistant.documents.pdf import page_of as pdf_page_of

    return pdf_page_of(text, offset)


def content_hash(text: str, title: str = "") -> str:
    """The hash that says a document changed: of its text, and of an HTML title if it has one."""
    data = text if not title else f"{title}\x00{text}"
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def mb_to_bytes(mb: float) -> int:
    return int(mb * 1024 * 1024)


def scan(seeds_dir: Path, max_file_mb: float = DEFAULT_MAX_FILE_MB,
         max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES) -> Scan:  # fmt: skip
    """Read every document once; skipped files and duplicates are logged and reported."""
    paths, skipped = _walk(seeds_dir)
    result = Scan(skipped=skipped)
    first: dict[str, str] = {}  # sha256 -> source
    limit = mb_to_bytes(max_file_mb)
    for path in paths:
        source = relative_source(seeds_dir, path)
        try:
            text, title = read_document(path, limit, max_pdf_pages)
        except DocumentError as exc:
            reason = exc.message
        except UnicodeDecodeError:
            reason = "it is not UTF-8 text (binary or another encoding)"
        except OSError as exc:
            if exc.errno == errno.EFBIG:
                reason = f"it is larger than the {max_file_mb:g} MB limit (ASSISTANT_MAX_FILE_MB)"
            elif exc.errno == errno.EINVAL:
                reason = "it is not a regular file"
            else:
                reason = f"it cannot be read ({exc.strerror or exc})"
        else:
            reason = "" if text.strip() else "it is empty"
        if reason:
            log.warning("Skipping %s: %s.", source, reason)
            result.skipped[source] = reason
            continue
        sha = content_hash(text, title)
        if sha in first:
            log.info("%s has the same text as %s: indexed once, as %s.", source, first[sha],
                     first[sha])  # fmt: skip
            result.duplicates[source] = first[sha]
            continue
        first[sha] = source
        result.docs.append(Document(source, path, text, sha, title, extractor_of(source)))
    result.skipped = dict(sorted(result.skipped.items()))
    return result


def load_documents(
    seeds_dir: Path, max_file_mb: float = DEFAULT_MAX_FILE_MB,
    max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES,
) -> tuple[list[Document], list[str]]:
    """Read every document; return them (duplicates once) and the skipped sources."""
    found = scan(seeds_dir, max_file_mb, max_pdf_pages)
    return found.docs, list(found.skipped)
