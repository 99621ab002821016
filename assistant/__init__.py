"""Grounded question answering with verified character-span citations."""

from .core import Assistant
from .errors import (
    AssistantError,
    BackendError,
    BadInputError,
    ConfigError,
    IndexIncompatibleError,
    IndexMissingError,
    ModelError,
    SeedsError,
)
from .types import Answer, Citation, IngestSummary

__all__ = [
    "Answer",
    "Assistant",
    "AssistantError",
    "BackendError",
    "BadInputError",
    "Citation",
    "ConfigError",
    "IndexIncompatibleError",
    "IndexMissingError",
    "IngestSummary",
    "ModelError",
    "SeedsError",
]
__version__ = "0.1.0"
