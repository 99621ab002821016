"""What a file is by its bytes, not its name: pdf, docx, zip, html, text, binary or empty."""

from __future__ import annotations

import codecs
import io
import re
import zipfile

KINDS = ("pdf", "docx", "zip", "html", "text", "binary", "empty")
# What each file name suffix promises; a file whose bytes say otherwise is refused.
SUFFIX_KINDS: dict[str, tuple[str, ...]] = {
    ".pdf": ("pdf",),
    ".docx": ("docx",),
    ".txt": ("text", "html"),  # a .txt file may well hold markup; it is read as text
    ".md": ("text", "html"),
    ".html": ("html", "text"),
    ".htm": ("html", "text"),
}
NAMES = {"pdf": "a PDF", "docx": "a Word (DOCX) document", "zip": "a zip archive",
         "html": "HTML", "text": "text", "binary": "binary data", "empty": "empty"}  # fmt: skip

_HTML = re.compile(
    r"^\s*(<!doctype\s+html|<html|<head|<body|<title|<meta|<p[\s>]|<div|<table|<h[1-6][\s>]|<br"
    r"|<a\s|<script|<style|<!--)",
    re.I,
)


def sniff(data: bytes) -> str:
    """The kind of content `data` holds (one of `KINDS`); only the first 8 KiB and a zip's index
    are looked at."""
    if not data:
        return "empty"
    if b"%PDF-" in data[:1024]:  # readers accept junk before the header within 1024 bytes
        return "pdf"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return "binary"
        if "[Content_Types].xml" in names and "word/document.xml" in names:
            return "docx"
        return "zip"
    text = _decode(data[:8192])
    if text is None:
        return "binary"
    return "html" if _HTML.match(text.lstrip("\ufeff")) else "text"


def mismatch(suffix: str, kind: str) -> str:
    """Why a file named `*suffix` with content `kind` is refused, or "" if the two agree."""
    allowed = SUFFIX_KINDS.get(suffix.lower())
    if allowed is None or kind in allowed or kind in ("binary", "empty"):
        return ""  # binary and empty files get their own, more precise reasons
    return f"it is named {suffix.lower()} but its content is {NAMES[kind]} (the extension lies)"


def suffix_for(kind: str) -> str:
    """The file name suffix an upload of this kind is stored under."""
    return {"pdf": ".pdf", "docx": ".docx", "html": ".html", "text": ".txt"}.get(kind, "")


def _decode(b: bytes) -> str | None:
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                     (codecs.BOM_UTF16_BE, "utf-16-be")):  # fmt: skip
        if b.startswith(bom):
            return b[len(bom) :].decode(enc, "ignore")
    if b"\x00" in b:
        return None
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(b) - 4:  # not just a character cut at the 8 KiB boundary
            return None
        s = b[: e.start].decode("utf-8")
    ctrl = sum(1 for c in s if ord(c) < 32 and c not in "\t\n\r\f\v")
    return None if s and ctrl / len(s) > 0.01 else s
