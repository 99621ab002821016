"""Grounded question answering with verified character-span citations."""

from assistant.core import Assistant
from assistant.errors import (
    AssistantError,
    BackendError,
    BadInputError,
    ConfigError,
    IndexBusyError,
    IndexIncompatibleError,
    IndexMissingError,
    ModelError,
    SeedsError,
)
from assistant.types import Answer, Citation, IngestSummary

__all__ = [
    "Answer",
    "Assistant",
    "AssistantError",
    "BackendError",
    "BadInputError",
    "Citation",
    "ConfigError",
    "IndexBusyError",
    "IndexIncompatibleError",
    "IndexMissingError",
    "IngestSummary",
    "ModelError",
    "SeedsError",
]
__version__ = "0.1.0"
