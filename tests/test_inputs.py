"""What callers send, checked once at the facade: the history's caps and its text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant
from assistant.errors import BadInputError
from assistant.inputs import check_text, lone_surrogate_at

TURN = [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Ann."}]


@pytest.mark.parametrize(
    ("history", "needle"),
    [
        (TURN * 3, "The history has 6 messages; the limit is 4."),
        ([{"role": "user", "content": "x" * 101}], "The history is 101 characters long; the limit"),
        ("Who?", "The history must be a list of messages, not str."),
        ([{"role": "user", "content": 3}], "History message 1 has a content that is not text"),
        (["Who?"], "History message 1 must be a dict"),
        ([{"role": "user", "content": "x\ud800"}], "history message 1 is not valid Unicode"),
    ],
    ids=["messages", "characters", "not-a-list", "not-text", "not-a-message", "surrogate"],
)
def test_ask_refuses_a_history_over_its_caps_before_touching_the_index(
    tmp_path: Path, history: Any, needle: str
) -> None:
    a = Assistant(seeds_dir=tmp_path, index_dir=tmp_path / "index", mode="extractive",
                  max_history_messages=4, max_history_chars=100)
    with pytest.raises(BadInputError, match=needle) as err:
        a.ask("When?", history=history)
    assert err.value.hint and err.value.exit_code == 2
    assert not (tmp_path / "index").exists()  # refused before any work
    with pytest.raises(BadInputError, match=needle):
        list(a.stream("When?", history=history))


def test_history_caps_default_to_settings_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_MAX_HISTORY_MESSAGES", "1")
    a = Assistant(seeds_dir=tmp_path, index_dir=tmp_path / "index", mode="extractive")
    assert a.settings.max_history_messages == 1
    with pytest.raises(BadInputError, match="the limit is 1"):
        a.ask("When?", history=TURN)


def test_lone_surrogates_are_found_and_named() -> None:
    assert lone_surrogate_at("fine é 😀") is None
    assert lone_surrogate_at("ab\udc80") == 2
    with pytest.raises(BadInputError, match="The question is not valid Unicode"):
        check_text("\ud83d", "question")


@pytest.mark.parametrize(
    ("setting", "value", "needle"),
    [
        ("max_request_bytes", 0, "max_request_bytes must be a number from 1 "),
        ("max_history_messages", -1, "max_history_messages must be a number from 1 "),
        ("allowed_hosts", "good.example, bad host", "invalid host name 'bad host'"),
    ],
)
def test_request_limit_and_host_settings_are_validated(
    tmp_path: Path, setting: str, value: Any, needle: str
) -> None:
    from assistant.config import Settings
    from assistant.errors import ConfigError

    with pytest.raises(ConfigError, match=needle):
        Settings.load(**{setting: value})
    assert Settings.load(allowed_hosts=" A.example ,b.example.").host_allow_list() == (
        "a.example",
        "b.example",
    )
