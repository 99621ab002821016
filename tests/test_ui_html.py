"""The chat UI's HTML: escaped text, one <mark> per cited span, clickable [n] markers."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from assistant.interfaces import ui_html

DOC = "Alpha starts here. Beta <b>bold</b> & more.\nGamma ends it."
XSS = 'Harbour day. <script>window.__xss=1</script> <img src=x onerror="window.__xss=2"> End.'


def _cite(text: str, quote: str, source: str = "doc.txt") -> dict[str, object]:
    start = text.index(quote)
    return {"source": source, "start": start, "end": start + len(quote), "quote": quote}


def _answer(*cites: dict[str, object], text: str | None = None) -> dict[str, object]:
    body = (
        text
        if text is not None
        else " ".join(f"{c['quote']} [{i}]" for i, c in enumerate(cites, 1))
    )
    return {"answer": body, "abstained": not cites, "mode": "extractive", "citations": list(cites)}


class _Marks(HTMLParser):
    """Collects each <mark>'s attributes and its text, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.marks: list[tuple[dict[str, str | None], str]] = []
        self.tags: list[str] = []
        self._open: list[list[object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "mark":
            self._open.append([dict(attrs), ""])

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark" and self._open:
            attrs, text = self._open.pop()
            self.marks.append((attrs, text))  # type: ignore[arg-type]

    def handle_data(self, data: str) -> None:
        for m in self._open:
            m[1] = str(m[1]) + data


def _parse(html: str) -> _Marks:
    p = _Marks()
    p.feed(html)
    return p


def _reader(docs: dict[str, str]):  # type: ignore[no-untyped-def]
    return docs.get


def test_sources_html_marks_each_cited_span_with_exactly_its_quote() -> None:
    a, b = _cite(DOC, "Alpha starts here."), _cite(DOC, "Beta <b>bold</b> & more.")
    html = ui_html.sources_html(_answer(a, b), 3, _reader({"doc.txt": DOC}))
    marks = _parse(html).marks
    assert [(m["data-cite"], text) for m, text in marks] == [("1", a["quote"]), ("2", b["quote"])]
    assert marks[0][0]["id"] == "cite-3-1"
    assert marks[0][0]["class"] != marks[1][0]["class"]  # one colour per citation number
    title = str(marks[0][0]["title"])
    assert "characters 0–18" in title and str(a["quote"]) in title


def test_sources_html_escapes_document_markup() -> None:
    c = _cite(XSS, "Harbour day.", "xss.txt")
    html = ui_html.sources_html(_answer(c), 0, _reader({"xss.txt": XSS}))
    parsed = _parse(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "onerror=&quot;" in html


def test_sources_html_does_not_mark_a_span_the_document_no_longer_holds() -> None:
    c = _cite(DOC, "Gamma ends it.")
    changed = DOC.replace("Gamma", "Delta")
    html = ui_html.sources_html(_answer(c), 0, _reader({"doc.txt": changed}))
    assert _parse(html).marks == []
    assert "no longer matches" in html


def test_sources_html_gives_each_cited_document_a_tab() -> None:
    other = "Another file. It says Gamma ends it."
    c1, c2 = _cite(DOC, "Alpha starts here."), _cite(other, "It says Gamma ends it.", "b.txt")
    html = ui_html.sources_html(_answer(c1, c2), 0, _reader({"doc.txt": DOC, "b.txt": other}))
    assert re.findall(r'class="source-tab[^"]*" data-source-index="(\d)"', html) == ["0", "1"]
    assert html.count("<section") == 2 and html.count(" hidden>") == 1
    assert [m["data-cite"] for m, _ in _parse(html).marks] == ["1", "2"]


def test_sources_html_for_an_abstention_says_nothing_is_cited() -> None:
    html = ui_html.sources_html(_answer(), 2, _reader({}))
    assert 'data-turn="2"' in html and ui_html.ABSTAIN_NOTE in html


def test_marked_text_splits_overlapping_spans_and_keeps_every_character() -> None:
    text = "0123456789"
    spans = [
        (1, {"source": "d", "start": 0, "end": 6, "quote": text[0:6]}),
        (2, {"source": "d", "start": 4, "end": 9, "quote": text[4:9]}),
    ]
    marks = _parse(ui_html.marked_text(text, spans, 0)).marks
    assert [(m["data-cites"], t) for m, t in marks] == [("1", "0123"), ("1 2", "45"), ("2", "678")]


def test_marked_text_shows_windows_of_a_very_long_document() -> None:
    text = "x" * (ui_html.MAX_FULL_CHARS + 50_000) + "Needle sentence." + "y" * 10_000
    c = _cite(text, "Needle sentence.")
    html = ui_html.marked_text(text, [(1, c)], 0)
    assert len(html) < 3 * ui_html.CONTEXT_CHARS + 1_000
    assert _parse(html).marks[0][1] == "Needle sentence." and html.count("[…]") == 2


def test_answer_html_links_markers_and_escapes_model_text() -> None:
    c = _cite(DOC, "Alpha starts here.")
    html = ui_html.answer_html(_answer(c, text='<img src=x onerror="alert(1)"> Alpha [1] [7]'), 4)
    assert "<img" not in html and "&lt;img" in html
    assert re.findall(r'<a class="cite-marker cite-c1" href="#cite-4-1"', html)
    assert "[7]" in html and "#cite-4-7" not in html  # no citation 7: left as text
    assert "offline extractive" in html


def test_answer_html_gives_abstentions_their_own_look() -> None:
    html = ui_html.answer_html(_answer(text="The documents do not say."), 0)
    assert 'class="answer abstained"' in html


def test_status_html_lists_documents_build_time_and_model() -> None:
    html = ui_html.status_html(
        {
            "indexed": True,
            "documents": 3,
            "chunks": 9,
            "built_at": "2026-01-01T00:00:00Z",
            "build_seconds": 1.5,
            "embedding_model": "mini<lm>",
        },
        "offline extractive",
    )
    assert "Documents indexed</th><td>3" in html and "mini&lt;lm&gt;" in html and "1.5 s" in html


def test_example_questions_ask_about_recurring_names() -> None:
    texts = [
        "The Riverside Library opened in May. Later the Riverside Library grew.",
        "Visitors love the Riverside Library and Oslo.",
    ]
    questions = ui_html.example_questions(texts, k=2)
    assert questions[0] == "What do the documents say about Riverside Library?"
    assert all(q.startswith("What do the documents say about ") for q in questions)


def test_pdf_pane_shows_the_rendered_page_only_for_verified_spans() -> None:
    text = "Page one text.\n\f\nThe keeper retired in 1901. Other words.\n"
    good = {**_cite(text, "The keeper retired in 1901."), "source": "r.pdf", "page": 2}
    stale = {"source": "r.pdf", "start": 0, "end": 4, "quote": "Nope", "page": 1}
    asked: list[list[int]] = []

    def page_images(source: str, items: list[tuple[int, dict[str, object]]]) -> list[object]:
        asked.append([n for n, _ in items])
        return [(2, "data:image/png;base64,AAAA", [(1, (0.1, 0.2, 0.6, 0.25))])]

    html = ui_html.sources_html(_answer(good, stale), 0, lambda s: text, page_images)
    assert asked == [[1]]  # only the citation whose quote matches the text is rendered
    assert '<img class="page-image" src="data:image/png;base64,AAAA"' in html
    assert 'alt="Page 2 of r.pdf, the cited passage highlighted"' in html
    parser = _Marks()
    parser.feed(html)
    (attrs, inner), = parser.marks
    assert attrs["id"] == "cite-0-1" and attrs["data-cites"] == "1" and inner == ""
    assert "left:10.00%;top:20.00%;width:50.00%;height:5.00%" in (attrs["style"] or "")
    assert "page 2, characters" in html and "no longer matches" in html
    # a text source (no page images) keeps its marked text
    plain = ui_html.sources_html(_answer(_cite(DOC, "Gamma ends it.")), 0, lambda s: DOC,
                                 lambda s, items: [])  # fmt: skip
    assert "page-image" not in plain and "<mark" in plain


def test_an_abstention_shows_its_related_passages_labelled_not_an_answer() -> None:
    related = [{"source": "a.txt", "start": 4, "end": 20, "quote": "Ann <Lee> built it."}]
    html = ui_html.answer_html(
        {"answer": "The documents do not say.", "abstained": True, "mode": "extractive",
         "citations": [], "related": related}, turn=1)
    assert "Related passages (not an answer):" in html and "a.txt [4:20]" in html
    assert "Ann &lt;Lee&gt; built it." in html and "cite-marker" not in html
    plain = ui_html.answer_html(
        {"answer": "The documents do not say.", "abstained": True, "mode": "extractive"}, turn=1)
    assert "Related passages" not in plain
