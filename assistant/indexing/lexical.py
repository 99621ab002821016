"""Word tokenisation and the BM25 index (bm25s) over chunks."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

STOPWORDS = frozenset(
    """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves s t also according said says say tell told please
""".split()  # noqa: SIM905
)

# Bump when tokenisation changes: an index keeps the tokens it was built with (index.py refuses
# an index of another tokenizer version and asks for `assistant ingest --rebuild`).
TOKENIZER_VERSION = 3

# Common irregular verb forms, mapped to the base form (a light lemmatiser: "met" matches "meet").
_IRREGULAR_VERBS = (
    "meet met|speak spoke spoken|win won|take took taken|come came|become became|"
    "begin began begun|go went gone|see saw seen|make made|give gave given|hold held|leave left|"
    "lead led|build built|pay paid|send sent|sell sold|buy bought|bring brought|think thought|"
    "find found|fall fell fallen|rise rose risen|grow grew grown|know knew known|"
    "write wrote written|run ran|choose chose chosen|drive drove driven|fly flew flown|"
    "break broke broken|stand stood|sit sat|lose lost|keep kept|feel felt|mean meant|"
    "get got gotten|eat ate eaten|draw drew drawn|teach taught|seek sought|fight fought|"
    "catch caught|hear heard|wear wore worn|tear tore torn|shake shook shaken|"
    "forget forgot forgotten|hide hid hidden|strike struck|steal stole stolen|ride rode ridden|"
    "sing sang sung|sink sank sunk|spend spent|lend lent|dig dug|hang hung|shoot shot|feed fed|"
    "flee fled|lay laid|freeze froze frozen|swim swam swum|throw threw thrown|wake woke woken|"
    "bite bit bitten|blow blew blown|forbid forbade forbidden|overtake overtook overtaken|"
    "undertake undertook undertaken|withdraw withdrew withdrawn|arise arose arisen"
)
_IRREGULAR = {
    form: base
    for base, *forms in (group.split() for group in _IRREGULAR_VERBS.split("|"))
    for form in forms
}

# Demonyms and the places they name, so that "Russian" matches "Russia" and "Chinese" matches
# "China" ("Who is Russia's defense minister?" / "Russian Defense Minister Sergei Shoigu").
_DEMONYMS = (
    "american america|russian russia|chinese china|japanese japan|korean korea|taiwanese taiwan|"
    "vietnamese vietnam|indian india|pakistani pakistan|afghan afghanistan|iranian iran|"
    "iraqi iraq|israeli israel|syrian syria|turkish turkey|egyptian egypt|european europe|"
    "african africa|asian asia|british britain|english england|scottish scotland|welsh wales|"
    "irish ireland|french france|german germany|italian italy|spanish spain|"
    "portuguese portugal|dutch netherlands|belgian belgium|swiss switzerland|austrian austria|"
    "swedish sweden|norwegian norway|danish denmark|finnish finland|ukrainian ukraine|"
    "belarusian belarus|canadian canada|mexican mexico|brazilian brazil|argentinian argentina|"
    "australian australia|cuban cuba|greek greece|hungarian hungary|mongolian mongolia|"
    "kazakh kazakhstan|georgian georgia|armenian armenia|serbian serbia|romanian romania"
)

# The part of a question that names the kind of answer ("what is the name of", "which year",
# "how many"): answer-type words, not content the evidence should repeat (answer_types.py checks
# the kind of answer).
# Also the words with which a question points at the documents themselves ("according to the
# article"): no sentence of the documents is expected to contain them.
_QUESTION_FRAME = re.compile(
    r"\b(?:what|which)\s+(?:(?:is|was|are|were)\s+the\s+)?(?:full\s+name|name|date|day|year|"
    r"month|kinds?|types?|sorts?)\b(?:\s+of\b)?|\bhow\s+(?:many|much)\b|"
    r"\b(?:the|this|these|your|my)\s+(?:articles?|texts?|documents?|passages?|stor(?:y|ies)|"
    r"sources?)\b",
    re.I,
)

_WORD = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)


def _bm25s():  # type: ignore[no-untyped-def]
    """Import bm25s lazily; it sets its own logger to DEBUG, which would print on every ingest."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _fold(text: str) -> str:
    if text.isascii():  # nothing to decompose: the common case, and ten times faster
        return text.lower()
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately light stemmer: possessives, irregular verbs, plural and verb suffixes,
    demonyms.

    "arrive", "arrives", "arrived" and "arriving" all become "arriv"; "studied" and "studies"
    become "study"; "met" becomes "meet"; "Russians" becomes "russia".
    """
    base = _stem_affixes(word)
    return _DEMONYM.get(base, base)


def _stem_affixes(word: str) -> str:
    for suffix in ("'s", "’s"):
        if word.endswith(suffix):
            word = word[: -len(suffix)]
    word = word.replace("’", "'")
    word = _IRREGULAR.get(word, word)
    if len(word) > 4 and word.endswith(("ies", "ied")):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e") and not word.endswith(("ee", "ie", "ye")):
        word = word[:-1]  # "arrive" like "arriv(ing)", "release" like "releas(ed)"
    return word


_DEMONYM = {
    _stem_affixes(people): _stem_affixes(place)
    for people, place in (pair.split() for pair in _DEMONYMS.split("|"))
}


def words(text: str) -> list[str]:
    """Lower-cased word tokens, numbers kept whole ("3.5", "1,000")."""
    return _WORD.findall(_fold(text))


def tokenize(text: str) -> list[str]:
    """Content tokens for matching: words without stopwords, lightly stemmed."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def question_tokens(question: str) -> list[str]:
    """A question's content tokens, without the words that only name the kind of answer."""
    return tokenize(_QUESTION_FRAME.sub(" ", question))


