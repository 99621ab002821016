"""The `[n]` markers of a model's reply, and what a reply sentence is: a refusal, an instruction.

`MarkerFilter` hides markers while a reply streams; `strip_markers` removes them from text.
"""

from __future__ import annotations

import re

_MARKER_BODY = r"\[\s*(?:source\s*)?\d+(?:\s*[,;]\s*(?:source\s*)?\d+)*\s*\]"
_MARKER = re.compile(_MARKER_BODY, re.I)
_MARKER_STRIP = re.compile(r"\s*" + _MARKER_BODY, re.I)
_MARKERS_AFTER_STOP = re.compile(r"([.!?…]+)((?:\s*" + _MARKER_BODY + r")+)", re.I)
_REFUSAL = re.compile(
    r"\b(documents?|sources?|context|texts?|excerpts?|passages?|information provided)\b[^.]*?"
    r"\b(do|does|did)\s*(?:not|n[’']t)\s+(say|mention|contain|state|specify|provide|include|"
    r"give|tell|cover|address|discuss|indicate)"
    r"|\bnot (mentioned|stated|specified|provided|given|found|covered) in the "
    r"(documents?|sources?|context|texts?)"
    r"|\b(no|not enough|insufficient) information\b"
    r"|\bI (do not|don[’']t|cannot|can[’']t) (know|answer|find|tell)\b"
    r"|\bcannot be (determined|answered|found)\b"
    r"|\b(no|none of the) (sources?|documents?)\b[^.]*?\b(is|are|says?|mentions?|contains?|holds?|"
    r"gives?|answers?|provides?)\b",
    re.I,
)
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompts?|rules|guidelines|"
    r"everything above|all of the above)\b"
    r"|\b(system prompt|developer message)\b"
    r"|\b(you are now|from now on,? you|as an ai|language models?|ai assistants?|"
    r"chatbots?)\b.{0,60}\b(must|should|will|answer|reply|respond|say)\b",
    re.I | re.S,
)


def strip_markers(text: str) -> str:
    """`text` without `[n]` citation markers (and the space before each)."""
    return _MARKER_STRIP.sub("", text)


def is_refusal(sentence: str) -> bool:
    """True for sentences that say the documents do not contain the answer."""
    return bool(_REFUSAL.search(sentence))


def looks_like_instruction(sentence: str) -> bool:
    """True for source sentences addressed to a model (prompt injection): never cited as support."""
    return bool(_INSTRUCTION.search(sentence))


class MarkerFilter:
    """Removes `[n]` markers from streamed text as it arrives; a marker may span several deltas.

    Feeding a text in any pieces yields exactly `strip_markers(text)`.
    """

    _LONGEST = 48

    def __init__(self) -> None:
        self._space = ""  # whitespace held back: it is dropped if a marker follows
        self._held = ""  # a '[' and what followed it, until it is known whether it is a marker

    def feed(self, delta: str) -> str:
        out: list[str] = []
        for ch in delta:
            if self._held:
                self._held += ch
                if ch == "]" or len(self._held) > self._LONGEST:
                    if _MARKER.fullmatch(self._held):
                        self._space = ""
                    else:
                        out.append(self._space + self._held)
                        self._space = ""
                    self._held = ""
                continue
            if ch == "[":
                self._held = ch
            elif ch.isspace():
                self._space += ch
            else:
                out.append(self._space + ch)
                self._space = ""
        return "".join(out)

    def flush(self) -> str:
        """What is still held back at the end of the stream."""
        rest, self._space, self._held = self._space + self._held, "", ""
        return rest
