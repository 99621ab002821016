"""The prompt's evidence: numbered source blocks of indexed sentences, and the chat history."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from assistant.answering.markers import strip_markers
from assistant.indexing.lexical import tokenize

# Prompt tokens are the cost on a CPU (about 100 tokens/s before the first word on 2 cores), and a
# small model follows few, tight sources best: the evidence sentences themselves, each with the
# sentence before it only when it leans on it ("She later…"). Measured in docs/llm.md.
MAX_BLOCKS = 4  # source blocks in the prompt
WINDOW = 0  # sentences kept on either side of an evidence sentence
MAX_BLOCK_SENTENCES = 3
# A longer "sentence" (a bullet list, an abstract's title and affiliations run together) is cut to
# the window of this many words that holds most of the question's words: it costs prompt tokens
# and buries the answer. Grounding still aligns to, and verifies, the whole sentence.
MAX_SENTENCE_WORDS = 32
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
    side: Any,
    seeds: Iterable[int],
    max_blocks: int = MAX_BLOCKS,
    window: int = WINDOW,
    question_tokens: Iterable[str] = (),
    max_words: int = MAX_SENTENCE_WORDS,
) -> list[SourceBlock]:
    """Windows around the seed sentences (best first), merged where they overlap; a long
    sentence is cut to the part about the question (`focus`)."""
    wanted = set(question_tokens)
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
        text = " ".join(focus(side.sent_text[s], wanted, max_words) for s in sents)
        text = re.sub(r"\[(\d+)\]", r"(\1)", text)
        blocks.append(SourceBlock(n, side.docs[doc]["source"], sents, text))
    return blocks


def focus(text: str, wanted: set[str], max_words: int = MAX_SENTENCE_WORDS) -> str:
    """`text` on one line; past `max_words` words, a window of that many with the most of the
    `wanted` (question) tokens, opening a quarter of the window before the first of them (the
    answer tends to follow the words of the question), with "…" where words were left out."""
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    hit = [bool(wanted & set(tokenize(w))) for w in words]
    sums = [0]
    for h in hit:
        sums.append(sums[-1] + h)
    last = len(words) - max_words
    start = max(range(last + 1), key=lambda i: (sums[i + max_words] - sums[i], -i))
    first = next((i for i in range(start, start + max_words) if hit[i]), start)
    start = min(max(start, first - max_words // 4), last)
    end = start + max_words
    cut = " ".join(words[start:end])
    return ("… " if start else "") + cut + (" …" if end < len(words) else "")


def format_sources(blocks: list[SourceBlock]) -> str:
    """One line per block, `[n] (file) text`; when every block is of one file, the file is named
    once, above them (a name repeated per block costs prompt tokens and says nothing new)."""
    names = {b.source for b in blocks}
    if len(names) == 1:
        head = f"(all from {blocks[0].source})\n"
        return head + "\n".join(f"[{b.number}] {b.text}" for b in blocks)
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