class _Bm25Matrix:
    """bm25s's saved score matrix (CSC: one column of per-chunk scores per token), read with
    numpy so the query path does not import bm25s and scipy (about 0.3 s and 15 MB)."""

    def __init__(self, folder: Path) -> None:
        import json

        # mapped: a query reads only the columns of its own tokens
        self.data = np.load(folder / "data.csc.index.npy", mmap_mode="r")
        self.indices = np.load(folder / "indices.csc.index.npy", mmap_mode="r")
        self.indptr = np.load(folder / "indptr.csc.index.npy", mmap_mode="r")
        self.vocab_dict: dict[str, int] = json.loads(
            (folder / "vocab.index.json").read_text(encoding="utf-8")
        )
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        self.num_docs = int(params["num_docs"])
        nnoc = folder / "nonoccurrence_array.index.npy"
        self.nonoccurrence = np.load(nnoc) if nnoc.exists() else None

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """The same sums as `bm25s.BM25.get_scores` (repeated tokens count again)."""
        scores = np.zeros(self.num_docs, dtype=np.float32)
        ids = [self.vocab_dict[t] for t in tokens]
        for t in ids:
            a, b = self.indptr[t], self.indptr[t + 1]
            scores[self.indices[a:b]] += self.data[a:b]
        if self.nonoccurrence is not None:
            scores += self.nonoccurrence[ids].sum()
        return scores


class LexicalIndex:
    """BM25 over chunk texts, plus document frequencies of sentence tokens for IDF weights."""

    def __init__(self, bm25: Any, sentence_df: dict[str, int], n_sentences: int) -> None:
        self._bm25 = bm25
        self.sentence_df = sentence_df
        self.n_sentences = max(n_sentences, 1)
        self._prefixes: frozenset[str] | None = None

    @classmethod
    def build(cls, chunk_texts: list[str], sentence_texts: list[str]) -> LexicalIndex:
        bm25s = _bm25s()
        bm25 = None
        corpus = [tokenize(t) or ["\x00empty"] for t in chunk_texts]
        if corpus:
            bm25 = bm25s.BM25()
            bm25.index(corpus, show_progress=False)
        df: Counter[str] = Counter()
        for text in sentence_texts:
            df.update(set(tokenize(text)))
        return cls(bm25, dict(df), len(sentence_texts))

    def save(self, folder: Path) -> None:
        import json

        folder.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(str(folder / "bm25"), show_progress=False)
        (folder / "sentence_df.json").write_text(
            json.dumps({"n": self.n_sentences, "df": self.sentence_df}), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import json

        bm25 = _Bm25Matrix(folder / "bm25") if (folder / "bm25").exists() else None
        data = json.loads((folder / "sentence_df.json").read_text(encoding="utf-8"))
        return cls(bm25, data["df"], data["n"])

    def check(self, n_chunks: int) -> None:
        """Raise ValueError unless the saved files fit an index of `n_chunks` chunks."""
        if not isinstance(self.sentence_df, dict) or not isinstance(self.n_sentences, int):
            raise ValueError("sentence_df.json of the wrong shape")
        bm = self._bm25
        if bm is None:
            if n_chunks:
                raise ValueError("the BM25 files are missing")
            return
        columns = len(bm.indptr) - 1  # bm25s's vocabulary also maps "" to one past the last
        ids = [i for t, i in bm.vocab_dict.items() if t]
        if (
            bm.num_docs != n_chunks
            or not all(type(i) is int and 0 <= i < columns for i in ids)
        ):
            raise ValueError("the BM25 matrix does not fit the chunks")
        nnz = int(bm.indptr[-1]) if len(bm.indptr) else 0
        if len(bm.data) != nnz or len(bm.indices) != nnz:
            raise ValueError("the BM25 matrix is truncated")

    def mentions(self, token: str) -> bool:
        """Whether some sentence of the documents has `token`, or a word with its first four
        letters (Russia/Russian, America/American)."""
        if token in self.sentence_df:
            return True
        if len(token) < 4:
            return False
        if self._prefixes is None:  # built on first use: one pass over the vocabulary
            self._prefixes = frozenset(t[:4] for t in self.sentence_df if len(t) >= 4)
        return token[:4] in self._prefixes

    def idf(self, token: str) -> float:
        df = self.sentence_df.get(token, 0)
        return math.log(1.0 + (self.n_sentences - df + 0.5) / (df + 0.5))

    def search(self, query_tokens: list[str], k: int) -> list[tuple[int, float]]:
        """Top-k chunk positions with BM25 scores > 0, best first."""
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        known = [t for t in query_tokens if t in vocab]
        if not known:
            return []
        scores = self._bm25.get_scores(known)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
