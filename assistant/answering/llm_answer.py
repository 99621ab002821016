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

from assistant.answering.citations import SourceReader
from assistant.answering.extractive import ABSTAIN_TEXT
from assistant.answering.grounding import Grounder
from assistant.answering.markers import MarkerFilter
from assistant.answering.sources import build_blocks, format_history, format_sources
from assistant.errors import BackendError
from assistant.llm.client import ChatModel, Usage
from assistant.llm.prompts import render
from assistant.types import Answer, Citation

log = logging.getLogger(__name__)


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
