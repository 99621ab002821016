"""HTML for the chat UI: answers with clickable `[n]` markers, sources with each cited span marked.

Every piece of text that comes from a document, a question or a model is escaped here; the only
markup in the output is ours. Pure functions, so they are tested without a browser or gradio.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import Any

PALETTE = 8  # citation colours cite-c1 .. cite-c8, reused cyclically
MAX_FULL_CHARS = 200_000  # longer documents are shown as windows around their cited spans
CONTEXT_CHARS = 2_000
ABSTAIN_NOTE = "No passage is cited: the documents do not say."

_MARKER = re.compile(r"\[(\d+)\]")
_NAME = re.compile(r"\b[A-Z][\w’'-]*[a-z][\w’'-]*(?: [A-Z][\w’'-]*[a-z][\w’'-]*)*")
_POSSESSIVE = re.compile(r"[’']s$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")

Reader = Callable[[str], "str | None"]
# (page, image URL, [(citation number, (left, top, right, bottom) as fractions of the image)])
PageView = tuple[int, str, list[tuple[int, tuple[float, float, float, float]]]]
# the page images of a source's verified citations (a PDF's), or [] (not a PDF, or unrenderable)
PageImages = Callable[[str, list[tuple[int, dict[str, Any]]]], list[PageView]]
# the citation colours of the CSS below (cite-c1 .. cite-c8), for highlights drawn on a page image
PALETTE_RGB = (
    (0xFD, 0xE6, 0x8A), (0xA7, 0xF3, 0xD0), (0xBF, 0xDB, 0xFE), (0xFB, 0xCF, 0xE8),
    (0xDD, 0xD6, 0xFE), (0xFE, 0xD7, 0xAA), (0x99, 0xF6, 0xE4), (0xE5, 0xE7, 0xEB),
)  # fmt: skip


def esc(text: Any) -> str:
    """`text` as HTML-escaped text, quotes included (safe in element content and attributes)."""
    return html.escape(str(text), quote=True)


def colour(n: int) -> str:
    """The CSS class of citation number `n` (1-based)."""
    return f"cite-c{(n - 1) % PALETTE + 1}"


def mode_label(mode: str, model: str | None = None) -> str:
    """How a mode is shown: `offline extractive`, or the LLM's model name."""
    if mode == "extractive":
        return "offline extractive"
    if mode == "llm":
        return f"LLM: {model}" if model else "LLM"
    if mode == "local":
        return f"local: {model}" if model else "local"
    return mode


def colour_rgb(n: int) -> tuple[int, int, int]:
    """The RGB colour of citation number `n` (1-based), as its CSS class shows it."""
    return PALETTE_RGB[(n - 1) % PALETTE]


def cite_title(n: int, c: dict[str, Any]) -> str:
    page = f", page {c['page']}" if c.get("page") else ""
    return f"[{n}] {c['source']}{page}, characters {c['start']}–{c['end']}: “{c['quote']}”"


def question_html(question: str) -> str:
    return esc(question).replace("\n", "<br>")


