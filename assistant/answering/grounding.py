"""Grounding a model's reply: each sentence aligned to the source sentence(s) that support it.

Each answer sentence is aligned (lexically and by embedding) to the sentence(s) of the blocks it
cites, or of all blocks when it cites none or the wrong one, and every span is verified against the
source file. Markers that point nowhere are dropped; the markers the user sees are renumbered to
the verified citations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.answering.citations import SourceReader, verify
from assistant.answering.extractive import ABSTAIN_TEXT
from assistant.answering.markers import (
    _MARKER,
    _MARKERS_AFTER_STOP,
    is_refusal,
    looks_like_instruction,
    strip_markers,
)
from assistant.answering.sources import SourceBlock
from assistant.documents.splitter import split_sentences
from assistant.indexing.lexical import tokenize
from assistant.types import Citation

MAX_SUPPORT = 3  # source sentences one answer sentence may be narrowed to
# An answer sentence is supported when 0.5 * cosine + 0.5 * IDF-weighted token coverage of its
# best source sentence(s) reaches SUPPORT_MIN, the coverage alone reaches COVERAGE_MIN and every
# number it states appears in them (and the best sentence does not state other numbers instead).
SUPPORT_MIN = 0.5
SHORT_SUPPORT_MIN = 0.45  # for a bare answer ("Minsk."), aligned together with its question
COVERAGE_MIN = 0.3
# A further source sentence is cited too when the best one leaves the claim partly uncovered and it
# adds EXTRA_GAIN_MIN coverage while being about the claim (cosine >= EXTRA_DENSE_MIN).
EXTRA_GAIN_MIN = 0.15
EXTRA_DENSE_MIN = 0.35
COVERED = 0.75


@dataclass
class Grounding:
    """A model answer after citation mapping and verification."""

    text: str
    citations: list[Citation]
    unsupported: list[str]
    refused: bool  # nothing supported, and the model said the documents do not say
    dropped_markers: list[int] = field(default_factory=list)
    failed_verification: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def abstained(self) -> bool:
        return not self.citations


class Grounder:
    """Maps each sentence of a model answer to verified sentence spans of the source blocks."""

    def __init__(
        self,
        side: Any,
        coverage: Callable[[list[str], set[str]], float],
        encoder: Any,
        reader: SourceReader,
    ) -> None:
        self.side = side
        self.coverage = coverage
        self.encoder = encoder
        self.reader = reader
        self._tokens: dict[int, set[str]] = {}
        self._block_tokens: dict[int, set[str]] = {}

    def ground(self, raw: str, blocks: list[SourceBlock], question: str) -> Grounding:
        by_number = {b.number: b for b in blocks}
        usable = [
            s for b in blocks for s in b.sents if not looks_like_instruction(self.side.sent_text[s])
        ]
        # Names in a claim must occur in the block of the sentence that supports it.
        self._block_tokens = {
            s: set().union(*(self._sentence_tokens(t) for t in b.sents))
            for b in blocks
            for s in b.sents
        }
        q_tokens = tokenize(question)
        lines = _answer_sentences(raw)
        claims = [[_Claim.of(_claim_text(s), q_tokens) for s in line] for line in lines]
        flat = [c for line in claims for c in line]
        # A bare "1887." is embedded with its question, or its vector would mean nothing.
        vecs = (
            self.encoder.encode([f"{question} {c.text}" if c.short else c.text for c in flat])
            if flat
            else np.zeros((0, 1), dtype=np.float32)
        )
        keys: dict[tuple[str, int, int], int] = {}
        citations: list[Citation] = []
        out_lines, unsupported, steps, dropped = [], [], [], []
        refusals = failed = 0
        k = 0
        for line, line_claims in zip(lines, claims, strict=True):
            shown = []
            for sentence, claim in zip(line, line_claims, strict=True):
                vec = vecs[k]
                k += 1
                numbers = [
                    int(n)
                    for m in _MARKER.finditer(sentence)
                    for n in re.findall(r"\d+", m.group())
                ]
                valid = list(dict.fromkeys(n for n in numbers if n in by_number))
                dropped += [n for n in numbers if n not in by_number]
                step: dict[str, Any] = {"sentence": claim.text, "markers": numbers}
                chosen, how = self._support(claim, vec, valid, by_number, usable)
                cited = verify(
                    [
                        Citation(
                            self.side.docs[self.side.sent_doc[s]]["source"],
                            int(self.side.sent_start[s]),
                            int(self.side.sent_end[s]),
                            self.side.sent_text[s],
                        )
                        for s in chosen
                    ],
                    self.reader,
                )
                if chosen and not cited:
                    failed += 1
                if cited:
                    numbers_shown = []
                    for c in cited:
                        key = (c.source, c.start, c.end)
                        if key not in keys:
                            keys[key] = len(citations) + 1
                            citations.append(c)
                        numbers_shown.append(keys[key])
                    shown.append(_with_markers(claim.text, numbers_shown))
                    step.update(how=how, cited=numbers_shown)
                elif is_refusal(claim.text):
                    refusals += 1
                    shown.append(claim.text)
                    step["how"] = "refusal"
                else:
                    unsupported.append(claim.text)
                    step["how"] = "unsupported"
                steps.append(step)
            if shown:
                out_lines.append(" ".join(shown))
        if not citations:
            return Grounding(
                ABSTAIN_TEXT,
                [],
                unsupported,
                refused=refusals > 0 and not unsupported,
                dropped_markers=dropped,
                failed_verification=failed,
                steps=steps,
            )
        return Grounding(
            "\n".join(out_lines),
            citations,
            unsupported,
            refused=False,
            dropped_markers=dropped,
            failed_verification=failed,
            steps=steps,
        )

    def _support(
        self,
        claim: _Claim,
        vec: np.ndarray,
        valid: list[int],
        by_number: dict[int, SourceBlock],
        usable: list[int],
    ) -> tuple[list[int], str]:
        """The source sentences that support `claim`: in the cited blocks first, else anywhere."""
        if not claim.tokens:
            return [], "unsupported"
        if valid:
            allowed = set(usable)
            cands = [s for n in valid for s in by_number[n].sents if s in allowed]
            chosen = self._align(claim, vec, cands)
            if chosen:
                return chosen, "cited"
        chosen = self._align(claim, vec, usable)
        return chosen, ("realigned" if valid else "aligned") if chosen else "unsupported"

    def _align(self, claim: _Claim, vec: np.ndarray, cands: list[int]) -> list[int]:
        """The best supporting sentence(s) among `cands`, or [] when none supports the claim."""
        if claim.short:  # the answer itself ("Minsk.") must be in the sentence that supports it
            cands = [s for s in cands if self.coverage(claim.own, self._sentence_tokens(s)) >= 0.5]
        if not cands:
            return []
        tokens = claim.tokens
        dense = self.side.sent_vecs[np.array(cands)] @ vec
        rows = []
        for s, d in zip(cands, dense, strict=True):
            toks = self._sentence_tokens(s)
            rows.append((0.5 * float(d) + 0.5 * self.coverage(tokens, toks), s, toks, float(d)))
        rows.sort(key=lambda r: -r[0])
        _, best, best_tokens, best_dense = rows[0]
        chosen, covered = [best], set(best_tokens)
        cov = self.coverage(tokens, covered)
        for _, s, toks, d in rows[1:]:
            if len(chosen) >= MAX_SUPPORT or cov >= COVERED:
                break
            gain = self.coverage(tokens, covered | toks) - cov
            if gain >= EXTRA_GAIN_MIN and d >= EXTRA_DENSE_MIN:
                chosen.append(s)
                covered |= toks
                cov += gain
        claimed, best_numbers = _numbers(claim.own), _numbers(best_tokens)
        # "began in 1923" against "began in 1887": the best match states another number.
        contradicted = bool(claimed and best_numbers and not claimed & best_numbers)
        context = set().union(*(self._block_tokens.get(s, set()) for s in chosen))
        floor = SHORT_SUPPORT_MIN if claim.short else SUPPORT_MIN
        supported = (
            0.5 * best_dense + 0.5 * cov >= floor
            and cov >= COVERAGE_MIN
            and claimed <= _numbers(covered)
            and not contradicted
            and claim.names <= context | covered
        )
        return sorted(chosen) if supported else []

    def _sentence_tokens(self, s: int) -> set[str]:
        if s not in self._tokens:
            self._tokens[s] = set(tokenize(self.side.sent_text[s]))
        return self._tokens[s]


@dataclass(frozen=True)
class _Claim:
    """One answer sentence without markers, and the tokens it is matched on."""

    text: str
    own: list[str]  # its content tokens
    tokens: list[str]  # what is aligned: its tokens, and the question's too when it is short
    names: frozenset[str]  # tokens of capitalised words (not the first) absent from the question
    short: bool

    @classmethod
    def of(cls, text: str, q_tokens: list[str]) -> _Claim:
        own = tokenize(text)
        short = len(set(own)) < 3
        capitalised = re.findall(r"(?<=[\s(“\"'‘])[A-Z][\w’'\-]*", text)
        names = frozenset(t for w in capitalised for t in tokenize(w)) - set(q_tokens)
        return cls(text, own, own + q_tokens if short else own, names, short)


def _answer_sentences(raw: str) -> list[list[str]]:
    """The answer's sentences, line by line, with markers moved before the final stop."""
    text = _MARKERS_AFTER_STOP.sub(lambda m: m.group(2) + m.group(1), raw.strip())
    lines = []
    for line in text.splitlines():
        spans = split_sentences(line)
        if spans:
            lines.append([line[a:b] for a, b in spans])
    return lines


def _claim_text(sentence: str) -> str:
    text = " ".join(strip_markers(sentence).split())
    return re.sub(r"\s+([.,;:!?…])", r"\1", text)


def _with_markers(claim: str, numbers: list[int]) -> str:
    markers = "".join(f"[{n}]" for n in numbers)
    m = re.search(r"[.!?…]+$", claim)
    if m:
        return f"{claim[: m.start()]} {markers}{claim[m.start() :]}"
    return f"{claim} {markers}"


def _numbers(tokens: Iterable[str]) -> set[str]:
    return {t.replace(",", "") for t in tokens if t[:1].isdigit()}
