"""Grounding a model's reply: each sentence aligned to the source sentence(s) that support it.

Each answer sentence is aligned (lexically and by embedding) to the sentence(s) of the blocks it
cites, or of all blocks when it cites none or the wrong one, and every span is verified against the
source file. The names and numbers of a claim must be in the sentence(s) it is aligned to (or, for
"She…", the sentence just before), each number counting what the source counts with it; a
sentence that reads as an instruction to a model supports nothing. When the model can score it, a
yes/no question "does this sentence say the claim?" is asked per claim, so who did what to whom is
checked too; and, until one claim answers, "does the cited source answer the question?" (a true
sentence beside the point answers nothing: when no claim answers, the answer abstains and its
passages are related, not cited). Markers that point nowhere are dropped; the markers the user
sees are renumbered to the verified citations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
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
from assistant.answering.sources import REFERRING, SourceBlock
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
    judged: int = 0  # support questions asked of the model
    related: list[Citation] = field(default_factory=list)  # true, but not an answer
    off_question: bool = False  # supported claims only, none of which answers the question

    @property
    def abstained(self) -> bool:
        return not self.citations


# P(yes) of the model's support question below which a claim is not shown (docs/llm.md).
JUDGE_MIN = 0.5

Judge = Callable[[str, str, list[str]], "float | None"]
# `answers(evidence)`: the model's P(the source sentence(s) a claim cites answer the question).
AnswerCheck = Callable[[list[str]], "float | None"]


class Grounder:
    """Maps each sentence of a model answer to verified sentence spans of the source blocks.

    One answer at a time, sentence by sentence (`add`), so a stream can show each sentence as soon
    as it is grounded; `result()` is the whole answer. `judge(question, claim, evidence)`, when
    given, is the model's P(the evidence says the claim): a claim it doubts is not shown.
    `answers`, when given, is asked of each supported claim until one answers the question (P at
    least `answer_min`); a supported claim before that is not shown, and its citations become
    `related`. Later claims add to the answer and are not asked.
    """

    def __init__(
        self,
        side: Any,
        coverage: Callable[[list[str], set[str]], float],
        encoder: Any,
        reader: SourceReader,
        blocks: list[SourceBlock],
        question: str,
        judge: Judge | None = None,
        answers: AnswerCheck | None = None,
        answer_min: float = 0.0,
    ) -> None:
        self.side = side
        self.coverage = coverage
        self.encoder = encoder
        self.reader = reader
        self.judge = judge
        self.answers = answers
        self.answer_min = answer_min
        self.answered = answers is None  # no check: every supported claim answers
        self.related: list[Citation] = []
        self.question = question
        self._tokens: dict[int, set[str]] = {}
        self._by_number = {b.number: b for b in blocks}
        # A sentence addressed to a model (prompt injection) never supports anything.
        self._usable = [
            s for b in blocks for s in b.sents if not looks_like_instruction(self.side.sent_text[s])
        ]
        self._q_tokens = tokenize(question)
        self._keys: dict[tuple[str, int, int], int] = {}
        self._lines: dict[int, list[str]] = {}
        self.citations: list[Citation] = []
        self.unsupported: list[str] = []
        self.steps: list[dict[str, Any]] = []
        self.dropped: list[int] = []
        self.refusals = self.failed = self.judged = 0

    def ground(self, raw: str) -> Grounding:
        """The whole reply at once."""
        for line_no, line in enumerate(_answer_sentences(raw)):
            for sentence in line:
                self.add(sentence, line_no)
        return self.result()

    def add(self, sentence: str, line: int = 0) -> str | None:
        """Ground one reply sentence: its text as shown, with verified markers (a refusal as it
        is: shown only beside a cited sentence), or None when it is not shown."""
        claim = _Claim.of(_claim_text(sentence), self._q_tokens)
        numbers = [
            int(n) for m in _MARKER.finditer(sentence) for n in re.findall(r"\d+", m.group())
        ]
        valid = list(dict.fromkeys(n for n in numbers if n in self._by_number))
        self.dropped += [n for n in numbers if n not in self._by_number]
        step: dict[str, Any] = {"sentence": claim.text, "markers": numbers}
        self.steps.append(step)
        if (
            not claim.tokens
            or not re.search(r"\w", claim.text)
            or (claim.own and set(claim.own) <= set(self._q_tokens))
        ):
            # nothing to ground (a reply of markers alone, "[2]": recorded as the model wrote
            # it), or only the question's own words: it answers nothing
            step["how"] = "unsupported"
            self.unsupported.append(claim.text or " ".join(sentence.split()))
            return None
        # A bare "1887." is embedded with its question, or its vector would mean nothing.
        text = f"{self.question} {claim.text}" if claim.short else claim.text
        vec = self.encoder.encode([text])[0]
        chosen, how = self._support(claim, vec, valid)
        cited = verify([self._citation(s) for s in chosen], self.reader)
        if chosen and not cited:
            self.failed += 1
        if cited and not self.answered and self.answers is not None:
            p = self.answers([c.quote for c in cited])
            if p is not None:
                step["p_answers"] = round(p, 3)
                if p < self.answer_min:  # true, maybe, but beside the question: related only
                    step["how"] = "off_question"
                    self.related += [c for c in cited if c not in self.related]
                    return None
        if cited and self.judge is not None:
            p = self.judge(self.question, claim.text, [c.quote for c in cited])
            if p is not None:
                self.judged += 1
                step["p_supported"] = round(p, 3)
                if p < JUDGE_MIN:
                    step["how"] = "doubted"
                    self.unsupported.append(claim.text)
                    return None
        if cited:
            self.answered = True
            shown_numbers = []
            for c in cited:
                key = (c.source, c.start, c.end)
                if key not in self._keys:
                    self._keys[key] = len(self.citations) + 1
                    self.citations.append(c)
                shown_numbers.append(self._keys[key])
            step.update(how=how, cited=shown_numbers)
            shown = _with_markers(claim.text, shown_numbers)
        elif is_refusal(claim.text):
            self.refusals += 1
            step["how"] = "refusal"
            shown = claim.text
        else:
            self.unsupported.append(claim.text)
            step["how"] = "unsupported"
            return None
        self._lines.setdefault(line, []).append(shown)
        return shown

    def result(self) -> Grounding:
        if not self.citations:
            return Grounding(
                ABSTAIN_TEXT,
                [],
                self.unsupported,
                refused=self.refusals > 0 and not self.unsupported,
                dropped_markers=self.dropped,
                failed_verification=self.failed,
                steps=self.steps,
                judged=self.judged,
                related=self.related,
                off_question=bool(self.related),
            )
        return Grounding(
            "\n".join(" ".join(shown) for _, shown in sorted(self._lines.items())),
            self.citations,
            self.unsupported,
            refused=False,
            dropped_markers=self.dropped,
            failed_verification=self.failed,
            steps=self.steps,
            judged=self.judged,
        )

    def _citation(self, s: int) -> Citation:
        return Citation(
            self.side.docs[self.side.sent_doc[s]]["source"],
            int(self.side.sent_start[s]),
            int(self.side.sent_end[s]),
            self.side.sent_text[s],
        )

    def _support(self, claim: _Claim, vec: np.ndarray, valid: list[int]) -> tuple[list[int], str]:
        """The source sentences that support `claim`: in the cited blocks first, else anywhere."""
        if valid:
            allowed = set(self._usable)
            cands = [s for n in valid for s in self._by_number[n].sents if s in allowed]
            chosen = self._align(claim, vec, cands)
            if chosen:
                return chosen, "cited"
        chosen = self._align(claim, vec, self._usable)
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
        floor = SHORT_SUPPORT_MIN if claim.short else SUPPORT_MIN
        min_cov = COVERAGE_MIN
        if claim.short and self.judge is not None:
            # A bare answer ("36.") holds in the sentence (checked above); whether that sentence
            # answers the question is the support question's to say, not the alignment score's
            # (a long sentence's vector is far from "question + 36").
            floor = min_cov = 0.0
        supported = (
            0.5 * best_dense + 0.5 * cov >= floor
            and cov >= min_cov
            and claimed <= _numbers(covered)
            and not contradicted
            and claim.names <= covered | self._referents(chosen)
            and not misbound_numbers(claim.own, [tokenize(self.side.sent_text[s]) for s in chosen])
        )
        return sorted(chosen) if supported else []

    def _referents(self, chosen: list[int]) -> set[str]:
        """Names a chosen sentence refers to by a pronoun: those of the sentence just before it
        in the same document, unless that one is excluded (an instruction)."""
        names: set[str] = set()
        usable = set(self._usable)
        for s in chosen:
            prev = s - 1
            if (
                REFERRING.match(self.side.sent_text[s])
                and prev >= 0
                and self.side.sent_doc[prev] == self.side.sent_doc[s]
                and (prev in usable or not looks_like_instruction(self.side.sent_text[prev]))
            ):
                names |= self._sentence_tokens(prev)
        return names

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


class SentenceStream:
    """A streamed reply cut into whole sentences: `feed` gives each one once the next has begun
    (so a marker after its stop is still its own), `flush` the rest at the end."""

    def __init__(self) -> None:
        self._text = ""
        self._given = 0

    def feed(self, delta: str) -> list[tuple[int, str]]:
        self._text += delta
        return self._take(final=False)

    def complete(self) -> list[tuple[int, str]]:
        """The sentences that are whole so far (the reading stops here)."""
        return self._take(final=False)

    def flush(self) -> list[tuple[int, str]]:
        return self._take(final=True)

    def _take(self, final: bool) -> list[tuple[int, str]]:
        flat = [(n, s) for n, line in enumerate(_answer_sentences(self._text)) for s in line]
        end = len(flat)
        if not final:  # the last sentence with words may still be growing
            words = [i for i, (_, s) in enumerate(flat) if re.search(r"\w", strip_markers(s))]
            end = words[-1] if words else 0
        out = flat[self._given : end]
        self._given = max(self._given, end)
        return out


def whole_sentences(text: str) -> str:
    """`text` up to the end of its last whole sentence (all of it when none ends)."""
    m = re.search(r"^.*[.!?…](?:\s*" + _MARKER.pattern + r")*", text, re.S)
    return m.group() if m else text


def _claim_text(sentence: str) -> str:
    text = " ".join(strip_markers(sentence).split())
    return re.sub(r"\s+([.,;:!?…])", r"\1", text)


def _with_markers(claim: str, numbers: list[int]) -> str:
    markers = "".join(f"[{n}]" for n in numbers)
    m = re.search(r"[.!?…]+$", claim)
    if m:
        return f"{claim[: m.start()]} {markers}{claim[m.start() :]}"
    return f"{claim} {markers}"


def _number(token: str) -> str | None:
    """The token as a number ("1,150" -> "1150"), or None when it is a word."""
    return token.replace(",", "") if token[:1].isdigit() else None


def _numbers(tokens: Iterable[str]) -> set[str]:
    return {n for t in tokens if (n := _number(t))}


def _counted(tokens: list[str]) -> set[tuple[str, str]]:
    """(number, the content word right after it) pairs of a token list: what each number counts
    or measures ("63 trained volunteers" -> (63, train), "540 trees" -> (540, tree))."""
    return {(n, b) for a, b in pairwise(tokens) if (n := _number(a)) and _number(b) is None}


def misbound_numbers(claim: list[str], sources: list[list[str]]) -> list[tuple[str, str]]:
    """The claim's numbers attached to a word the source attaches to another number, while the
    source attaches that number to another word: "63 trees" from "63 trained volunteers surveyed
    540 trees". Both numbers and both words are in the source, so coverage and the number check
    pass; the claim still says something the source does not. Arguments are content tokens in
    order (`tokenize`), one list per supporting sentence."""
    said = set().union(*(_counted(t) for t in sources)) if sources else set()
    wrong = []
    for n, w in sorted(_counted(claim) - said):
        other_number = any(w2 == w and n2 != n for n2, w2 in said)
        other_word = any(n2 == n and w2 != w for n2, w2 in said)
        if other_number and other_word:
            wrong.append((n, w))
    return wrong
