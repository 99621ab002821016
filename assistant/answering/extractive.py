"""Offline extractive answers: chosen source sentences (or clauses of them), never new text."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from assistant.answering.answer_types import (
    STRICT_KINDS,
    asked_direction,
    expected_type,
    goes_the_other_way,
    has_type,
    named_thing,
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

_ENDS = re.compile(r"[.!?…:;][\"”’')\]]*\s*$")  # a sentence's final punctuation
_CLAUSE_CUT = re.compile(r",\s+|;\s+|\s+—\s+|—|:\s+|\s+–\s+")


# A second sentence is quoted when its own confidence is within this of the first one's.
SECOND_MARGIN = 0.1
BRIDGE_KINDS = {"person", "person_full", "entity", "date", "year", "time"}  # names and dates link
BRIDGE_WINDOW = 200  # sentences either side searched for the bridged sentence


# "arrive in Moscow" against "arriving in Minsk": the same preposition before another name.
_PLACED = re.compile(r"\b(?i:in|at|to|from|into|near|inside|outside)\s+([A-Z][\w’'\-]+)")


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
    names: list[str]  # question_names
    thing: frozenset[str] | None  # what "the name of the X" asks to name (not for people)
    direction: frozenset[str] | None  # the rise or fall words it asks about
    places: list[tuple[str, frozenset[str]]]  # "in Moscow": ("in", {"moscow"})

    @classmethod
    def read(cls, question: str, q_tokens: list[str]) -> Asked:
        kind = expected_type(question)
        # Not for people: a role is often paraphrased ("his counterpart" / "Defense Minister
        # Viktor Khrenin"), and the person check already asks for a name.
        thing = named_thing(question) if kind not in ("person", "person_full") else None
        places = [
            (m.group().split(None, 1)[0].lower(), frozenset(tokenize(m.group(1))))
            for m in _PLACED.finditer(question)
        ]
        return cls(
            question,
            frozenset(q_tokens),
            kind,
            question_names(question),
            frozenset(tokenize(thing)) if thing else None,
            asked_direction(question),
            places,
        )


@dataclass
class Pick:
    """A chosen span of a sentence, and the confidence it was chosen with."""

    evidence: Evidence
    start: int
    end: int
    text: str
    final: float


class ExtractiveAnswerer:
    """Chooses the supporting sentence(s) and trims them where a clause clearly answers."""

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
        self.trimming = True  # clauses cut from long sentences
        self.strict_types = True  # strict answer kinds: a sentence without one is never first

    def signals(
        self, ev: Evidence, asked: Asked, unknown: int, idf: dict[str, float]
    ) -> dict[str, float]:
        """What the similarity, answer-type, direction, naming and novelty checks read from one
        sentence (each a number; answerability.py weighs them). `idf`: the question's words."""
        typed = has_type(ev.text, asked.kind, asked.question)
        context = self.retriever.context_tokens(ev.sent)
        lacking = [w for t, w in idf.items() if t not in context]
        strict = asked.kind in STRICT_KINDS
        missing = self.missing_names(ev, asked.names)
        toks = self.retriever.sentence_tokens(ev.sent)
        return {
            "cosine": ev.dense,
            "coverage": ev.lexical,
            "type_missing_strict": float(not typed and strict),
            "type_missing": float(not typed and not strict),
            "other_direction": float(goes_the_other_way(asked.direction, ev.text)),
            # "the name of the brewery" from a sentence without a brewery
            "thing_missing": float(
                bool(asked.thing) and not asked.thing <= self.retriever.context_tokens(ev.sent)
            ),
            "nothing_new": float(not toks - asked.q_tokens),  # says nothing the question does not
            "names_missing": float(min(len(missing), 2)),
            "placed_elsewhere": float(bool(missing) and self._placed_elsewhere(asked, ev.text,
                                                                              missing)),
            "unknown_names": float(unknown),
            # the question's most specific word that the sentence (and the one before) lacks:
            # "the General Manager's salary" / "The General Manager since 2021 has been ..."
            "focus_missing": max(lacking, default=0.0) / max(max(idf.values(), default=1.0), 1e-9),
            "fragment": float(not _ENDS.search(ev.text)),  # a title line, a table cell
            "chunk_rank": math.log1p(ev.chunk_rank),
        }

    def unknown_names(self, question: str) -> list[str]:
        """Names in the question that no sentence of the documents mentions.

        An acronym counts as mentioned when its dotted form is ("US" / "U.S.").
        """
        lexical = self.retriever.lexical
        names = question_name_words(question)
        if len(names) * 2 > len(question.split()):
            return []  # a Question Written In Title Case: its capitals do not mark names
        out = []
        for word in names:
            toks = [t for t in tokenize(word) if len(t) > 1]
            if word.isupper() and 1 < len(word) <= 5 and lexical.mentions(word[0].lower()):
                continue
            out.extend(t for t in toks if not lexical.mentions(t))
        return list(dict.fromkeys(out))

    @staticmethod
    def _placed_elsewhere(asked: Asked, text: str, missing: list[str]) -> bool:
        """The question puts its event "in/at/to/from X", X is missing from the sentence, and
        the sentence uses the same preposition before a name the question does not have."""
        preps = {prep for prep, name in asked.places if name & set(missing)}
        if not preps:
            return False
        question_tokens = set(tokenize(asked.question))
        for n in _PLACED.finditer(text):
            if n.group().split(None, 1)[0].lower() in preps and not (
                set(tokenize(n.group(1))) <= question_tokens
            ):
                return True
        return False

    def missing_names(self, ev: Evidence, names: list[str]) -> list[str]:
        """The question's `names` (question_names) that neither the sentence nor the one before
        it mentions.

        "When will Li visit Washington?" is not answered by a sentence about Li in Minsk.
        """
        if not names:
            return []
        have = self.retriever.context_tokens(ev.sent)
        # Demonyms and inflections share a prefix: Russia/Russian, China/Chinese, Belarus/-ian.
        prefixes = {t[:4] for t in have if len(t) >= 4}
        return [n for n in names if n not in have and not (len(n) >= 4 and n[:4] in prefixes)]

    def candidates(
        self, question: str, q_tokens: list[str], evidence: list[Evidence]
    ) -> list[Candidate]:
        """Every sentence (and a bridged pair, when there is one) with its signals, ranked by the
        fitted ranking model, best first."""
        if not evidence:
            return []
        asked = Asked.read(question, q_tokens)
        unknown = min(len(self.unknown_names(question)), 2)  # lowers every sentence alike
        idf = {t: self.retriever.lexical.idf(t) for t in asked.q_tokens}
        out = []
        for e in evidence:
            sig = self.signals(e, asked, unknown, idf)
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

    def pick(
        self, question: str, q_tokens: list[str], evidence: list[Evidence]
    ) -> tuple[list[Pick], float]:
        """The spans to cite (none: abstain), and the answer's confidence."""
        picks, decision, _ = self.answer(question, q_tokens, evidence)
        return picks, decision.confidence

    def answer(
        self, question: str, q_tokens: list[str], evidence: list[Evidence]
    ) -> tuple[list[Pick], Decision, list[Candidate]]:
        """The spans to cite (none when the answerability stage abstains), the decision, and the
        ranked candidates (the closest passages to show when abstaining)."""
        ranked = self.candidates(question, q_tokens, evidence)
        decision = self.decide(question, ranked)
        if not decision.answer:
            return [], decision, ranked
        best = ranked[0]
        conf = decision.confidence
        kind = Asked.read(question, q_tokens).kind
        if best.extra:
            pair = sorted([best.evidence, *best.extra], key=lambda e: (e.source, e.start))
            return [self._trim(ev, conf, question, q_tokens, None) for ev in pair], decision, ranked
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
            if gain >= 0.15:
                chosen.append((own, cand.evidence))
                covered |= toks
                base_cov += gain
        chosen.sort(key=lambda p: (p[1].source, p[1].start))
        picks = [self._trim(ev, c, question, q_tokens, kind) for c, ev in chosen]
        return picks, decision, ranked

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

    def _trim(
        self, ev: Evidence, score: float, question: str, q_tokens: list[str], kind: str | None
    ) -> Pick:
        """Drop leading or trailing clauses that hold neither a question word nor the answer type.

        Only for questions with a clear answer type (number, date, person, ...), and only from
        long sentences: a clause that may carry the answer is never cut.
        """
        full = Pick(ev, ev.start, ev.end, ev.text, score)
        if kind is None or len(ev.text) <= 200 or not self.trimming:
            return full
        qset = set(q_tokens)
        cuts = [0] + [m.end() for m in _CLAUSE_CUT.finditer(ev.text)] + [len(ev.text)]
        clauses = [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1)]

        def useful(a: int, b: int) -> bool:
            piece = ev.text[a:b]
            return bool(set(tokenize(piece)) & qset) or has_type(piece, kind, question)

        keep = [i for i, (a, b) in enumerate(clauses) if useful(a, b)]
        if not keep:
            return full
        a, b = clauses[keep[0]][0], clauses[keep[-1]][1]
        piece = ev.text[a:b].rstrip(" ,;:—–")
        b = a + len(piece)
        if (b - a) >= len(ev.text) or len(piece.split()) < 6 or not has_type(piece, kind, question):
            return full
        return Pick(ev, ev.start + a, ev.start + b, piece, score)
