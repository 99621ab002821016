"""What kind of answer a question asks for, and whether a passage contains one.

Classic question typing: "how old" wants an age, "on what date" a date, "who" a name. A sentence
that lacks the asked-for kind of answer is a poor answer even when it shares the question's words.
"""

from __future__ import annotations

import re

from assistant.indexing.lexical import STOPWORDS, words

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
    "speech": re.compile(
        # a quotation, or a verb or noun of saying, writing, finding or thinking
        r"[“”\"]|\b(?:sa(?:id|ys|y)|t(?:old|ells?)|stated|not(?:ed|es)|add(?:ed|s)|"
        r"remark(?:ed|s)?|describ(?:ed|es)|call(?:ed|s)|claim(?:ed|s)|announc(?:ed|es)|"
        r"warn(?:ed|s)|argu(?:ed|es)|quot(?:ed|es)|wr(?:ote|ites|itten)|mention(?:ed|s)|"
        r"stress(?:ed|es)|emphasi[sz](?:ed|es)|explain(?:ed|s)|insist(?:ed|s)|declar(?:ed|es)|"
        r"assert(?:ed|s)|repl(?:ied|ies)|respond(?:ed|s)|answer(?:ed|s)|found|finds|show(?:ed|s)|"
        r"conclud(?:ed|es)|report(?:ed|s)|suggest(?:ed|s)|estimat(?:ed|es)|predict(?:ed|s)|"
        r"recommend(?:ed|s)|propos(?:ed|es)|promis(?:ed|es)|pledg(?:ed|es)|vow(?:ed|s)|urg(?:ed|es)|"
        r"accus(?:ed|es)|denie[ds]|admit(?:ted|s)|acknowledg(?:ed|es)|confirm(?:ed|s)|"
        r"reveal(?:ed|s)|indicat(?:ed|es)|observ(?:ed|es)|pointed out|prais(?:ed|es)|"
        r"criti(?:ci[sz]ed|ci[sz]es)|express(?:ed|es)|believ(?:ed|es)|thinks?|thought|hop(?:ed|es)|"
        r"expect(?:ed|s)|agre(?:ed|es)|according to|statement|remarks?|comments?|interview)\b",
        re.I,
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
_AUX = r"(?:did|does|do|is|was|are|were|has|have|had|will|would|can|could|should|may|might)"
_MODIFIER = rf"(?!{_AUX}\b)[a-z]+ "
_QUESTION = [
    # what someone said: the answer is speech, so it needs a quotation or a reporting verb
    (
        "speech",
        # not "what does the article say about ...", which any sentence on the subject answers
        r"\bwhat (?:did|does|do|has|have|had|will|would)\s+(?!(?:the|this|these|that|your)\s+"
        r"(?:articles?|texts?|documents?|passages?|stor(?:y|ies)|pages?|sources?|books?|papers?|"
        r"pieces?|chapters?|sections?|files?)\s)(?:[\w’'.\-]+\s+){1,4}?(?:say|said|tell|told|"
        r"claim|state|announce|remark|reply|answer|write|written|declare)d?(?![\w’'-])",
    ),
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
    # "How long is the bridge?" asks for a length, "How long was the visit?" for a duration:
    # the wording does not tell which, so either kind answers it.
    ("length", r"\bhow long (?:is|was|were|are) the\b"),
    (
        "measure",
        r"\bhow (?:far|wide|tall|high|deep|heavy)\b|"
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
        # "the name of China's new foreign minister": a few describing words may come before the
        # role (never a verb: "what phrase did President Biden use" asks for a phrase). "Which
        # Chinese official ...?" stays an entity question: a role can answer it ("China's new
        # foreign minister"), where "who" and "the name of" ask for a name.
        rf"\bwho(?:m|se)?\b|\b(?:which|what) (?:{_ROLE})\b|"
        rf"\bname of (?:the |[\w’']+[’']s )?(?:{_MODIFIER}){{0,2}}(?:{_ROLE})\b",
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
# Kinds a passage must hold to answer at all: a number of the asked kind, or (for "what did X
# say") a quotation or reporting verb. "Lukashenko was welcomed by Xi" does not say what Xi said.
STRICT_KINDS = NUMERIC_KINDS | {"speech"}


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
    if kind == "length":
        return has_type(text, "measure", question) or has_type(text, "duration", question)
    return any(not set(words(m.group())) <= asked for m in _PASSAGE[kind].finditer(text))


# Capitalised words that make a two-word match a place or an institution, not a person
# ("River Aske", "Market Square"), unless a title or an initial says otherwise.
_NOT_PERSON = frozenset(
    """
river lake mount street road square hill fell moor bridge church station university college
institute museum hall park valley vale house lane club band times news ministry agency party
army navy court council office mill works fair market school hospital castle abbey cathedral
tower gate field wood forest island bay port harbour harbor airport county district province
state states republic kingdom company bank group centre center
""".split()  # noqa: SIM905
)
# Words capitalised only because they open a sentence ("Neither China's ministry nor ...").
_OPENERS = frozenset(
    """
neither either meanwhile however although though yet still another many several every last next
first despite today yesterday later earlier instead besides moreover thus hence indeed perhaps
""".split()  # noqa: SIM905
)
_TITLED = re.compile(rf"(?:{_TITLES})\.?\s|[A-Z]\.")


def person_mentions(text: str) -> list[list[str]]:
    """The name words (lower case, titles left out) of each person a passage mentions.

    A mention is titled ("Mr. Xi", "Gen. Li", "J. R. Whitfield") or at least two capitalised
    names ("Su Tzu-yun"); a common word capitalised because it opens a sentence is not a name
    ("Neither China's ..."), and "the"/"a" before a match rules it out ("the United States").
    """
    out = []
    for m in _PERSON.finditer(text):
        before = text[max(0, m.start() - 4) : m.start()].lower()
        if before.endswith(("the ", "a ")):
            continue
        mention = m.group()
        titled = bool(_TITLED.match(mention))
        first = mention.split(None, 1)[0].lower()
        if not titled and (first in STOPWORDS or first in _OPENERS):
            mention = mention.split(None, 1)[1] if " " in mention else ""
        names = [w for w in words(mention) if w not in STOPWORDS]
        plain = [w for w in names if w not in _TITLE_WORDS]
        titled = titled or len(plain) < len(names)
        if not plain or (not titled and (len(plain) < 2 or set(plain) & _NOT_PERSON)):
            continue
        out.append(plain)
    return out


def _has_person(text: str, asked: set[str], full: bool) -> bool:
    return any(
        (len(plain) >= 2 or not full) and set(plain) - asked for plain in person_mentions(text)
    )


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

    Not to be confused with `markers.looks_like_instruction`, which flags *source* sentences
    addressed to a model (prompt injection inside documents).
    """
    return bool(_INSTRUCTION.search(question))


_UP = frozenset(
    """
rise rises rose risen rising increase increased increases increasing grow grows grew grown
growing climb climbed climbing gain gained jump jumped surge surged soar soared expand expanded
""".split()  # noqa: SIM905
)
_DOWN = frozenset(
    """
fall falls fell fallen falling drop drops dropped dropping decline declined declining decrease
decreased decreasing shrink shrank shrunk plunge plunged slump slumped sink sank
""".split()  # noqa: SIM905
)
_SEASON = re.compile(r"\b(?:last|this|next|that|the|early|late|in)\s+fall\b", re.I)  # autumn
_WH_WORD = re.compile(r"\b(?:what|which|who|whom|whose|when|where|why|how)\b", re.I)
_WH_CLAUSE = re.compile(
    r"(?:^|[,;:]\s+)(?=(?:what|which|who|whom|whose|when|where|why|how)\b)", re.I
)


def asked_direction(question: str) -> frozenset[str] | None:
    """The direction a question asks about (the rise words or the fall words), if any.

    "By how much did trade fall?" asks about a fall. Only questions with a question word count
    ("Did trade fall?" is answered by "trade increased" too: no), and only the clause that asks
    is read: in "In the month that China's share fell to 13 percent, what share did Mexico
    reach?" the fall is a given, not the asked direction.
    """
    if not _WH_WORD.search(question):
        return None
    starts = [m.end() for m in _WH_CLAUSE.finditer(question)]
    asked = set(words(_SEASON.sub(" ", question[starts[-1] :] if starts else question)))
    for one, other in ((_UP, _DOWN), (_DOWN, _UP)):
        if asked & one and not asked & other:
            return one
    return None


def goes_the_other_way(direction: frozenset[str] | None, passage: str) -> bool:
    """The passage reports only the opposite of `direction` (see `asked_direction`)."""
    if direction is None:
        return False
    other = _DOWN if direction is _UP else _UP
    said = set(words(_SEASON.sub(" ", passage)))
    return bool(said & other) and not said & direction


def opposite_direction(question: str, passage: str) -> bool:
    """The question asks about a fall and the passage only reports a rise, or the reverse:
    "By how much did trade fall?" is not answered by "trade increased by over 30 percent"."""
    return goes_the_other_way(asked_direction(question), passage)
