"""Shared fixtures: tiny corpora in tmp folders and a real index built from them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_fda7896eed6c390c.txt"
# Variables that would switch a test into LLM mode or change its model settings.
LLM_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ASSISTANT_MODE",
    "ASSISTANT_LLM_MODEL",
    "ASSISTANT_LLM_TIMEOUT",
    "ASSISTANT_LLM_RETRIES",
    "ASSISTANT_LLM_TEMPERATURE",
    "ASSISTANT_LLM_MAX_TOKENS",
    "ASSISTANT_LLM_CHECK_CLAIMS",
    "ASSISTANT_LLM_GATE",
    "ASSISTANT_LLM_ANSWER_MIN",
)


@pytest.fixture(scope="session")
def seed_assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    """The seed article in a fresh index (built once per test session)."""
    base = tmp_path_factory.mktemp("seed")
    seeds = base / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    a = Assistant(seeds_dir=seeds, index_dir=base / "index")
    a.ingest()
    return a


@pytest.fixture(scope="session")
def encoder():  # type: ignore[no-untyped-def]
    from assistant.indexing.embedding import MiniLMEncoder

    return MiniLMEncoder()


class CountingEncoder:
    """The real encoder, counting the texts embedded at ingest (`encode`)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.embedded = inner, 0
        self.model_id, self.dimension = inner.model_id, inner.dimension

    def encode(self, texts: list[str], batch_size: int = 32) -> Any:
        self.embedded += len(texts)
        return self.inner.encode(texts, batch_size)

    def encode_one(self, text: str) -> Any:
        return self.inner.encode_one(text)
