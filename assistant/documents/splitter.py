"""Sentence splitting with exact character offsets, heading detection and chunking.

Every span is half-open `[start, end)` into the document text exactly as read (newlines untouched),
so `text[start:end]` is always the sentence itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TERMINAL = re.compile(r"(?:\.{3}|…|[.!?])+[\"”’'»)\]]*")
_PREV_TOKEN = re.compile(r"[\w.’'\-]*$")
_OPENING = "\"“‘'(«["
_CLOSING_PUNCT = ".!?…:;,"

# Never end a sentence: titles before a name.
_TITLES = {
    "mr",
    "mrs",
    "ms",
    "mx",
    "dr",
    "prof",
    "gen",
    "col",
    "lt",
    "sgt",
    "capt",
    "cpt",
    "maj",
    "adm",
    "gov",
    "sen",
    "rep",
    "rev",
    "hon",
    "pres",
    "supt",
    "insp",
    "cmdr",
    "messrs",
    "mme",
    "mlle",
    "st",
    "mt",
    "ft",
    "fr",
    "sr",
    "jr",
    "amb",
    "brig",
    "cdr",
    "pvt",
    "cpl",
}
# Never end a sentence when a number follows.
_BEFORE_NUMBER = {
    "no",
    "nos",
    "vol",
    "vols",
    "fig",
    "figs",
    "p",
    "pp",
    "art",
    "ch",
    "chap",
    "sec",
    "para",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "op",
    "ed",
    "approx",
    "ca",
    "c",
    "est",
    "nr",
    "tel",
}
# Rarely end a sentence.
_OTHER = {
    "approx",
    "ca",
    "cf",
    "vs",
    "viz",
    "al",
    "esp",
    "incl",
    "dept",
    "univ",
    "assn",
    "bros",
    "ave",
    "blvd",
    "rd",
    "e.g",
    "i.e",
    "etc",
    "inc",
    "ltd",
    "co",
    "corp",
    "est",
}
# Words that, after an abbreviation such as "U.S." or "etc.", show that a new sentence began.
_STARTERS = {
    "the",
    "a",
    "an",
    "he",
    "she",
    "it",
    "they",
    "we",
    "i",
    "you",
    "this",
    "that",
    "these",
    "those",
    "but",
    "and",
    "or",
    "so",
    "yet",
    "in",
    "on",
    "at",
    "for",
    "as",
    "if",
    "when",
    "while",
    "after",
    "before",
    "since",
    "there",
    "his",
    "her",
    "its",
    "their",
    "our",
    "my",
    "however",
    "meanwhile",
    "then",
    "now",
    "still",
    "also",
    "what",
    "who",
    "why",
    "how",
    "where",
    "today",
}


@dataclass(frozen=True)
class Sentence:
    """One sentence: its span in the document, its text and the heading it sits under."""

    start: int
    end: int
    text: str
    section: str = ""


@dataclass(frozen=True)
class Chunk:
    """A few consecutive sentences of one section of one document."""

    start: int
    end: int
    section: str
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    sentences: list[Sentence]
    headings: list[tuple[int, int, str]]


# Bump when sentence or heading detection changes: an index keeps the sentences it was built
# with, so one split otherwise is refused (manifest.expected_identity; `ingest --rebuild`).
SPLITTER_VERSION = 2
TITLE_MAX_CHARS = 200  # a first line longer than this is a paragraph without a full stop


def looks_like_heading(line: str) -> bool:
    """A short line without final punctuation or quotes, starting with a capital or a digit."""
    s = line.strip()
    if s.startswith("#"):
        return bool(s.lstrip("#").strip())
    if not s or len(s) > 80 or len(s.split()) > 12:
        return False
    if s[-1] in _CLOSING_PUNCT or s[-1] in "\"”’'":
        return False
    if any(q in s for q in '"“”'):
        return False
    return s[0].isupper() or s[0].isdigit()


def _title_line(text: str, lines: list[tuple[int, int]], i: int) -> bool:
    """The document's first line is its title when it stands alone (a blank line or nothing
    after it) without a sentence's final punctuation, however long: "Peat-free moss biofilters
    reduce nitrate run-off: a two-season field trial". A title is section metadata, not a
    sentence that could answer a question."""
    line = text[lines[i][0] : lines[i][1]].strip()
    after = text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < len(lines) else ""
    return (
        bool(line)
        and len(line) <= TITLE_MAX_CHARS
        and not after.strip()
        and not _ends_sentence(line)
        and not _is_list_item(line)
        and (line[0].isupper() or line[0].isdigit())
    )


def _lines(text: str) -> list[tuple[int, int]]:
    """Spans of lines without their line terminators."""
    spans = []
    pos = 0
    for m in re.finditer(r"\r\n|\r|\n", text):
        spans.append((pos, m.start()))
        pos = m.end()
    if pos <= len(text):
        spans.append((pos, len(text)))
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _ends_sentence(line: str) -> bool:
    s = line.rstrip().rstrip("\"”’'»)]")
    return bool(s) and s[-1] in ".!?…:;"


def _is_list_item(line: str) -> bool:
    return bool(re.match(r"\s*(?:[-*+•]\s|\d{1,3}[.)]\s)", line))


def parse_document(text: str) -> ParsedDocument:
    """Split a document into headings and sentences, keeping exact offsets."""
    sentences: list[Sentence] = []
    headings: list[tuple[int, int, str]] = []
    section = ""
    title = ""
    para: tuple[int, int] | None = None
    prev_line = ""

    def flush() -> None:
        nonlocal para
        if para is not None:
            sentences.extend(
                Sentence(a, b, text[a:b], section)
                for s, e in split_sentences(text, *para)
                for a, b in split_long(text, s, e)
            )
        para = None

    lines = _lines(text)
    for i, (ls, le) in enumerate(lines):
        line = text[ls:le]
        if not line.strip():
            flush()
            prev_line = ""
            continue
        following = next((text[a:b] for a, b in lines[i + 1 :] if text[a:b].strip()), "")
        markdown = line.lstrip().startswith("#")
        # A heading is followed by something, and not by the lower-case rest of its own line.
        if (looks_like_heading(line) and (
            markdown or (following and not following.lstrip()[:1].islower())
        )) or (not headings and not sentences and para is None and _title_line(text, lines, i)):
            flush()
            hs, he = _strip_span(text, ls, le)
            name = text[hs:he].lstrip("#").strip()
            headings.append((hs, he, name))
            section = name
            if not title and not sentences:
                title = name
            prev_line = ""
            continue
        continues = (
            para is not None
            and not _ends_sentence(prev_line)
            and not _is_list_item(line)
            and (line.lstrip()[:1].islower() or prev_line.rstrip().endswith((",", "-", "—")))
        )
        if continues and para is not None:
            para = (para[0], le)
        else:
            flush()
            para = (ls, le)
        prev_line = line
    flush()
    return ParsedDocument(title=title, sentences=sentences, headings=headings)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans inside `text[start:end]` (one paragraph; newlines count as spaces)."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    sent_start = start
    for m in _TERMINAL.finditer(text, start, end):
        cut = m.end()
        rest = text[cut:end]
        if not rest.strip():
            break
        stripped = rest.lstrip()
        gap = len(rest) - len(stripped)
        if _is_boundary(text, m.start(), m.group(), gap, stripped):
            s, e = _strip_span(text, sent_start, cut)
            if e > s:
                spans.append((s, e))
            sent_start = cut
    s, e = _strip_span(text, sent_start, end)
    if e > s:
        spans.append((s, e))
    return spans


def _is_boundary(text: str, punct_start: int, punct: str, gap: int, rest: str) -> bool:
    nxt = rest[0]
    if nxt.islower():
        return False
    if not (nxt.isupper() or nxt.isdigit() or nxt in _OPENING):
        return gap > 0 and not nxt.isalnum()
    # The token before the mark; a bounded look-back keeps this linear in the paragraph length.
    token = _PREV_TOKEN.search(text, max(0, punct_start - 64), punct_start).group().split("-")[-1]
    bare = token.strip(".’'").lower()
    only_period = punct.rstrip("\"”’'»)]") == "."
    if gap == 0:
        # "down.While", "Putin.“China", "allied.”But": a real word glued to the next sentence.
        if nxt.isdigit():
            return False
        if only_period and (len(bare) < 2 or "." in bare or bare in _TITLES or bare in _OTHER):
            return False
        return any(c.islower() for c in token) or not only_period
    if not only_period:
        return True
    next_word = re.match(r"[\w’']+", rest.lstrip(_OPENING))
    next_word_l = next_word.group().lower() if next_word else ""
    if bare in _TITLES:
        return False
    if nxt.isdigit() and bare in _BEFORE_NUMBER:
        return False
    if len(bare) == 1 and bare.isalpha() and token.strip(".")[:1].isupper():
        return False  # an initial: "J. R. Whitfield"
    if "." in bare or bare in _OTHER or bare in _BEFORE_NUMBER:
        return next_word_l in _STARTERS
    return True


MAX_SENTENCE_CHARS = 400


def split_long(
    text: str, start: int, end: int, limit: int = MAX_SENTENCE_CHARS
) -> list[tuple[int, int]]:
    """Cut an overlong "sentence" (a list, a table row, text without punctuation) into pieces of at
    most `limit` characters, at the last clause mark or space before the limit."""
    spans = []
    while end - start > limit:
        window = text[start : start + limit]
        cut = max(window.rfind(m) for m in ("; ", ", ", ": ", " — ", " – "))
        cut = cut + 1 if cut > limit // 3 else window.rfind(" ")
        if cut <= 0:
            cut = limit
        a, b = _strip_span(text, start, start + cut)
        if b > a:
            spans.append((a, b))
        start += cut
    a, b = _strip_span(text, start, end)
    if b > a:
        spans.append((a, b))
    return spans


def make_chunks(sentences: list[Sentence], max_sentences: int, max_chars: int) -> list[Chunk]:
    """Group consecutive sentences of one section into chunks of a few sentences."""
    chunks: list[Chunk] = []
    group: list[Sentence] = []

    def close() -> None:
        if group:
            chunks.append(Chunk(group[0].start, group[-1].end, group[0].section, tuple(group)))
            group.clear()

    for sent in sentences:
        if group and (
            sent.section != group[0].section
            or len(group) >= max_sentences
            or sent.end - group[0].start > max_chars
        ):
            close()
        group.append(sent)
    close()
    return chunks
