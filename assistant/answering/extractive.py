"""Offline extractive answers: chosen source sentences (or clauses of them), never new text."""

from __future__ import annotations

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
from assistant.answering.retrieve import Evidence, HybridRetriever
from assistant.indexing.lexical import tokenize

ABSTAIN_TEXT = "The documents do not say."

_CLAUSE_CUT = re.compile(r",\s+|;\s+|\s+—\s+|—|:\s+|\s+–\s+")


NAME_PENALTY = 0.1
# A name the documents never mention ("Japan", "the Tour de France"): nothing in them is about it.
UNKNOWN_NAME_PENALTY = 0.3
# The question places the event somewhere the sentence does not ("in Moscow" / "in Minsk").
PLACE_PENALTY = 0.3
TYPE_PENALTY = 0.3
# A sentence without a number of the asked kind cannot answer "how many", "what share", "how
# much", "how old" or "which year" (nor one without speech "what did X say"), so it drops well
# below any threshold.
STRICT_TYPE_PENALTY = 1.0
# "How much did trade fall?" against "trade increased by 30 percent": the sentence answers a
# different question.
DIRECTION_PENALTY = 0.5
BRIDGE_COST = 0.1  # a two-sentence (bridged) answer is a little less certain than a direct one
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

    def __init__(self, retriever: HybridRetriever, threshold: float, max_sentences: int = 2):
        self.retriever = retriever
        self.threshold = threshold
        self.max_sentences = max_sentences

    def penalty(self, ev: Evidence, asked: Asked) -> float:
        """What the answer-type, direction, naming and novelty checks take off a sentence."""
        cut = 0.0
        if not has_type(ev.text, asked.kind, asked.question):
            cut += STRICT_TYPE_PENALTY if asked.kind in STRICT_KINDS else TYPE_PENALTY
        if goes_the_other_way(asked.direction, ev.text):
            cut += DIRECTION_PENALTY
        # "the name of the brewery" from a sentence without a brewery
        if asked.thing and not asked.thing <= self.retriever.context_tokens(ev.sent):
            cut += TYPE_PENALTY
        if not self.retriever.sentence_tokens(ev.sent) - asked.q_tokens:
            cut += 0.25  # the sentence says nothing the question does not
        missing = self.missing_names(ev, asked.names)
        cut += NAME_PENALTY * min(len(missing), 2)
        if missing and self._placed_elsewhere(asked, ev.text, missing):
            cut += PLACE_PENALTY
        return cut

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

    def pick(
        self, question: str, q_tokens: list[str], evidence: list[Evidence]
    ) -> tuple[list[Pick], float]:
        """The spans to cite, and the confidence of the best one (compared to the threshold).

        Sentences are ranked by `Evidence.score` and the answer's confidence is the chosen
        sentence's `Evidence.support`, each less the same penalties (see retrieve.py).
        """
        if not evidence:
            return [], 0.0
        asked = Asked.read(question, q_tokens)
        kind = asked.kind
        # a name the documents never mention lowers every sentence alike
        unknown = UNKNOWN_NAME_PENALTY * min(len(self.unknown_names(question)), 2)
        ranked = []
        for e in evidence:
            cut = self.penalty(e, asked) + unknown
            ranked.append((e.score - cut, e.support - cut, e))
        ranked.sort(key=lambda p: -p[0])
        best_score, best_conf, best = ranked[0]
        bridged = self._bridged(asked, q_tokens, evidence)
        if bridged is not None and bridged[0] - unknown > best_score:
            _, conf, first, second = bridged
            conf -= unknown
            if conf < self.threshold:
                return [], conf
            pair = sorted([first, second], key=lambda e: (e.source, e.start))
            return [self._trim(ev, conf, question, q_tokens, None) for ev in pair], conf
        if best_conf < self.threshold:
            return [], best_conf
        chosen = [(best_conf, best)]
        covered = set(self.retriever.sentence_tokens(best.sent))
        base_cov = self.retriever.coverage(q_tokens, covered)
        for score, conf, ev in ranked[1:]:
            if len(chosen) >= self.max_sentences or score < best_score - 0.1:
                break
            toks = self.retriever.sentence_tokens(ev.sent)
            gain = self.retriever.coverage(q_tokens, covered | toks) - base_cov
            if gain >= 0.15 and conf >= self.threshold:
                chosen.append((conf, ev))
                covered |= toks
                base_cov += gain
        chosen.sort(key=lambda p: (p[1].source, p[1].start))
        return [self._trim(ev, conf, question, q_tokens, kind) for conf, ev in chosen], best_conf

    def _bridged(
        self, asked: Asked, q_tokens: list[str], evidence: list[Evidence]
    ) -> tuple[float, float, Evidence, Evidence] | None:
        """Two-sentence answers: the sentence that matches the question best names someone or
        something, and another sentence about that name holds the asked-for kind of answer.

        Returns the pair's ranking score and confidence, and the two sentences.

        "What is the full name of the president Li met on Thursday?" — "On Thursday, Gen. Li sat
        down with Mr. Lukashenko" + "Belarusian President Aleksandr Lukashenko said…".
        """
        question, kind = asked.question, asked.kind
        if kind not in BRIDGE_KINDS:
            return None
        top = max(evidence, key=lambda e: e.score)
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
        cut = NAME_PENALTY * min(len(self.missing_names(top, asked.names)), 2) + BRIDGE_COST
        return top.score - cut, top.support - cut, top, second

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
        if kind is None or len(ev.text) <= 200:
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
