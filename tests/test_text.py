from assistant.documents.splitter import (
    looks_like_heading,
    make_chunks,
    parse_document,
    split_sentences,
)
from tests.conftest import SEED


def spans(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def test_splitter_keeps_abbreviations_and_initials_together() -> None:
    text = (
        "Gen. Li met Mr. Lukashenko on Aug. 16 in the U.S. embassy. Belarus is Russia’s "
        "“No. 1 ally.” J. R. Whitfield built it in 1847. It cost approx. 40 pounds."
    )
    assert spans(text) == [
        "Gen. Li met Mr. Lukashenko on Aug. 16 in the U.S. embassy.",
        "Belarus is Russia’s “No. 1 ally.”",
        "J. R. Whitfield built it in 1847.",
        "It cost approx. 40 pounds.",
    ]


def test_splitter_splits_without_space_after_quote_or_period() -> None:
    text = (
        "a close ally of Mr. Putin.“China and Belarus share ideas,” he said. more than just "
        "allied.”But analysts disagree. It was shot down.While talks go on, ties are poor."
    )
    assert spans(text) == [
        "a close ally of Mr. Putin.",
        "“China and Belarus share ideas,” he said. more than just allied.”",
        "But analysts disagree.",
        "It was shot down.",
        "While talks go on, ties are poor.",
    ]


def test_splitter_does_not_split_initialisms_glued_to_hyphens_or_decimals() -> None:
    assert spans("The Sino-U.S. relationship is strained. It cost $3.50 today.") == [
        "The Sino-U.S. relationship is strained.",
        "It cost $3.50 today.",
    ]


def test_splitter_offsets_round_trip_on_the_seed() -> None:
    text = SEED.read_text(encoding="utf-8")
    doc = parse_document(text)
    assert len(doc.sentences) > 30
    for s in doc.sentences:
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip()
    joined = {s.text for s in doc.sentences}
    assert (
        "Mr. Lukashenko visited Beijing in March and was welcomed by Mr. Xi, China’s paramount "
        "leader." in joined
    )
    assert (
        "But outside analysts say what drives them to deliver such messages appears to be the "
        "desire to shift attention from their real troubles at home." in joined
    )


def test_headings_become_sections_not_sentences() -> None:
    text = SEED.read_text(encoding="utf-8")
    doc = parse_document(text)
    names = [h[2] for h in doc.headings]
    assert names == [
        "Li’s Meeting With Lukashenko",
        "China’s Real Problem",
        "Strained US-China Ties",
    ]
    assert not any(s.text.startswith("Li’s Meeting") for s in doc.sentences)
    first_after = next(s for s in doc.sentences if s.start > doc.headings[0][1])
    assert first_after.section == "Li’s Meeting With Lukashenko"
    assert first_after.text.startswith("On Thursday, Gen. Li sat down")


def test_heading_detection_rejects_quoted_lines_and_sentences() -> None:
    assert looks_like_heading("China’s Real Problem")
    assert looks_like_heading("## Economy and trade")
    assert not looks_like_heading("Now, “we have truly fraternal relations,” said Gen. Li")
    assert not looks_like_heading("This line ends with a period.")


def test_crlf_and_markdown_offsets_are_exact() -> None:
    text = "# Title\r\n\r\nFirst line of a\r\nwrapped paragraph. Second one!\r\n"
    doc = parse_document(text)
    assert doc.title == "Title"
    assert [s.text for s in doc.sentences] == [
        "First line of a\r\nwrapped paragraph.",
        "Second one!",
    ]
    for s in doc.sentences:
        assert text[s.start : s.end] == s.text


def test_chunks_hold_a_few_sentences_and_never_cross_sections() -> None:
    text = SEED.read_text(encoding="utf-8")
    doc = parse_document(text)
    chunks = make_chunks(doc.sentences, 3, 600)
    assert sum(len(c.sentences) for c in chunks) == len(doc.sentences)
    for c in chunks:
        assert 1 <= len(c.sentences) <= 3
        assert len({s.section for s in c.sentences}) == 1
        assert c.start == c.sentences[0].start and c.end == c.sentences[-1].end
        assert c.end - c.start <= 600 or len(c.sentences) == 1


def test_query_path_bm25_matches_bm25s(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import bm25s

    from assistant.indexing.lexical import LexicalIndex, tokenize

    texts = ["Mexico replaced China as top trade partner", "The ruble hit a low", "Trade grew"]
    LexicalIndex.build(texts, texts).save(tmp_path)
    ours = LexicalIndex.load(tmp_path)
    ref = bm25s.BM25.load(str(tmp_path / "bm25"))
    query = tokenize("trade partner trade China")
    assert [i for i, _ in ours.search(query, 3)] == [0, 2]
    got = ours._bm25.get_scores(query)
    assert got.tolist() == ref.get_scores(query).tolist()


def test_overlong_sentences_are_cut_at_clause_marks_with_exact_offsets() -> None:
    from assistant.documents.splitter import MAX_SENTENCE_CHARS

    text = "Intro line.\n" + ", ".join(f"item number {i} of the list" for i in range(60)) + "\n"
    doc = parse_document(text)
    assert len(doc.sentences) > 3
    for s in doc.sentences:
        assert len(s.text) <= MAX_SENTENCE_CHARS
        assert text[s.start : s.end] == s.text
    covered = "".join(s.text for s in doc.sentences).replace(" ", "").replace(",", "")
    assert covered == text.replace(" ", "").replace(",", "").replace("\n", "")