def answer_html(answer: dict[str, Any], turn: int, model: str | None = None) -> str:
    """An answer (`Answer.to_dict()`) as chat HTML; `[n]` becomes a link to citation n's span."""
    cites = answer.get("citations") or []

    def marker(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(cites):
            return m.group(0)
        return (
            f'<a class="cite-marker {colour(n)}" href="#cite-{turn}-{n}" '
            f'title="{esc(cite_title(n, cites[n - 1]))}">[{n}]</a>'
        )

    body = _MARKER.sub(marker, esc(answer.get("answer", "")).replace("\n", "<br>"))
    if answer.get("abstained"):
        return (
            f'<div class="answer abstained"><span class="abstain-badge">no answer</span> '
            f"{body}</div>{related_html(answer)}{_meta_html(answer, model)}"
        )
    return f'<div class="answer">{body}</div>{_meta_html(answer, model)}'


def related_html(answer: dict[str, Any]) -> str:
    """An abstention's closest passages, labelled as related, not an answer."""
    related = answer.get("related") or []
    if not related:
        return ""
    items = "".join(
        f'<li><span class="related-source">{esc(c["source"])} [{c["start"]}:{c["end"]}]</span> '
        f"“{esc(c['quote'])}”</li>"
        for c in related
    )
    return (
        '<div class="related"><div class="related-label">Related passages (not an answer):</div>'
        f"<ul>{items}</ul></div>"
    )


def _meta_html(answer: dict[str, Any], model: str | None) -> str:
    parts = [mode_label(str(answer.get("mode", "")), model)]
    n = len(answer.get("citations") or [])
    if n:
        parts.append(f"{n} citation{'s' if n != 1 else ''}")
    meta = " · ".join(esc(p) for p in parts)
    if answer.get("notice"):
        meta += f'<br><span class="answer-notice">{esc(answer["notice"])}</span>'
    return f'<div class="answer-meta">{meta}</div>'


def pending_html(partial: str) -> str:
    """A streaming answer so far (no markers yet: citations are known only at the end)."""
    text = esc(partial).replace("\n", "<br>") if partial else "Searching the documents"
    return f'<div class="answer pending">{text}<span class="cursor">…</span></div>'


def error_html(message: str, hint: str = "") -> str:
    out = f'<div class="answer-error"><strong>{esc(message)}</strong>'
    if hint:
        out += f'<br><span class="hint">{esc(hint)}</span>'
    return out + "</div>"


def sources_placeholder() -> str:
    return (
        '<div class="sources empty"><p>Ask a question: the passages an answer cites are '
        "highlighted here, in their document.</p></div>"
    )


def sources_html(answer: dict[str, Any], turn: int, read: Reader,
                 page_images: PageImages | None = None) -> str:  # fmt: skip
    """Every cited document of one answer, a tab each, with each cited span in a `<mark>`.

    A span is marked only if the document still holds exactly the quoted text at its offsets.
    A PDF's verified spans are shown on the rendered page (`page_images`), highlighted there,
    with a transparent `<mark>` over each highlight to scroll to.
    """
    cites = answer.get("citations") or []
    head = f'<div class="sources" data-turn="{turn}">'
    if not cites:
        return f'{head}<p class="sources-note">{esc(ABSTAIN_NOTE)}</p></div>'
    by_source: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for n, c in enumerate(cites, 1):
        by_source.setdefault(c["source"], []).append((n, c))
    tabs, panes = [], []
    for i, (source, items) in enumerate(by_source.items()):
        active = " active" if i == 0 else ""
        badges = "".join(f'<span class="cite-badge {colour(n)}">{n}</span>' for n, _ in items)
        tabs.append(
            f'<button type="button" class="source-tab{active}" data-source-index="{i}" '
            f'title="{esc(source)}">{esc(source)} {badges}</button>'
        )
        panes.append(_pane(i, source, items, turn, read, page_images))
    return (
        f'{head}<div class="source-tabs" role="tablist">{"".join(tabs)}</div>{"".join(panes)}</div>'
    )


def _pane(i: int, source: str, items: list[tuple[int, dict[str, Any]]], turn: int, read: Reader,
          page_images: PageImages | None = None) -> str:  # fmt: skip
    text = read(source)
    hidden = "" if i == 0 else " hidden"
    out = [
        f'<section class="source-doc" data-source-index="{i}" data-source="{esc(source)}"{hidden}>'
    ]
    good = [
        (n, c) for n, c in items if text is not None and text[c["start"] : c["end"]] == c["quote"]
    ]
    views = page_images(source, good) if page_images is not None and good else []
    if text is None:
        out.append('<p class="sources-note">This document can no longer be read.</p>')
    elif views:
        out.extend(_page_view(source, view, turn) for view in views)
    else:
        out.append(f'<div class="source-text">{marked_text(text, good, turn)}</div>')
    out.append('<ol class="citation-list">')
    for n, c in items:
        stale = (
            ""
            if (n, c) in good
            else (' <span class="stale">(no longer matches the document: re-ingested?)</span>')
        )
        out.append(
            f'<li value="{n}" data-cite="{n}"><a class="cite-marker cite-ref {colour(n)}" '
            f'href="#cite-{turn}-{n}">[{n}]</a> <span class="offsets">{_where(c)}</span> '
            f"<q>{esc(c['quote'])}</q>{stale}</li>"
        )
    out.append("</ol></section>")
    return "".join(out)


def _where(c: dict[str, Any]) -> str:
    page = f"page {c['page']}, " if isinstance(c.get("page"), int) else ""
    return f"{page}characters {c['start']}–{c['end']}"


def _page_view(source: str, view: PageView, turn: int) -> str:
    """A rendered page with its highlights drawn in, and a `<mark>` laid over each highlight."""
    page, url, boxes = view
    marks, seen = [], set()
    for n, (left, top, right, bottom) in boxes:
        anchor = "" if n in seen else f' id="cite-{turn}-{n}"'
        seen.add(n)
        marks.append(
            f'<mark{anchor} class="cite page-mark" data-cite="{n}" data-cites="{n}" '
            f'style="left:{left * 100:.2f}%;top:{top * 100:.2f}%;width:{(right - left) * 100:.2f}%;'
            f'height:{(bottom - top) * 100:.2f}%"></mark>'
        )
    alt = f"Page {page} of {source}, the cited passage highlighted"
    return (
        f'<figure class="page-view" data-page="{page}"><div class="page-wrap">'
        f'<img class="page-image" src="{esc(url)}" alt="{esc(alt)}">{"".join(marks)}</div>'
        f"<figcaption>{esc(source)}, page {page}</figcaption></figure>"
    )


def marked_text(text: str, spans: list[tuple[int, dict[str, Any]]], turn: int) -> str:
    """`text` escaped, each span in `<mark data-cite="n">`; overlapping spans are split."""
    if len(text) <= MAX_FULL_CHARS:
        windows = [(0, len(text))]
    else:
        windows = _windows([(c["start"], c["end"]) for _, c in spans], len(text))
    parts = []
    seen: set[int] = set()
    for lo, hi in windows:
        if lo > 0:
            parts.append('<span class="gap"> […] </span>')
        parts.append(_marked_window(text, spans, lo, hi, turn, seen))
    if windows and windows[-1][1] < len(text):
        parts.append('<span class="gap"> […]</span>')
    return "".join(parts)


def _windows(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans) or [(0, 0)]:
        lo, hi = max(0, s - CONTEXT_CHARS), min(size, e + CONTEXT_CHARS)
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _marked_window(
    text: str, spans: list[tuple[int, dict[str, Any]]], lo: int, hi: int, turn: int, seen: set[int]
) -> str:
    cuts = sorted(
        {lo, hi, *(min(max(p, lo), hi) for _, c in spans for p in (c["start"], c["end"]))}
    )
    out = []
    for a, b in pairwise(cuts):
        piece = esc(text[a:b])
        covering = [(n, c) for n, c in spans if c["start"] <= a and b <= c["end"]]
        if not covering:
            out.append(piece)
            continue
        first = covering[0][0]
        ids = " ".join(str(n) for n, _ in covering)
        anchor = "" if first in seen else f' id="cite-{turn}-{first}"'
        seen.update(n for n, _ in covering)
        title = "\n".join(cite_title(n, c) for n, c in covering)
        out.append(
            f'<mark{anchor} class="cite {colour(first)}" data-cite="{first}" '
            f'data-cites="{ids}" title="{esc(title)}">{piece}</mark>'
        )
    return "".join(out)


def upload_html(lines: list[tuple[str, bool]]) -> str:
    """What an upload or removal did, a line per file (refusals in red)."""
    if not lines:
        return ""
    items = "".join(
        f'<li class="{"upload-ok" if ok else "upload-refused"}">{esc(text)}</li>'
        for text, ok in lines
    )
    return f'<ul class="upload-list">{items}</ul>'


def status_html(status: dict[str, Any], mode: str, message: str = "") -> str:
    """The index status (`Assistant.status()`) as a small table."""
    rows: list[tuple[str, Any]] = [("Mode", mode)]
    if status.get("indexed"):
        rows += [
            ("Documents indexed", status.get("documents")),
            ("Chunks", status.get("chunks")),
            ("Index built", f"{status.get('built_at')} in {status.get('build_seconds')} s"),
            ("Embedding model", status.get("embedding_model")),
        ]
    else:
        rows.append(("Index", "not built yet: the first question (or Re-ingest) builds it"))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    note = f'<p class="status-message">{esc(message)}</p>' if message else ""
    return f'<table class="status-table">{body}</table>{note}'


def example_questions(texts: Iterable[str], k: int = 8) -> list[str]:
    """Generic questions about the names that recur most in the documents (candidates to vet)."""
    counts: Counter[str] = Counter()
    for text in texts:
        for sentence in _SENTENCE_END.split(text[:50_000]):
            for m in _NAME.finditer(sentence.strip()):
                words = [_POSSESSIVE.sub("", w) for w in m.group(0).split(" ")]
                if m.start() == 0:  # a sentence's first word is capitalised anyway
                    words = words[1:]
                name = " ".join(words)
                if len(name) > 2:
                    counts[name] += 1
    return [f"What do the documents say about {name}?" for name, _ in counts.most_common(k)]
