"""The chat UI's callbacks, driven by a queue-driven fake assistant (no server, no browser)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gradio")

import gradio as gr

from assistant.config import Settings
from assistant.errors import BadInputError
from assistant.interfaces.ui import ChatUI
from assistant.types import Answer, Citation

TEXT = "The Brightwater lighthouse was built in 1874. Ada Morrow designed it.\n"
QUOTE = "The Brightwater lighthouse was built in 1874."


class FakeAssistant:
    """Answers (or errors) come from a queue; every call is kept in `calls`."""

    mode = "extractive"

    def __init__(self, seeds: Path, *answers: Answer | Exception) -> None:
        self.settings = Settings(seeds_dir=seeds, index_dir=seeds.parent / "index")
        self.answers: deque[Answer | Exception] = deque(answers)
        self.calls: list[tuple[str, list[dict[str, str]] | None]] = []

    def status(self) -> dict[str, Any]:
        return {
            "indexed": True,
            "documents": 1,
            "chunks": 1,
            "built_at": "now",
            "build_seconds": 0.1,
            "embedding_model": "fake",
        }

    def ask(self, question: str, *, history: list[dict[str, str]] | None = None) -> Answer:
        self.calls.append((question, history))
        item = self.answers.popleft()
        if isinstance(item, Exception):
            raise item
        return item

    def source_text(self, source: str) -> str | None:
        """Like `Assistant.source_text`: only the documents "indexed" (here: light.txt)."""
        if source != "light.txt":
            return None
        return (self.settings.seeds_dir / source).read_text(encoding="utf-8")


class StreamingFake(FakeAssistant):
    """LLM-like: draft deltas without markers, then the final `Answer`."""

    mode = "llm"

    def stream(
        self, question: str, history: list[dict[str, str]] | None = None
    ) -> Iterator[str | Answer]:
        answer = self.ask(question, history=history)
        yield "It was built "
        yield "in 1874."
        yield answer


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "light.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "secret.txt").write_text("TOP SECRET outside the seeds folder.", encoding="utf-8")
    return folder


def _answer(mode: str = "extractive") -> Answer:
    return Answer(f"{QUOTE} [1]", False, mode, [Citation("light.txt", 0, len(QUOTE), QUOTE)])


def _last(chat: list[dict[str, str]]) -> str:
    return chat[-1]["content"]


def test_chat_streams_drafts_then_shows_the_answer_with_markers_and_sources(seeds: Path) -> None:
    ui = ChatUI(StreamingFake(seeds, _answer("llm")))
    steps = list(ui.respond("When was it built?", []))
    chats = [s[0] for s in steps]
    assert "Searching the documents" in _last(chats[0])
    assert "It was built in 1874." in _last(chats[2]) and "cite-marker" not in _last(chats[2])
    chat, turns, sources, shown, mode, question = steps[-1]
    assert 'href="#cite-0-1"' in _last(chat)
    assert 'data-cite="1" data-cites="1" title=' in sources and f">{QUOTE}</mark>" in sources
    assert shown == 0 and question == "" and "LLM: gpt-4o-mini" in mode
    assert turns[0]["answer"]["citations"][0]["quote"] == QUOTE


def test_chat_follow_up_passes_the_answered_turns_as_history(seeds: Path) -> None:
    fake = FakeAssistant(seeds, _answer())
    turns = [
        {"question": "Who designed it?", "answer": {"answer": "Ada Morrow [1]", "citations": []}},
        {"question": "x" * 9, "answer": None, "error": ["Too long.", ""]},
    ]
    list(ChatUI(fake).respond("When was it built?", turns))
    assert fake.calls == [
        (
            "When was it built?",
            [
                {"role": "user", "content": "Who designed it?"},
                {"role": "assistant", "content": "Ada Morrow [1]"},
            ],
        )
    ]


def test_chat_drops_a_tampered_history(seeds: Path) -> None:
    fake = FakeAssistant(seeds, _answer())
    turns = [{"question": "Who?", "answer": {"answer": 3}}]
    _, kept, *_ = list(ChatUI(fake).respond("When was it built?", turns))[-1]
    assert fake.calls == [("When was it built?", None)] and len(kept) == 1


def test_chat_shows_a_bad_question_as_its_message(seeds: Path) -> None:
    fake = FakeAssistant(
        seeds, BadInputError("The question is 9 characters long; the limit is 5.", "Shorten it.")
    )
    chat, turns, *_ = list(ChatUI(fake).respond("x" * 9, []))[-1]
    assert "answer-error" in _last(chat) and "the limit is 5." in _last(chat)
    assert turns[0]["error"][0].startswith("The question is 9")


def test_chat_hides_the_details_of_an_unexpected_failure(seeds: Path) -> None:
    fake = FakeAssistant(seeds, RuntimeError("/home/secret/path exploded"))
    chat, *_ = list(ChatUI(fake).respond("When?", []))[-1]
    assert "Something went wrong" in _last(chat) and "secret" not in _last(chat)


def test_chat_ignores_an_empty_question(seeds: Path) -> None:
    fake = FakeAssistant(seeds)
    assert len(list(ChatUI(fake).respond("   ", []))) == 1 and fake.calls == []


def test_chat_select_shows_an_earlier_answers_sources(seeds: Path) -> None:
    ui = ChatUI(FakeAssistant(seeds))
    turns = [
        {"question": "q", "answer": _answer().to_dict()},
        {"question": "q2", "answer": _answer().to_dict()},
    ]
    event = gr.SelectData(None, {"index": 1, "value": ""})
    sources, shown = ui.select(event, turns, 1)
    assert shown == 0 and 'data-turn="0"' in sources


def test_chat_restore_never_reads_outside_the_seeds_folder(seeds: Path) -> None:
    forged = {
        "answer": "x [1]",
        "abstained": False,
        "mode": "extractive",
        "citations": [{"source": "../secret.txt", "start": 0, "end": 10, "quote": "TOP SECRET"}],
    }
    _, _, sources, *_ = ChatUI(FakeAssistant(seeds)).restore([{"question": "q", "answer": forged}])
    assert "TOP SECRET outside" not in sources and "<mark" not in sources
    assert "can no longer be read" in sources


@pytest.mark.parametrize("source", [".env", "notes/never-indexed.txt"])
def test_chat_restore_shows_only_documents_the_index_holds(seeds: Path, source: str) -> None:
    (seeds / "notes").mkdir()
    (seeds / source).write_text("API_KEY=sk-very-secret\n", encoding="utf-8")
    forged = {
        "answer": "x [1]",
        "abstained": False,
        "mode": "extractive",
        "citations": [{"source": source, "start": 0, "end": 7, "quote": "API_KEY"}],
    }
    ui = ChatUI(FakeAssistant(seeds))
    _, _, sources, *_ = ui.restore([{"question": "q", "answer": forged}])
    assert "sk-very-secret" not in sources and "<mark" not in sources
    assert "can no longer be read" in sources
    event = gr.SelectData(None, {"index": 1, "value": ""})
    shown, _ = ui.select(event, [{"question": "q", "answer": forged}], -1)
    assert "sk-very-secret" not in shown


def test_chat_examples_survive_a_file_that_is_not_utf8(seeds: Path) -> None:
    (seeds / "000-latin1.txt").write_bytes("Caf\xe9 Morrow in Z\xfcrich.\n".encode("latin-1"))
    (seeds / "light.txt").write_text(TEXT * 3, encoding="utf-8")
    fake = FakeAssistant(seeds, _answer(), _answer(), _answer())
    examples = ChatUI(fake).examples()
    assert examples and all(q.startswith("What do the documents say about ") for q in examples)
    assert any("Brightwater" in q or "Ada Morrow" in q for q in examples)


def test_chat_restore_marks_an_interrupted_answer_and_drops_a_foreign_state(seeds: Path) -> None:
    ui = ChatUI(FakeAssistant(seeds))
    chat, turns, *_ = ui.restore([{"question": "q", "answer": None}])
    assert "interrupted" in _last(chat)
    chat, turns, _, shown, *_ = ui.restore([{"question": "q", "answer": {"bogus": 1}}])
    assert (chat, turns, shown) == ([], [], -1)


def test_ask_api_returns_the_answer_json_or_a_gradio_error(seeds: Path) -> None:
    fake = FakeAssistant(seeds, _answer(), BadInputError("The question is empty.", "Ask."))
    ui = ChatUI(fake)
    assert ui.ask_api("When?") == _answer().to_dict()
    with pytest.raises(gr.Error, match=r"The question is empty\."):
        ui.ask_api("")


def test_chat_refuses_a_lone_surrogate_and_keeps_the_turn_sendable(seeds: Path) -> None:
    fake = FakeAssistant(seeds)
    chat, turns, *_ = list(ChatUI(fake).respond("When\ud800?", []))[-1]
    assert "is not valid Unicode" in _last(chat) and fake.calls == []
    assert turns[0]["question"] == "When??"
    json.dumps(turns, ensure_ascii=False).encode("utf-8")  # what Gradio sends to the browser
    forged = [{"question": "q\udc80", "answer": None, "error": ["x", ""]}]
    chat, kept, *_ = ChatUI(fake).restore(forged)
    assert (chat, kept) == ([], [])


def test_ask_api_refuses_a_lone_surrogate_with_one_sentence(seeds: Path) -> None:
    fake = FakeAssistant(seeds)
    with pytest.raises(gr.Error, match=r"The question is not valid Unicode: it has a lone"):
        ChatUI(fake).ask_api("Who\ud83d?")
    assert fake.calls == []


@pytest.mark.parametrize(
    "citation",
    [
        {"source": "light.txt", "start": 10**30, "end": 10**31, "quote": "The"},  # past 64 bits
        {"source": "light.txt", "start": 5, "end": 2, "quote": "The"},
        {"source": "light.txt", "start": True, "end": 3, "quote": "The"},
    ],
    ids=["huge", "backwards", "bool"],
)
def test_chat_restore_drops_a_state_whose_offsets_no_answer_has(
    seeds: Path, citation: dict[str, Any]
) -> None:
    answer = {"answer": "x [1]", "abstained": False, "mode": "extractive", "citations": [citation]}
    chat, kept, _, shown, *_ = ChatUI(FakeAssistant(seeds)).restore(
        [{"question": "q", "answer": answer}]
    )
    assert (chat, kept, shown) == ([], [], -1)


def test_chat_keeps_only_the_fields_it_shows_and_survives_odd_errors(seeds: Path) -> None:
    ui = ChatUI(FakeAssistant(seeds))
    answer = {**_answer().to_dict(), "trace": {"x": 10**30}, "extra": "y" * 10}
    _, kept, *_ = ui.restore([{"question": "q", "answer": answer}])
    assert set(kept[0]["answer"]) == {"answer", "abstained", "mode", "citations"}
    _, kept, *_ = ui.restore([{"question": "q", "answer": None, "error": ["a", "b", "c"]}])
    assert kept == []  # an error of three parts is not one this UI wrote (it crashed the page)
    event = gr.SelectData(None, {"index": "1", "value": ""})
    assert ui.select(event, [{"question": "q", "answer": answer}], -1) == (gr.skip(), gr.skip())


def test_chat_streams_only_verified_sentences_of_a_model_answer(seeds: Path, encoder: Any) -> None:
    from assistant import Assistant
    from assistant.llm.client import FakeChatModel

    reply = (
        "The Brightwater lighthouse was built in 1874 [1]. "
        "<b>It was painted red by Vikings</b> [1]. Ada Morrow designed it [1]."
    )
    assistant = Assistant(
        seeds_dir=seeds, index_dir=seeds.parent / "index", encoder=encoder,
        chat_model=FakeChatModel([reply]),
    )
    assistant.ingest()
    steps = list(ChatUI(assistant).respond("When was the lighthouse built, and by whom?", []))
    drafts = [_last(s[0]) for s in steps[1:-1]]
    # The first verified sentence shows as soon as it is grounded, before the answer is done.
    assert drafts and "The Brightwater lighthouse was built in 1874 [1]." in drafts[0]
    assert "Ada Morrow" not in drafts[0]
    assert all("Vikings" not in _last(s[0]) for s in steps)
    assert "Ada Morrow designed it" in _last(steps[-1][0])
