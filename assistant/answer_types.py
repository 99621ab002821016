"""What kind of answer a question asks for, and whether a passage contains one.

Classic question typing: "how old" wants an age, "on what date" a date, "who" a name. A sentence
that lacks the asked-for kind of answer is a poor answer even when it shares the question's words.
"""

from __future__ import annotations

import re

from .lexical import STOPWORDS, words

_NUM = (
    r"\d[\d,.]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundred|thousand|million|billion|dozen|several|a few|half)\b"
)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_TIME_UNIT = r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centur(?:y|ies))"
_YEAR = r"\b(?:1[0-9]|20)\d\d(?:s)?\b"
_UNIT = (
    r"(?:km|kilomet(?:er|re)s?|m|met(?:er|re)s?|mi|miles?|ft|feet|foot|cm|mm|inch(?:es)?|"
    r"hectares?|ha|acres?|sq|square|tonnes?|tons?|kg|kilograms?|lbs?|km2|yards?)"
)
_TITLES = (
    r"Mr|Mrs|Ms|Dr|Prof|Gen|Col|Lt|Capt|Sgt|Adm|Gov|Sen|Rep|Rev|Sir|Dame|Lord|Lady|St|"
    r"President|Minister|King|Queen|Prince|Princess|Chancellor|Mayor"
)
_TITLE_WORDS = {t.lower() for t in _TITLES.split("|")}
_NAME = r"[A-Z][\w’'\-]+"
_PERSON = re.compile(
    rf"(?<![\w’'])(?:(?:{_TITLES})\.?\s+(?:[A-Z]\.\s+)*{_NAME}"
    rf"|(?:[A-Z]\.\s+)+{_NAME}|{_NAME}(?:\s+{_NAME})+)"
)

_PASSAGE = {
    # an amount, not just a currency word ("the ruble fell against the dollar" states no amount)
    "money": re.compile(
        rf"[$€£¥]\s?\d|(?:{_NUM})\s*(?:(?:million|billion|trillion|thousand|m|bn)\s+)?"
        r"(?:dollars?|usd|yuan|renminbi|euros?|pounds?|rubles?|roubles?|cents?|pence)\b",
        re.I,
    ),
    "percent": re.compile(rf"(?:{_NUM})\s*(?:%|percent\b|per cent\b)|\bhalf\b|\bquarter\b", re.I),
    "age": re.compile(
        r"\b\d{1,3}[- ]years?[- ]old\b|\baged? \d{1,3}\b|\bage of \d{1,3}\b|"
        r"\(\s*\d{4}\s*[–-]\s*\d{4}\s*\)|\bborn\b[^.]{0,40}\d{4}",
        re.I,
    ),
    "duration": re.compile(rf"(?:{_NUM})[\s-]+(?:more\s+)?{_TIME_UNIT}\b", re.I),
    "measure": re.compile(rf"(?:{_NUM})\s*{_UNIT}\b", re.I),
    "year": re.compile(_YEAR),
    "date": re.compile(
        rf"\b{_MONTH}\s+\d{{1,2}}\b|\b\d{{1,2}}\s+{_MONTH}|\b{_WEEKDAY}\b|{_YEAR}", re.I
    ),
    "time": re.compile(
        rf"\b{_MONTH}(?!\w)|\b{_WEEKDAY}\b|{_YEAR}|\b(?:spring|summer|fall|autumn|winter|"
        r"yesterday|today|tonight|week|month|year|decade|century|ago|earlier|later|recently|"
        r"since|until|morning|evening|night)\b|\d{1,2}(?:st|nd|rd|th)\b",
        re.I,
    ),
}

