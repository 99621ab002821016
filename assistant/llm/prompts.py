"""Prompt files in `prompts/`, rendered into chat messages with named variables.

A prompt file has a `## system` and a `## user` section; `{{name}}` marks a variable. Rendering
fails on a missing or an unexpected variable, so a renamed variable cannot go unnoticed. Sections
are split before substitution, so a variable's value (a source text) can never open a new one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError


def _prompts_dir() -> Path:
    """`prompts/` of the source tree (editable install), else the copy a wheel installs under
    `<prefix>/share/assistant/prompts` (pyproject's data-files)."""
    here = Path(__file__).resolve().parents[2] / "prompts"
    if here.is_dir():
        return here
    import sys

    return Path(sys.prefix) / "share" / "assistant" / "prompts"


PROMPTS_DIR = _prompts_dir()
ROLES = ("system", "user")

_SECTION = re.compile(r"^## (system|user)[ \t]*$", re.M)
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


def prompt_names() -> list[str]:
    """The names of every prompt file (without `.md`)."""
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.md"))


def variables(name: str) -> set[str]:
    """The variables a prompt needs."""
    return set(_VARIABLE.findall(_read(name)))


def render(name: str, **values: Any) -> list[dict[str, str]]:
    """The prompt `name` as chat messages, each `{{variable}}` replaced by its value."""
    template = _read(name)
    needed = set(_VARIABLE.findall(template))
    missing, unexpected = needed - set(values), set(values) - needed
    if missing or unexpected:
        raise ConfigError(
            f"Prompt {name}.md needs variable(s) {sorted(missing)} and does not use "
            f"{sorted(unexpected)}.",
            f"Make prompts/{name}.md and its caller agree on the variable names.",
        )
    parts = _SECTION.split(template)
    if len(parts) < 3 or parts[0].strip():
        raise ConfigError(
            f"Prompt {name}.md must consist of '## system' / '## user' sections.",
            f"Check the headings in prompts/{name}.md.",
        )
    messages = []
    for role, body in zip(parts[1::2], parts[2::2], strict=True):
        text = _VARIABLE.sub(lambda m: str(values[m.group(1)]), body).strip()
        messages.append({"role": role, "content": text})
    return messages


def _read(name: str) -> str:
    path = PROMPTS_DIR / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError(
            f"The prompt file {path} is missing.", "Restore it from the repository."
        ) from None
