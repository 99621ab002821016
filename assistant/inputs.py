"""Checks on what callers send (text that is valid Unicode, a history within its caps).

Stdlib only: the facade calls these for the Python API, and the UI and HTTP adapters reach them
through the facade, so every surface refuses the same input with the same sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.errors import BadInputError

UNICODE_HINT = "Send UTF-8 text: a lone surrogate (half of an emoji's UTF-16 pair) is not text."


def lone_surrogate_at(text: str) -> int | None:
    """The index of the first character that cannot be encoded as UTF-8 (a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_text(text: str, what: str) -> str:
    """`text` itself, or `BadInputError` if it holds a lone surrogate (`what` names it)."""
    at = lone_surrogate_at(text)
    if at is not None:
        raise BadInputError(
            f"The {what} is not valid Unicode: it has a lone surrogate at character {at} (a byte "
            "that was not UTF-8, or half of an emoji's UTF-16 pair).",
            UNICODE_HINT,
        )
    return text


def check_history(
    history: Any, *, max_messages: int, max_chars: int
) -> list[dict[str, str]] | None:
    """The history as given, if it is a list of {"role", "content"} text messages within caps."""
    if history is None:
        return None
    if not isinstance(history, list | tuple):
        raise BadInputError(
            f"The history must be a list of messages, not {type(history).__name__}.",
            'Send it as [{"role": "user", "content": "..."}, {"role": "assistant", ...}].',
        )
    if len(history) > max_messages:
        raise BadInputError(
            f"The history has {len(history)} messages; the limit is {max_messages}.",
            "Send only the last turns, or raise ASSISTANT_MAX_HISTORY_MESSAGES.",
        )
    hint = 'Send it as [{"role": "user", "content": "Who came?"}, {"role": "assistant", ...}].'
    for i, message in enumerate(history, 1):
        if not isinstance(message, Mapping):
            raise BadInputError(
                f"History message {i} must be a dict with role and content, not "
                f"{type(message).__name__}.",
                hint,
            )
        for key in ("role", "content"):
            value = message.get(key, "")
            if not isinstance(value, str):
                raise BadInputError(
                    f"History message {i} has a {key} that is not text ({type(value).__name__}).",
                    hint,
                )
            check_text(value, f"history message {i}")
    total = sum(len(m.get("content", "")) for m in history)
    if total > max_chars:
        raise BadInputError(
            f"The history is {total} characters long; the limit is {max_chars}.",
            "Send only the last turns, or raise ASSISTANT_MAX_HISTORY_CHARS.",
        )
    return [dict(m) for m in history] or None