_ROLE = (
    r"person|man|woman|officials?|ministers?|leaders?|analysts?|president|spokes(?:man|woman|"
    r"person)|curator|mayor|author|poet|engineer|founder|chief|head|owner|architect|scientist|"
    r"writer|counterpart|director|members?|chairman|chair|king|queen|general|commander"
)
_QUESTION = [
    (
        "money",
        r"\bhow much money\b|\bin dollars\b|\bdollar value\b|\bcost\b|\bprice\b|"
        r"\bbudget\b|\bexchange rate\b|\bworth\b",
    ),
    (
        "percent",
        r"\bwhat (?:percentage|percent|share|proportion|fraction)\b|"
        r"\bby what percent(?:age)?\b",
    ),
    ("age", r"\bhow old\b|\bwhat age\b|\bat what age\b"),
    ("time", r"\bhow long ago\b"),
    (
        "measure",
        r"\bhow long (?:is|was) the\b|\bhow (?:far|wide|tall|high|deep|heavy)\b|"
        r"\bwhat (?:length|width|height|depth|distance|area|weight)\b|"
        r"\b(?:total |overall )?length of\b",
    ),
    ("duration", r"\bhow long\b|\bhow many (?:years|months|weeks|days|hours|decades)\b"),
    (
        "count",
        r"\bhow many\b|\bhow much\b|\bwhat (?:number|population)\b|\bpopulation of\b|"
        r"\bby how much\b",
    ),
    ("year", r"\b(?:what|which|in what) year\b"),
    ("date", r"\b(?:what|which|on what) (?:date|day)\b"),
    ("time", r"\bwhen\b|\b(?:what|which) (?:month|time|season|decade|century)\b"),
    ("person_full", r"\bfull name\b"),
    (
        "person",
        rf"\bwho(?:m|se)?\b|\b(?:which|what) (?:{_ROLE})\b|\bname of the (?:\w+ )?(?:{_ROLE})\b",
    ),
    (
        "entity",
        r"\bwhere\b|\bwhich [a-z]+\b|\bwhat is the name\b|\bwhat (?:country|city|nation|"
        r"town|agency|outlet|newspaper|organi[sz]ation|company|river|street)\b",
    ),
]
_QUESTION_RE = [(name, re.compile(p, re.I)) for name, p in _QUESTION]


def expected_type(question: str) -> str | None:
    """The kind of answer a question asks for, if its wording makes that clear."""
    for name, pattern in _QUESTION_RE:
        if pattern.search(question):
            return name
    return None


# Kinds whose answer is a number of that kind: a passage without one cannot answer the question,
# however well it matches the question's words ("How many troops were sent?" / "troops were sent").
NUMERIC_KINDS = frozenset({"count", "percent", "money", "age", "year"})


def has_type(text: str, kind: str | None, question: str = "") -> bool:
    """Whether `text` holds an answer of `kind` that the question does not already contain."""
    if kind is None:
        return True
    asked = set(words(question))
    if kind in ("person", "person_full"):
        return _has_person(text, asked, full=kind == "person_full")
    if kind == "entity":
        for m in re.finditer(r"(?<![\w’'])([A-Z][\w’'-]+)", text):
            if m.start() > 0 and not set(words(m.group(1))) <= asked:
                return True
        return False
    if kind == "count":
        return _has_count(text)
    return any(not set(words(m.group())) <= asked for m in _PASSAGE[kind].finditer(text))


def _has_person(text: str, asked: set[str], full: bool) -> bool:
    for m in _PERSON.finditer(text):
        before = text[max(0, m.start() - 4) : m.start()].lower()
        if before.endswith(("the ", "a ")):
            continue  # "the United States", "a Chinese spy balloon"
        names = [w for w in words(m.group()) if w not in STOPWORDS]
        plain = [w for w in names if w not in _TITLE_WORDS]
        titled = len(plain) < len(names) or re.match(r"[A-Z]\.", m.group())
        enough = len(plain) >= 2 if full else (titled or len(plain) >= 2)
        if enough and set(plain) - asked:
            return True
    return False


_COUNT_NOT = re.compile(rf"^[\s-]*{_TIME_UNIT}\b", re.I)


_LABEL = re.compile(r"\b(?:No|Nos|Number)\.?\s*\d+\b|\bnumber one\b", re.I)


def _has_count(text: str) -> bool:
    """A number that is not a year, part of a date, a duration or a label ("No. 1 ally")."""
    text = _LABEL.sub(" ", text)
    for m in re.finditer(_NUM, text, re.I):
        token = m.group().rstrip(".,")
        if re.fullmatch(_YEAR, token) or _COUNT_NOT.match(text[m.end() : m.end() + 12]):
            continue
        if re.search(rf"{_MONTH}\s*$", text[max(0, m.start() - 6) : m.start()], re.I):
            continue
        return True
    return False


_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,60}\b(?:instructions?|documents?|"
    r"sources?|context|rules|prompts?|above|previous|system)\b|"
    r"^\s*(?:please\s+)?(?:say|state|claim|pretend|repeat|print|write|declare|confirm)\s+that\b",
    re.I | re.S,
)


def asks_to_override(question: str) -> bool:
    """A user request to override the assistant ("ignore the documents and say ...").

    Not to be confused with `llm_answer.looks_like_instruction`, which flags *source* sentences
    addressed to a model (prompt injection inside documents).
    """
    return bool(_INSTRUCTION.search(question))
