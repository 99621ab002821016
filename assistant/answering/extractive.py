"""Offline extractive answers: chosen source sentences, never new text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.answering.answer_types import (
    STRICT_KINDS,
    expected_type,
    has_type,
    person_mentions,
)
from assistant.answering.answerability import (
    Candidate,
    Decision,
    Weights,
    confidence_of,
    decide,
    load_weights,
)
from assistant.answering.retrieve import Evidence, HybridRetriever
from assistant.indexing.lexical import tokenize

ABSTAIN_TEXT = "The documents do not say."

# A second sentence is quoted when its own confidence is within this of the first one's.
SECOND_MARGIN = 0.1
BRIDGE_KINDS = {"person", "person_full", "entity", "date", "year", "time"}  # names and dates link
BRIDGE_WINDOW = 200  # sentences either side searched for the bridged sentence


def question_name_words(question: str) -> list[str]:
    """The capitalised words inside a question (not its first word)."""
    return [
        m.group()
        for m in re.finditer(r"(?<![\w’'])[A-Z][\w’'\-]*", question.strip())
        if m.start() > 0
    ]


def question_names(question: str) -> list[str]:
    """Stemmed tokens of the capitalised words inside a question (not its first word)."""
    out = [t for w in question_name_words(question) for t in tokenize(w) if len(t) > 1]
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Asked:
    """What the checks read from a question, worked out once and used for every sentence."""

    question: str
    q_tokens: frozenset[str]  # its content tokens, without the answer frame
    kind: str | None  # the kind of answer (answer_types.expected_type)

    @classmethod
    def read(cls, question: str, q_tokens: list[str]) -> Asked:
        return cls(question, frozenset(q_tokens), expected_type(question))


@dataclass
class Pick:
    """A chosen sentence, and the confidence it was chosen with."""

    evidence: Evidence
    start: int
    end: int
    text: str
    final: float


class ExtractiveAnswerer:
    """Ranks the candidate sentences, asks the answerability stage, quotes the chosen ones.

    The signals kept are those that earned their place on the eval sets' test splits, measured
    switched off (docs/evaluation.md, "Signals switched off"); the others were deleted.
    """

    def __init__(
        self,
        retriever: HybridRetriever,
        threshold: float,
        max_sentences: int = 2,
        weights: Weights | None = None,
    ):
        self.retriever = retriever
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.weights = weights or load_weights()
        self.bridging = True  # two-sentence answers (evals/ablate.py switches them off)
        self.strict_types = True  # strict answer kinds: a sentence without one is never first

    def signals(self, ev: Evidence, asked: Asked, idf: dict[str, float]) -> dict[str, float]:
        """What the similarity and answer-type checks read from one sentence (each a number;
        answerability.py weighs them). `idf`: the question's words and their IDF."""
        typed = has_type(ev.text, asked.kind, asked.question)
        strict = asked.kind in STRICT_KINDS
        context = self.retriever.context_tokens(ev.sent)
        lacking = [w for t, w in idf.items() if t not in context]
        return {
            "cosine": ev.dense,
            "type_missing_strict": float(not typed and strict),
            "type_missing": float(not typed and not strict),
            # the question's most specific word that the sentence (and the one before) lacks:
            # "the General Manager's salary" / "The General Manager since 2021 has been ..."
            "focus_missing": max(lacking, default=0.0) / max(max(idf.values(), default=1.0), 1e-9),
        }

    def candidates(
        self, question: str, q_tokens: list[str], evidence: list[Evidence]
    ) -> list[Candidate]:
        """Every sentence (and a bridged pair, when there is one) with its signals, ranked by the
        fitted ranking model, best first."""
        if not evidence:
            return []
        asked = Asked.read(question, q_tokens)
        idf = {t: self.retriever.lexical.idf(t) for t in asked.q_tokens}
        out = []
        for e in evidence:
            sig = self.signals(e, asked, idf)
            out.append(Candidate(e, sig, self.weights.rank.logit(sig)))
        top = max(out, key=lambda c: c.rank)
        bridged = self._bridged(asked, q_tokens, evidence, top.evidence) if self.bridging else None
        if bridged is not None:
            first, second = bridged
            sig = {**top.signals, "type_missing": 0.0, "type_missing_strict": 0.0, "bridged": 1.0}
            out.append(Candidate(first, sig, self.weights.rank.logit(sig), (second,)))
        # A quote without a number cannot answer "how many" (nor one without speech "what did X
        # say"): such sentences go after every other, whatever their score.
        strict = self.strict_types
        out.sort(key=lambda c: (strict and c.signals["type_missing_strict"] > 0, -c.rank))
        return out

    def decide(self, question: str, ranked: list[Candidate]) -> Decision:
        """The answerability stage's verdict on the ranked candidates (extractive mode)."""
        return decide(question, ranked, mode="extractive", threshold=self.threshold,
                      weights=self.weights)

    def answer(
        self, question: str, q_tokens: list[str], evidence: list[Evidence]
    ) -> tuple[list[Pick], Decision, list[Candidate]]:
        """The sentences to cite (none when the answerability stage abstains), the decision, and
        the ranked candidates (the closest passages to show when abstaining)."""
        ranked = self.candidates(question, q_tokens, evidence)
        picks, decision = self.choose(question, q_tokens, ranked)
        return picks, decision, ranked

    def choose(
        self, question: str, q_tokens: list[str], ranked: list[Candidate]
    ) -> tuple[list[Pick], Decision]:
        """The sentences to cite from already ranked candidates, and the decision."""
        decision = self.decide(question, ranked)
        if not decision.answer:
            return [], decision
        best = ranked[0]
        conf = decision.confidence
        if best.extra:
            pair = sorted([best.evidence, *best.extra], key=lambda e: (e.source, e.start))
            return [_whole(ev, conf) for ev in pair], decision
        chosen = [(conf, best.evidence)]
        covered = set(self.retriever.sentence_tokens(best.evidence.sent))
        base_cov = self.retriever.coverage(q_tokens, covered)
        for cand in ranked[1:]:
            if len(chosen) >= self.max_sentences:
                break
            if cand.extra:
                continue
            own = confidence_of(cand, self.weights)
            if own < max(self.threshold, conf - SECOND_MARGIN):
                continue
            toks = self.retriever.sentence_tokens(cand.evidence.sent)
            gain = self.retriever.coverage(q_tokens, covered | toks) - base_cov
            if gain >= 0.15:  # it covers question words the first does not
                chosen.append((own, cand.evidence))
                covered |= toks
                base_cov += gain
        chosen.sort(key=lambda p: (p[1].source, p[1].start))
        return [_whole(ev, c) for c, ev in chosen], decision

    def _bridged(
        self, asked: Asked, q_tokens: list[str], evidence: list[Evidence], top: Evidence
    ) -> tuple[Evidence, Evidence] | None:
        """Two-sentence answers: the sentence that matches the question best names someone or
        something, and another sentence about that name holds the asked-for kind of answer.

        Returns the two sentences (`top` is the best-ranked sentence).

        "What is the full name of the president Li met on Thursday?" — "On Thursday, Gen. Li sat
        down with Mr. Lukashenko" + "Belarusian President Aleksandr Lukashenko said…".
        """
        question, kind = asked.question, asked.kind
        if kind not in BRIDGE_KINDS:
            return None
        if has_type(top.text, kind, question):
            return None
        person = kind in ("person", "person_full")
        if person:
            # the link is someone the top sentence names ("sat down with Mr. Lukashenko"), not a
            # name used as a modifier ("the Biden administration")
            links = {t for plain in person_mentions(top.text) for t in tokenize(" ".join(plain))}
            links -= asked.q_tokens
        else:
            links = {t for t in question_names(" " + top.text) if t not in asked.q_tokens}
        if not links:
            return None
        side = self.retriever.side
        doc = side.sent_doc[top.sent]
        lo = max(0, top.sent - BRIDGE_WINDOW)
        hi = min(len(side.sent_text), top.sent + BRIDGE_WINDOW + 1)
        best: tuple[tuple[int, float, int], int] | None = None
        for s in range(lo, hi):
            if s == top.sent or side.sent_doc[s] != doc:
                continue
            text = side.sent_text[s]
            toks = self.retriever.sentence_tokens(s)
            shared = len(links & toks)
            if not shared or not has_type(text, kind, question):
                continue
            if person and not self._names_link(text, links, question, kind):
                continue
            key = (shared, self.retriever.coverage(q_tokens, toks), -abs(s - top.sent))
            if best is None or key > best[0]:
                best = (key, s)
        if best is None:
            return None
        s = best[1]
        second = Evidence(
            s,
            top.source,
            int(side.sent_start[s]),
            int(side.sent_end[s]),
            side.sent_text[s],
            top.score,
            top.support,
            0.0,
            0.0,
            top.chunk_rank,
        )
        return top, second

    @staticmethod
    def _names_link(text: str, links: set[str], question: str, kind: str) -> bool:
        """Whether a person `text` mentions is one of the `links` and says more of the name
        ("Mr. Lukashenko" → "Belarusian President Aleksandr Lukashenko")."""
        asked = set(tokenize(question))
        for plain in person_mentions(text):
            toks = set(tokenize(" ".join(plain)))
            if toks & links and toks - asked and (kind != "person_full" or len(plain) >= 2):
                return True
        return False


def _whole(ev: Evidence, confidence: float) -> Pick:
    return Pick(ev, ev.start, ev.end, ev.text, confidence)
