"""Offline extractive answers: chosen source sentences (or clauses of them), never new text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lexical import tokenize, words
from .retrieve import Evidence, HybridRetriever

ABSTAIN_TEXT = "The documents do not say."

_NUM_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
              r"forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|dozen|"
              r"half|quarter|percent|per cent|first|second|third|fourth|fifth|single|double|triple")
_MONTHS = (r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|"
           r"oct(ober)?|nov(ember)?|dec(ember)?")
_TYPES = {
    "number": re.compile(rf"\d|\b({_NUM_WORDS})\b", re.I),
    "time": re.compile(
        rf"\b({_MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|spring|"
        r"summer|fall|autumn|winter|yesterday|today|tonight|week|month|year|decade|century|"
        r"ago|earlier|later|recent(ly)?|since|until|morning|evening|night)\b|\b(1[0-9]|20)\d\d\b"
        r"|\d{1,2}(st|nd|rd|th)\b",
        re.I),
    "money": re.compile(r"[$€£¥]|\b(dollars?|usd|yuan|euros?|pounds? sterling|rubles?|"
                        r"roubles?|cents?)\b", re.I),
}
_QUESTION_TYPES = [
    ("money", re.compile(r"\b(how much money|in dollars|dollar value|what did .* cost|"
                         r"how much did .* cost|price|budget|worth in)\b", re.I)),
    ("number", re.compile(r"\bhow (many|much|long|old|far|big|large|tall|high|often)\b|"
                          r"\bwhat (percentage|percent|share|number|proportion|fraction)\b|"
                          r"\bby how much\b", re.I)),
    ("time", re.compile(r"\bwhen\b|\b(what|which) (year|month|day|date|time|season|decade|"
                        r"century)\b|\bhow long ago\b|\bin what year\b", re.I)),
    ("entity", re.compile(r"\bwho(m|se)?\b|\bwhere\b|\bwhich (country|city|nation|person|"
                          r"company|agency|organi[sz]ation|town|river|official)\b", re.I)),
]
_CLAUSE_CUT = re.compile(r",\s+|;\s+|\s+—\s+|—|:\s+|\s+–\s+")


def expected_type(question: str) -> str | None:
    """The kind of answer a question asks for, if its wording makes that clear."""
    for name, pattern in _QUESTION_TYPES:
        if pattern.search(question):
            return name
    return None


def has_type(text: str, kind: str | None, question: str) -> bool:
    if kind is None:
        return True
    if kind == "entity":
        asked = {w for w in words(question)}
        for m in re.finditer(r"(?<![\w’'])([A-Z][\w’'-]+)", text):
            if m.start() == 0:
                continue
            if m.group(1).lower().rstrip("’'s") not in asked and m.group(1).lower() not in asked:
                return True
        return False
    return bool(_TYPES[kind].search(text))


def novel_tokens(text: str, q_tokens: list[str]) -> set[str]:
    return set(tokenize(text)) - set(q_tokens)


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

    def adjusted(self, ev: Evidence, question: str, q_tokens: list[str], kind: str | None
                 ) -> float:
        """Sentence score after answer-type and novelty checks."""
        score = ev.score
        if not has_type(ev.text, kind, question):
            score -= 0.3 if kind == "money" else 0.12
        if not novel_tokens(ev.text, q_tokens):
            score -= 0.25
        return score

    def pick(self, question: str, q_tokens: list[str], evidence: list[Evidence]
             ) -> tuple[list[Pick], float]:
        """The spans to cite, and the confidence of the best one (compared to the threshold)."""
        if not evidence:
            return [], 0.0
        kind = expected_type(question)
        ranked = sorted(((self.adjusted(e, question, q_tokens, kind), e) for e in evidence),
                        key=lambda p: -p[0])
        best_score, best = ranked[0]
        if best_score < self.threshold:
            return [], best_score
        chosen = [(best_score, best)]
        covered = set(tokenize(best.text))
        base_cov = self.retriever.coverage(q_tokens, covered)
        for score, ev in ranked[1:]:
            if len(chosen) >= self.max_sentences or score < best_score - 0.1:
                break
            toks = set(tokenize(ev.text))
            gain = self.retriever.coverage(q_tokens, covered | toks) - base_cov
            if gain >= 0.15 and score >= self.threshold:
                chosen.append((score, ev))
                covered |= toks
                base_cov += gain
        chosen.sort(key=lambda p: (p[1].source, p[1].start))
        return [self._trim(ev, score, question, q_tokens, kind) for score, ev in chosen], best_score

    def _trim(self, ev: Evidence, score: float, question: str, q_tokens: list[str],
              kind: str | None) -> Pick:
        """The shortest run of clauses that keeps every matched question word and the answer."""
        full = Pick(ev, ev.start, ev.end, ev.text, score)
        if len(ev.text) <= 200:
            return full
        qset = set(q_tokens)
        need = set(tokenize(ev.text)) & qset
        cuts = [0] + [m.end() for m in _CLAUSE_CUT.finditer(ev.text)] + [len(ev.text)]
        best: tuple[int, int] | None = None
        for i in range(len(cuts) - 1):
            for j in range(i + 1, len(cuts)):
                a, b = cuts[i], cuts[j]
                piece = ev.text[a:b].rstrip(" ,;:—–")
                if (b - a) >= len(ev.text) or (best and len(piece) >= best[1] - best[0]):
                    continue
                toks = set(tokenize(piece))
                if need - toks or len(piece.split()) < 5 or len(toks - qset) < 3:
                    continue
                if not has_type(piece, kind, question):
                    continue
                best = (a, a + len(piece))
        if best is None:
            return full
        a, b = best
        while a < b and ev.text[a].isspace():
            a += 1
        return Pick(ev, ev.start + a, ev.start + b, ev.text[a:b], score)


