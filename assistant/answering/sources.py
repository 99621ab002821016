"""The prompt's evidence: numbered source blocks of indexed sentences, and the chat history."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from assistant.answering.markers import strip_markers

# Prompt tokens are the cost on a CPU (about 100 tokens/s before the first word on 2 cores), and a
# small model follows few, tight sources best: the evidence sentences themselves, each with the
# sentence before it only when it leans on it ("She later…"). Measured in docs/llm.md.
MAX_BLOCKS = 4  # source blocks in the prompt
WINDOW = 0  # sentences kept on either side of an evidence sentence
MAX_BLOCK_SENTENCES = 3
# A sentence that opens with one of these leans on the one before it for who or what it is about.
REFERRING = re.compile(r"^\W*(he|she|it|they|his|her|its|their|this|these|there)\b", re.I)
HISTORY_TURNS = 6
HISTORY_CHARS = 500


@dataclass(frozen=True)
class SourceBlock:
    """A numbered window of consecutive indexed sentences of one document, shown to the model."""

    number: int
    source: str
    sents: tuple[int, ...]  # global sentence positions in the sidecar
    text: str


def build_blocks(
    side: Any, seeds: Iterable[int], max_blocks: int = MAX_BLOCKS, window: int = WINDOW
) -> list[SourceBlock]:
    """Windows around the seed sentences (best first), merged where they overlap."""
    spans: list[list[int]] = []  # [doc, first, last] (inclusive sentence positions)
    for s in seeds:
        doc = int(side.sent_doc[s])
        lo, hi = s, s
        if REFERRING.match(side.sent_text[s]) and s > 0 and side.sent_doc[s - 1] == doc:
            lo = s - 1
        for _ in range(window):
            if lo > 0 and side.sent_doc[lo - 1] == doc:
                lo -= 1
            if hi + 1 < len(side.sent_doc) and side.sent_doc[hi + 1] == doc:
                hi += 1
        placed = False
        for span in spans:
            if span[0] != doc or lo > span[2] + 1 or hi < span[1] - 1:
                continue
            if span[1] <= s <= span[2]:  # already shown
                placed = True
            elif max(hi, span[2]) - min(lo, span[1]) < MAX_BLOCK_SENTENCES:
                span[1], span[2] = min(lo, span[1]), max(hi, span[2])
                placed = True
            elif s > span[2]:  # too long to merge: a block of its own, not overlapping
                lo = max(lo, span[2] + 1)
            else:
                hi = min(hi, span[1] - 1)
            if placed:
                break
        if not placed and len(spans) < max_blocks:
            spans.append([doc, lo, hi])
    blocks = []
    for n, (doc, lo, hi) in enumerate(spans, 1):
        sents = tuple(range(lo, hi + 1))
        # One line per block; bracketed numbers inside a source would read as citation markers.
        text = " ".join(" ".join(side.sent_text[s].split()) for s in sents)
        text = re.sub(r"\[(\d+)\]", r"(\1)", text)
        blocks.append(SourceBlock(n, side.docs[doc]["source"], sents, text))
    return blocks


def format_sources(blocks: list[SourceBlock]) -> str:
    return "\n".join(f"[{b.number}] ({b.source}) {b.text}" for b in blocks)


def format_history(history: list[dict[str, str]]) -> str:
    lines = []
    for turn in history[-HISTORY_TURNS:]:
        role = turn.get("role", "")
        if role not in ("user", "assistant"):
            continue
        content = " ".join(strip_markers(str(turn.get("content", ""))).split())
        lines.append(f"{role}: {content[:HISTORY_CHARS]}")
    return "\n".join(lines)
