"""Offline extractive answers: chosen source sentences (or clauses of them), never new text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lexical import STOPWORDS, tokenize, words
from .retrieve import Evidence, HybridRetriever

ABSTAIN_TEXT = "The documents do not say."

_NUM_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|dozen|"
    r"half|quarter|percent|per cent|first|second|third|fourth|fifth|single|double|triple"
)
_MONTHS = (
    r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|"
    r"oct(ober)?|nov(ember)?|dec(ember)?"
)
_TYPES = {
    "number": re.compile(rf"\d|\b({_NUM_WORDS})\b", re.I),
    "time": re.compile(
        rf"\b({_MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|spring|"
        r"summer|fall|autumn|winter|yesterday|today|tonight|week|month|year|decade|century|"
        r"ago|earlier|later|recent(ly)?|since|until|morning|evening|night)\b|\b(1[0-9]|20)\d\d\b"
        r"|\d{1,2}(st|nd|rd|th)\b",
        re.I,
    ),
    "money": re.compile(
        r"[$€£¥]|\b(dollars?|usd|yuan|euros?|pounds? sterling|rubles?|"
        r"roubles?|cents?)\b",
        re.I,
    ),
}
_ROLE = (
    r"person|man|woman|official|officials|minister|leader|analyst|president|spokesman|"
    r"spokesperson|curator|mayor|author|poet|engineer|founder|chief|head|owner|architect|"
    r"scientist|writer|counterpart|director|member|members"
)
_QUESTION_TYPES = [
    (
        "money",
        re.compile(
            r"\b(how much money|in dollars|dollar value|what did .* cost|"
            r"how much did .* cost|price|budget|worth in)\b",
            re.I,
        ),
    ),
    (
        "number",
        re.compile(
            r"\bhow (many|much|long|old|far|big|large|tall|high|often|wide|deep)\b|"
            r"\bwhat (percentage|percent|share|number|proportion|fraction|"
            r"population|size|length|area|distance|age)\b|\bby how much\b|"
            r"\bpopulation\b",
            re.I,
        ),
    ),
    (
        "time",
        re.compile(
            r"\bwhen\b|\b(what|which) (year|month|day|date|time|season|decade|"
            r"century)\b|\bhow long ago\b|\bin what year\b|\bon what date\b",
            re.I,
        ),
    ),
    (
        "person",
        re.compile(
            rf"\bwho(m|se)?\b|\b(which|what) ({_ROLE})\b|\bfull name\b|"
            rf"\bname of the ({_ROLE})\b",
            re.I,
        ),
    ),
    (
        "entity",
        re.compile(
            r"\bwhere\b|\bwhich [a-z]+\b|\bwhat is the name\b|\bwhat (country|city|"
            r"nation|town|agency|outlet|newspaper|organi[sz]ation|company)\b",
            re.I,
        ),
    ),
]
_TITLE = (
    r"(?:Mr|Mrs|Ms|Dr|Prof|Gen|Col|Lt|Capt|Sgt|Adm|Gov|Sen|Rep|Rev|Sir|Dame|Lord|Lady|"
    r"St|President|Minister|King|Queen|Prince|Princess|Chancellor|Mayor)\.?"
)
_NAME_WORD = r"[A-Z][\w’'\-]+"
_PERSON = re.compile(
    rf"(?<![\w’'])(?:{_TITLE}\s+(?:[A-Z]\.\s+)*{_NAME_WORD}"
    rf"|(?:[A-Z]\.\s+)+{_NAME_WORD}"
    rf"|{_NAME_WORD}(?:\s+{_NAME_WORD})+)"
)
_TITLE_WORDS = set(words(_TITLE.replace("(?:", "").replace(r")\.?", "").replace("|", " ")))
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
    asked = set(words(question))
    if kind == "person":
        for m in _PERSON.finditer(text):
            before = text[max(0, m.start() - 4) : m.start()].lower()
            if before.endswith("the ") or before.endswith("a "):
                continue  # "the United States", "a Chinese spy balloon"
            names = [w for w in words(m.group()) if w not in STOPWORDS]
            titled = bool(set(names) & _TITLE_WORDS) or re.match(r"[A-Z]\.", m.group())
            if (titled or len(names) >= 2) and set(names) - asked - _TITLE_WORDS:
                return True
        return False
    if kind == "entity":
        for m in re.finditer(r"(?<![\w’'])([A-Z][\w’'-]+)", text):
            if m.start() == 0:
                continue
            if not set(words(m.group(1))) <= asked:
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

    def adjusted(self, ev: Evidence, question: str, q_tokens: list[str], kind: str | None) -> float:
        """Sentence score after answer-type and novelty checks."""
        score = ev.score
        if not has_type(ev.text, kind, question):
            score -= 0.3
        if not novel_tokens(ev.text, q_tokens):
            score -= 0.25
        return score

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
