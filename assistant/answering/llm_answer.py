"""LLM answers grounded in retrieved evidence: prompt, model call, grounding, fallback.

The model sees numbered source blocks (`sources.py`) and cites them as `[n]`. Its answer is never
trusted as is: `grounding.py` aligns each sentence to the source sentences that support it and
verifies every span against the source file.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from assistant.answering.answerability import decide
from assistant.answering.citations import SourceReader
from assistant.answering.extractive import ABSTAIN_TEXT
from assistant.answering.grounding import Grounder, SentenceStream, whole_sentences
from assistant.answering.sources import build_blocks, format_history, format_sources
from assistant.config import Settings
from assistant.errors import BackendError
from assistant.llm.client import ChatModel, Usage
from assistant.llm.prompts import render
from assistant.types import Answer, Citation

log = logging.getLogger(__name__)


# The model is asked when some retrieved sentence is about the question at all: its `support`
# (0.85 x MiniLM cosine + 0.15 x word coverage, retrieve.py) reaches `Settings.llm_gate`. That is
# far below the extractive threshold (0.365): the model, not the extractive answerer's rules,
# decides whether the sources answer; grounding then checks what it says. Calibrated on the dev
# cases (docs/llm.md).
CHARS_PER_TOKEN = 6  # generous: reading stops at llm_max_tokens x this many characters


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
        settings: Settings | None = None,
    ) -> None:
        self.engine = engine
        self.encoder = encoder
        self.model = model
        self.reader = reader
        self.fallback = fallback
        self.settings = settings or Settings()

    def run(
        self, question: str, history: list[dict[str, str]] | None, *, stream: bool, t0: float
    ) -> Iterator[str | Answer]:
        """Yield verified text (when streaming: each sentence once grounded), then the `Answer`."""
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
        # The gate is the answerability stage in LLM mode: do the passages bear on the question
        # at all (relevance signals only; the model, not the extractive rules, composes the answer)
        candidates = answerer.candidates(standalone, retrieval.question_tokens, retrieval.evidence)
        decision = decide(standalone, candidates, mode="llm", threshold=self.settings.llm_gate)
        gate_open, relevance = decision.answer, decision.confidence
        trace["answerability"] = decision.to_trace()
        t2 = time.perf_counter()
        timings["retrieve"] = (t2 - t1) * 1000
        timings.update({f"retrieve.{k}": v for k, v in retrieval.timings_ms.items()})
        trace.update(
            {
                "relevance": round(relevance, 4),
                "gate_threshold": self.settings.llm_gate,
                "search_text": standalone,
                "chunk_spans": [self.engine.chunk_span(p) for p, _ in retrieval.chunks],
                "evidence": [
                    (e.source, e.start, e.end, round(e.score, 4)) for e in retrieval.evidence[:5]
                ],
            }
        )
        if not gate_open:  # nothing retrieved is about the question, so the model is not asked
            trace["gate"] = "retrieval"
            answer = self._answer(ABSTAIN_TEXT, True, [], timings, question, t0, usage, trace)
            if stream:
                yield answer.text
            yield answer
            return

        # The extractive answerer only orders the evidence here (its pick first); it gates nothing.
        picks, extractive = answerer.choose(standalone, retrieval.question_tokens, candidates)
        trace["confidence"] = round(extractive.confidence, 4)
        seeds = [p.evidence.sent for p in picks] + [e.sent for e in retrieval.evidence]
        blocks = build_blocks(self.engine.side, seeds, question_tokens=retrieval.question_tokens)
        messages = render(
            "answer",
            sources=format_sources(blocks),
            question=standalone,
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

        judge = _Judge(self.model) if self.settings.llm_check_claims else None
        check = (
            _AnswerCheck(self.model, standalone)
            if self.settings.llm_answer_min > 0
            else None
        )
        grounder = Grounder(
            self.engine.side,
            retriever.coverage,
            self.encoder,
            self.reader,
            blocks,
            standalone,
            judge.ask if judge else None,
            check.ask if check else None,
            self.settings.llm_answer_min,
        )
        limit = self.settings.llm_max_tokens * CHARS_PER_TOKEN
        shown = _Shown()
        t_verify = 0.0
        try:
            if stream:
                sentences = SentenceStream()
                parts: list[str] = []
                length = 0
                replies = self.model.stream(messages)
                try:
                    for item in replies:
                        if isinstance(item, Usage):
                            trace["answer_usage"] = item.to_dict()
                            usage = item + usage
                            continue
                        parts.append(item)
                        length += len(item)
                        done = sentences.feed(item)
                        if length >= limit:  # past the bound: stop reading, ground what is whole
                            trace["cut"] = True
                            break
                        t = time.perf_counter()
                        pieces = [
                            p
                            for line, sentence in done
                            for p in shown.add(grounder, sentence, line)
                        ]
                        t_verify += time.perf_counter() - t
                        yield from pieces
                finally:
                    close = getattr(replies, "close", None)
                    if close:
                        close()
                t = time.perf_counter()
                rest = sentences.complete() if trace.get("cut") else sentences.flush()
                pieces = [p for line, sentence in rest for p in shown.add(grounder, sentence, line)]
                pieces += shown.finish(grounder)
                t_verify += time.perf_counter() - t
                yield from pieces
                raw = "".join(parts)
            else:
                raw, used = self.model.complete(messages)
                trace["answer_usage"] = used.to_dict() if used else None
                usage = used + usage if used else usage
                if len(raw) > limit:
                    trace["cut"] = True
                    raw = whole_sentences(raw[:limit])
        except BackendError as exc:
            timings["generate"] = (time.perf_counter() - t2) * 1000
            yield from self._fall_back(
                standalone, None, exc, timings, t0, stream, shown.any, original=question
            )
            return
        t3 = time.perf_counter()
        trace["raw_answer"] = raw
        if stream:
            grounding = grounder.result()
        else:
            grounding = grounder.ground(raw)
            t_verify = time.perf_counter() - t3
        timings["generate"] = (t3 - t2 - (t_verify if stream else 0.0)) * 1000
        timings["verify"] = t_verify * 1000
        if judge:
            timings["judge"] = judge.seconds * 1000
            usage = judge.usage + usage if judge.usage else usage
            trace["judge"] = {"asked": judge.asked, "failed": judge.failed}
        if check:
            timings["answer_check"] = check.seconds * 1000
            usage = check.usage + usage if check.usage else usage
            trace["answer_check"] = {
                "asked": check.asked,
                "failed": check.failed,
                "min": self.settings.llm_answer_min,
            }
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
            if grounding.off_question:
                trace["gate"] = "answer_check"  # true sentences, none of them an answer
            elif not raw.strip():
                notice = f"The model ({self.model.name}) returned an empty answer."
            elif grounding.failed_verification:
                notice = "The index is out of date with the documents; run `assistant ingest`."
            elif grounding.unsupported:
                notice = "The model's answer is not supported by the documents, so it is not shown."
        elif grounding.unsupported:
            n = len(grounding.unsupported)
            notice = (
                f"{n} sentence{'s' if n > 1 else ''} of the model's answer "
                f"{'were' if n > 1 else 'was'} left out: not supported by the documents."
            )
        if trace.get("cut"):
            cut = (
                f"The model's answer was cut at the limit of {self.settings.llm_max_tokens} "
                "tokens (ASSISTANT_LLM_MAX_TOKENS)."
            )
            notice = f"{notice} {cut}" if notice else cut
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
            grounding.related if grounding.abstained else None,
        )
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
        related: list[Citation] | None = None,
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
            related=list(related or []),
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


class _Shown:
    """What a stream has shown: verified sentences as they come; refusals held back until a
    cited sentence shows (alone, a refusal gives way to the one abstention text)."""

    def __init__(self) -> None:
        self.any = False
        self._line: int | None = None
        self._held: list[tuple[int, str]] = []

    def add(self, grounder: Grounder, sentence: str, line: int) -> list[str]:
        text = grounder.add(sentence, line)
        if text is None:
            return []
        if grounder.steps[-1].get("how") == "refusal":
            self._held.append((line, text))
            return []
        out = [self._emit(ln, t) for ln, t in [*self._held, (line, text)]]
        self._held = []
        return out

    def finish(self, grounder: Grounder) -> list[str]:
        if not grounder.citations:
            return [] if self.any else [ABSTAIN_TEXT]
        out = [self._emit(ln, t) for ln, t in self._held]
        self._held = []
        return out

    def _emit(self, line: int, text: str) -> str:
        sep = "" if self._line is None else (" " if line == self._line else "\n")
        self._line, self.any = line, True
        return sep + text


class _OneTokenCheck:
    """A yes/no question the model answers with one token (P(yes) from its logprobs); its time,
    usage and count are kept, and after a failure it is asked no more."""

    name = "check"  # for the warning a failure logs
    without = "answering without it"

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.asked = self.failed = 0
        self.seconds = 0.0
        self.usage: Usage | None = None

    def _ask(self, messages: list[dict[str, str]]) -> float | None:
        judge = getattr(self.model, "judge", None)
        if judge is None or self.failed:
            return None
        t = time.perf_counter()
        try:
            result = judge(messages)
        except BackendError as exc:
            log.warning("The %s failed; %s: %s", self.name, self.without, exc.message)
            self.failed += 1
            return None
        finally:
            self.seconds += time.perf_counter() - t
        if result is None:
            return None
        self.asked += 1
        p, used = result
        self.usage = used + self.usage if used else self.usage
        return p


class _Judge(_OneTokenCheck):
    """The model's yes/no support question per claim (prompts/support.md)."""

    name, without = "support check", "grounding without it"

    def ask(self, question: str, claim: str, evidence: list[str]) -> float | None:
        return self._ask(
            render("support", evidence=" ".join(evidence), question=question, claim=claim)
        )


class _AnswerCheck(_OneTokenCheck):
    """The answer check per claim, "does the source answer this question?" (prompts/answers.md):
    a source can say what a claim says and still not answer what was asked."""

    name, without = "answer check", "answering without it"

    def __init__(self, model: ChatModel, question: str) -> None:
        super().__init__(model)
        self.question = question

    def ask(self, evidence: list[str]) -> float | None:
        return self._ask(answer_check_messages(evidence, self.question))


def answer_check_messages(evidence: list[str], question: str) -> list[dict[str, str]]:
    """prompts/answers.md for the sentence(s) a claim cites."""
    return render("answers", evidence=" ".join(evidence), question=question)
