"""LLM answers grounded in retrieved evidence: source blocks, prompt, citation mapping, abstention.

The model sees numbered source blocks (windows of indexed sentences with known offsets) and cites
them as `[n]`. Its answer is never trusted as is: each answer sentence is aligned (lexically and by
embedding) to the sentence(s) of the blocks it cites, or of all blocks when it cites none or the
wrong one, and every span is verified against the source file. Markers that point nowhere are
dropped; the markers the user sees are renumbered to the verified citations.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .citations import SourceReader, verify
from .errors import BackendError
from .extractive import ABSTAIN_TEXT
from .lexical import tokenize
from .llm import ChatModel, Usage
from .prompts import render
from .text import split_sentences
from .types import Answer, Citation

log = logging.getLogger(__name__)

MAX_BLOCKS = 6  # source blocks in the prompt
WINDOW = 1  # sentences kept on either side of an evidence sentence
MAX_BLOCK_SENTENCES = 5
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
HISTORY_TURNS = 6
HISTORY_CHARS = 500

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
    r"|\bcannot be (determined|answered|found)\b",
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


class LLMAnswerer:
    """Answers with a chat model from retrieved source blocks; every shown citation is verified.

    `engine` is the loaded index (retriever, extractive answerer, sidecar, chunk spans);
    `fallback(question, history)` gives the offline extractive answer when the model fails.
    """

    def __init__(
        self,
        engine: Any,
        encoder: Any,
        model: ChatModel,
        reader: SourceReader,
        fallback: Callable[[str, list[dict[str, str]] | None], Answer],
    ) -> None:
        self.engine = engine
        self.encoder = encoder
        self.model = model
        self.reader = reader
        self.fallback = fallback

    def run(
        self, question: str, history: list[dict[str, str]] | None, *, stream: bool, t0: float
    ) -> Iterator[str | Answer]:
        """Yield text deltas (when streaming), then the final `Answer`."""
        retriever, answerer = self.engine.retriever, self.engine.answerer
        timings: dict[str, float] = {"load": (time.perf_counter() - t0) * 1000}
        trace: dict[str, Any] = {"model": self.model.name}
        usage: Usage | None = None
        standalone = question
        if history:
            t = time.perf_counter()
            try:
                standalone, usage = self.condense(question, history)
            except BackendError as exc:
                yield from self._fall_back(question, history, exc, timings, t0, stream, False)
                return
            timings["condense"] = (time.perf_counter() - t) * 1000
            trace["standalone_question"] = standalone

        t1 = time.perf_counter()
        retrieval = retriever.retrieve(standalone)
        picks, confidence = answerer.pick(standalone, retrieval.question_tokens, retrieval.evidence)
        t2 = time.perf_counter()
        timings["retrieve"] = (t2 - t1) * 1000
        timings.update({f"retrieve.{k}": v for k, v in retrieval.timings_ms.items()})
        trace.update(
            {
                "confidence": round(confidence, 4),
                "threshold": answerer.threshold,
                "search_text": standalone,
                "chunk_spans": [self.engine.chunk_span(p) for p, _ in retrieval.chunks],
                "evidence": [
                    (e.source, e.start, e.end, round(e.score, 4)) for e in retrieval.evidence[:5]
                ],
            }
        )
        if not picks:  # retrieval-gated abstention: nothing relevant, so the model is not asked
            trace["gate"] = "retrieval"
            answer = self._answer(ABSTAIN_TEXT, True, [], timings, question, t0, usage, trace)
            if stream:
                yield answer.text
            yield answer
            return

        seeds = [p.evidence.sent for p in picks] + [e.sent for e in retrieval.evidence]
        blocks = build_blocks(self.engine.side, seeds)
        messages = render(
            "answer",
            sources=format_sources(blocks),
            question=standalone,
            abstain_text=ABSTAIN_TEXT,
            n_sources=len(blocks),
        )
        trace["sources"] = [
            (
                b.number,
                b.source,
                int(self.engine.side.sent_start[b.sents[0]]),
                int(self.engine.side.sent_end[b.sents[-1]]),
            )
            for b in blocks
        ]
        trace["prompt"] = messages

        streamed = False
        try:
            if stream:
                parts: list[str] = []
                cleaner = MarkerFilter()
                for item in self.model.stream(messages):
                    if isinstance(item, Usage):
                        usage = item + usage
                        continue
                    parts.append(item)
                    if piece := cleaner.feed(item):
                        streamed = True
                        yield piece
                if (piece := cleaner.flush().rstrip()) and streamed:
                    yield piece
                raw = "".join(parts)
            else:
                raw, used = self.model.complete(messages)
                usage = used + usage if used else usage
        except BackendError as exc:
            timings["generate"] = (time.perf_counter() - t2) * 1000
            yield from self._fall_back(
                standalone, None, exc, timings, t0, stream, streamed, original=question
            )
            return
        t3 = time.perf_counter()
        timings["generate"] = (t3 - t2) * 1000
        trace["raw_answer"] = raw

        grounding = Grounder(
            self.engine.side, retriever.coverage, self.encoder, self.reader
        ).ground(raw, blocks, standalone)
        timings["verify"] = (time.perf_counter() - t3) * 1000
        trace.update(
            {
                "dropped_markers": grounding.dropped_markers,
                "refused": grounding.refused,
                "sentences": grounding.steps,
            }
        )
        if grounding.dropped_markers:
            log.info(
                "Dropped citation markers that point to no source: %s", grounding.dropped_markers
            )
        notice = None
        if grounding.abstained:
            trace["gate"] = "output"
            if not raw.strip():
                notice = f"The model ({self.model.name}) returned an empty answer."
            elif grounding.failed_verification:
                notice = "The index is out of date with the documents; run `assistant ingest`."
            elif grounding.unsupported:
                notice = "The model's answer is not supported by the documents, so it is not shown."
        answer = self._answer(
            grounding.text,
            grounding.abstained,
            grounding.citations,
            timings,
            question,
            t0,
            usage,
            trace,
            notice,
            grounding.unsupported,
        )
        if stream and not streamed:
            yield answer.text
        yield answer

    def condense(self, question: str, history: list[dict[str, str]]) -> tuple[str, Usage | None]:
        """A follow-up rewritten as a standalone question (the question itself if that fails)."""
        messages = render("condense", history=format_history(history), question=question)
        text, usage = self.model.complete(messages)
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        line = re.sub(r"^standalone question:\s*", "", line, flags=re.I).strip().strip('"“”')
        if not line or len(line) > max(4 * len(question), 300):
            line = question
        return line, usage

    def _answer(
        self,
        text: str,
        abstained: bool,
        citations: list[Citation],
        timings: dict[str, float],
        question: str,
        t0: float,
        usage: Usage | None,
        trace: dict[str, Any],
        notice: str | None = None,
        unsupported: list[str] | None = None,
    ) -> Answer:
        timings["total"] = (time.perf_counter() - t0) * 1000
        return Answer(
            text,
            abstained,
            "llm",
            citations,
            timings,
            question,
            notice=notice,
            unsupported=list(unsupported or []),
            usage=usage.to_dict() if usage else None,
            trace=trace,
        )

    def _fall_back(
        self,
        question: str,
        history: list[dict[str, str]] | None,
        exc: BackendError,
        timings: dict[str, float],
        t0: float,
        stream: bool,
        streamed: bool,
        original: str | None = None,
    ) -> Iterator[str | Answer]:
        """The offline extractive answer, with a notice saying why the model was not used."""
        log.warning("The language model failed; answering offline: %s", exc.message)
        answer = self.fallback(question, history)
        answer.question = original or question
        why = f"{exc.message} This is the offline extractive answer instead."
        answer.notice = f"{why} {answer.notice}" if answer.notice else why
        answer.timings_ms.update(
            {k: v for k, v in timings.items() if k in ("condense", "generate")}
        )
        answer.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        answer.trace["llm_error"] = exc.message
        if stream and not streamed:
            yield answer.text
        yield answer
