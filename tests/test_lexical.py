"""Tokens for matching: the light stemmer and the question's own words."""

import pytest

from assistant.indexing.lexical import question_tokens, stem, tokenize


@pytest.mark.parametrize(
    "forms, base",
    [
        (["arrive", "arrives", "arrived", "arriving"], "arriv"),
        (["release", "released", "releases"], "releas"),
        (["study", "studies", "studied"], "study"),
        (["meet", "met", "meets", "meeting"], "meet"),
        (["speak", "spoke", "spoken"], "speak"),
        (["overtake", "overtook"], "overtak"),
        (["partner", "partners", "partner's"], "partner"),
        (["russia", "russian", "russians", "russia's"], "russia"),
        (["china", "chinese"], "china"),
        (["belarus", "belarusian"], "belarus"),
    ],
)
def test_inflections_share_one_token(forms: list[str], base: str) -> None:
    assert {stem(f) for f in forms} == {base}


def test_short_and_double_e_words_keep_their_ending() -> None:
    assert [stem(w) for w in ["tree", "agree", "free", "eye", "pie", "tie"]] == [
        "tree", "agree", "free", "eye", "pie", "tie"
    ]


def test_question_tokens_drop_the_answer_frame_and_references_to_the_text() -> None:
    assert question_tokens("What is the full name of the president Li met?") == [
        "president", "li", "meet"
    ]
    assert question_tokens("How many days did the visit last?") == ["day", "visit", "last"]
    assert question_tokens("In which year was the mill built?") == ["mill", "build"]
    assert question_tokens("Who is the minister, according to the article?") == ["minister"]
    # only the frame goes: the same words elsewhere in a question are content
    assert "name" in question_tokens("Why did the town change its name?")
    assert tokenize("the date of the treaty") == ["date", "treaty"]
    assert question_tokens("What does the text say about the leaked document?") == [
        "leak", "document"
    ]
    assert tokenize("the text of the leaked document") == ["text", "leak", "document"]
