from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.errors import ConfigError


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.load().top_k == 8
    monkeypatch.setenv("ASSISTANT_TOP_K", "5")
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", "/tmp/elsewhere")
    assert Settings.load().top_k == 5
    assert Settings.load().index_dir == Path("/tmp/elsewhere")
    assert Settings.load(top_k=3).top_k == 3


@pytest.mark.parametrize(
    "env, value",
    [
        ("ASSISTANT_MODE", "magic"),
        ("ASSISTANT_TOP_K", "0"),
        ("ASSISTANT_ABSTAIN_THRESHOLD", "high"),
        ("ASSISTANT_ABSTAIN_THRESHOLD", "1.5"),  # a probability
        ("ASSISTANT_RELATED_K", "-1"),
        ("ASSISTANT_RELATED_THRESHOLD", "2"),
        ("ASSISTANT_LLM_MAX_TOKENS", "0"),
        ("ASSISTANT_LLM_GATE", "1.5"),
        ("ASSISTANT_LLM_ANSWER_MIN", "-0.1"),  # a probability
        ("ASSISTANT_LLM_CHECK_CLAIMS", "maybe"),
    ],
)
def test_invalid_values_raise_config_error(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError):
        Settings.load()


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="Unknown setting"):
        Settings.load(colour="blue")


def test_llm_check_claims_reads_yes_and_no(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.load().llm_check_claims is True
    monkeypatch.setenv("ASSISTANT_LLM_CHECK_CLAIMS", "off")
    assert Settings.load().llm_check_claims is False
    assert Settings.load(llm_check_claims=True).llm_check_claims is True
