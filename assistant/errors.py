"""Typed errors: each carries one clear sentence and a hint for the user."""

from __future__ import annotations


class AssistantError(Exception):
    """Base class for every error the assistant raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigError(AssistantError):
    """Raised when a setting or environment variable has an invalid value."""

    exit_code = 2


class BadInputError(AssistantError):
    """Raised when a question or argument cannot be used as given."""

    exit_code = 2


class DocumentError(BadInputError):
    """Raised when a file cannot be read as the document it claims to be (encrypted, scanned,
    corrupt, mislabelled, too large); its message is the reason, as `it is ...`."""


class SeedsError(AssistantError):
    """Raised when the seeds folder is missing or holds no readable document."""

    exit_code = 3


class IndexMissingError(AssistantError):
    """Raised when no index exists where one is needed."""

    exit_code = 4


class IndexIncompatibleError(AssistantError):
    """Raised when the index was built with another model or other chunking parameters."""

    exit_code = 4


class ModelError(AssistantError):
    """Raised when the embedding model files are missing or fail their checksum."""

    exit_code = 5


class BackendError(AssistantError):
    """Raised when a storage or LLM backend fails in a way the user must act on."""

    exit_code = 6


class LocalModelError(BackendError):
    """Raised when the local llama.cpp server cannot start: no binary, a missing or damaged model
    file, a crash, or no healthy server within the start-up timeout."""


class IndexBusyError(AssistantError):
    """Raised when another ingest holds the index's lock for longer than the wait allows."""

    exit_code = 8


class ServeError(AssistantError):
    """Raised when `assistant serve` cannot listen on its address (the port is in use, say)."""

    exit_code = 9
