"""Offline extractive answers: chosen source sentences (or clauses of them), never new text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .answer_types import NUMERIC_KINDS, expected_type, has_type
from .lexical import tokenize
from .retrieve import Evidence, HybridRetriever

ABSTAIN_TEXT = "The documents do not say."

_CLAUSE_CUT = re.compile(r",\s+|;\s+|\s+—\s+|—|:\s+|\s+–\s+")


NAME_PENALTY = 0.1
TYPE_PENALTY = 0.3
# A sentence without a number of the asked kind cannot answer "how many", "what share", "how
# much", "how old" or "which year", so it drops well below any threshold.
NO_NUMBER_PENALTY = 1.0
BRIDGE_COST = 0.1  # a two-sentence (bridged) answer is a little less certain than a direct one
BRIDGE_KINDS = {"person", "person_full", "entity", "date", "year", "time"}  # names and dates link
BRIDGE_WINDOW = 200  # sentences either side searched for the bridged sentence


def question_names(question: str) -> list[str]:
    """Stemmed tokens of the capitalised words inside a question (not its first word)."""
    body = question.strip()
    out = []
    for m in re.finditer(r"(?<![\w’'])[A-Z][\w’'\-]*", body):
        if m.start() == 0:
            continue
        out.extend(t for t in tokenize(m.group()) if len(t) > 1)
    return list(dict.fromkeys(out))


@dataclass
class Pick:
    """A chosen span of a sentence."""

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

    def adjusted(self, ev: Evidence, question: str, q_tokens: list[str], kind: str | None) -> float:
        """Sentence score after answer-type and novelty checks."""
        score = ev.score
        if not has_type(ev.text, kind, question):
            score -= NO_NUMBER_PENALTY if kind in NUMERIC_KINDS else TYPE_PENALTY
        if not self.retriever.sentence_tokens(ev.sent) - set(q_tokens):
            score -= 0.25  # the sentence says nothing the question does not
        missing = self.missing_names(ev, question)
        score -= NAME_PENALTY * min(len(missing), 2)
        return score

    def missing_names(self, ev: Evidence, question: str) -> list[str]:
        """Names in the question that neither the sentence nor the one before it mentions.

        "When will Li visit Washington?" is not answered by a sentence about Li in Minsk.
        """
        names = question_names(question)
        if not names:
            return []
        have = self.retriever.context_tokens(ev.sent)
        # Demonyms and inflections share a prefix: Russia/Russian, China/Chinese, Belarus/-ian.
        prefixes = {t[:4] for t in have if len(t) >= 4}
        return [n for n in names if n not in have and not (len(n) >= 4 and n[:4] in prefixes)]

    def pick(
        self, question: str, q_tokens: list[str], evidence: list[Evidence]
    ) -> tuple[list[Pick], float]:
        """The spans to cite, and the confidence of the best one (compared to the threshold)."""
        if not evidence:
            return [], 0.0
        kind = expected_type(question)
        ranked = sorted(
            ((self.adjusted(e, question, q_tokens, kind), e) for e in evidence), key=lambda p: -p[0]
        )
        best_score, best = ranked[0]
        bridged = self._bridged(question, q_tokens, kind, evidence)
        if bridged is not None and bridged[0] > best_score:
            score, first, second = bridged
            if score < self.threshold:
                return [], score
            pair = sorted(
                [(score, first), (score, second)], key=lambda p: (p[1].source, p[1].start)
            )
            return [self._trim(ev, sc, question, q_tokens, None) for sc, ev in pair], score
        if best_score < self.threshold:
            return [], best_score
        chosen = [(best_score, best)]
        covered = set(self.retriever.sentence_tokens(best.sent))
        base_cov = self.retriever.coverage(q_tokens, covered)
        for score, ev in ranked[1:]:
            if len(chosen) >= self.max_sentences or score < best_score - 0.1:
                break
            toks = self.retriever.sentence_tokens(ev.sent)
            gain = self.retriever.coverage(q_tokens, covered | toks) - base_cov
            if gain >= 0.15 and score >= self.threshold:
                chosen.append((score, ev))
                covered |= toks
                base_cov += gain
        chosen.sort(key=lambda p: (p[1].source, p[1].start))
        return [self._trim(ev, score, question, q_tokens, kind) for score, ev in chosen], best_score

    def _bridged(
        self, question: str, q_tokens: list[str], kind: str | None, evidence: list[Evidence]
    ) -> tuple[float, Evidence, Evidence] | None:
        """Two-sentence answers: the sentence that matches the question best names someone or
        something, and another sentence about that name holds the asked-for kind of answer.

        "What is the full name of the president Li met on Thursday?" — "On Thursday, Gen. Li sat
        down with Mr. Lukashenko" + "Belarusian President Aleksandr Lukashenko said…".
        """
        if kind not in BRIDGE_KINDS:
            return None
        top = max(evidence, key=lambda e: e.score)
        if has_type(top.text, kind, question):
            return None
        asked = set(q_tokens)
        links = {t for t in question_names(" " + top.text) if t not in asked}
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
            0.0,
            0.0,
            top.chunk_rank,
        )
        penalty = NAME_PENALTY * min(len(self.missing_names(top, question)), 2)
        return top.score - penalty - BRIDGE_COST, top, second

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
