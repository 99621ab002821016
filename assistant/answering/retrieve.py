"""Hybrid retrieval: dense (Chroma) + BM25 fused by reciprocal rank, then sentence scoring."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.indexing.lexical import LexicalIndex, question_tokens, tokenize
from assistant.indexing.sidecar import Sidecar

CONTEXT_WEIGHT = 0.3  # weight of words from earlier conversation turns vs the question's own
# Two mixes of the same signals, the MiniLM cosine of sentence and question and the share of the
# question's words the sentence holds (docs/evaluation.md has the measurements):
# - `score` ranks sentences. Word overlap finds the sentence that holds the asked-for detail,
#   even when a long sentence's meaning as a whole drifts from the question.
# - `support` is the confidence compared to the abstention threshold, and leans on meaning: a
#   sentence that repeats the question's names but speaks of something else ("Where was Khrenin
#   born?" / "... met with Viktor Khrenin") has high word overlap and lower similarity.
# The first hits of the dense and of the BM25 search that are always among the chunks scored.
FIRST_HITS_KEPT = 2
RANK_DENSE_WEIGHT = 0.6
SUPPORT_DENSE_WEIGHT = 0.85


@dataclass
class Evidence:
    """A candidate sentence with its scores."""

    sent: int
    source: str
    start: int
    end: int
    text: str
    score: float  # ranks sentences
    support: float  # the answer's confidence when this sentence is chosen
    dense: float
    lexical: float
    chunk_rank: int


@dataclass
class Retrieval:
    question_tokens: list[str]
    chunks: list[tuple[int, float]]  # (chunk position, fused score), best first
    evidence: list[Evidence]  # best first
    timings_ms: dict[str, float] = field(default_factory=dict)


class HybridRetriever:
    """Finds the chunks and then the sentences that bear on a question."""

    def __init__(
        self,
        sidecar: Sidecar,
        lexical: LexicalIndex,
        store: Any,
        encoder: Any,
        top_k: int = 8,
        candidate_k: int = 24,
        rrf_k: int = 60,
    ) -> None:
        self.side = sidecar
        self.lexical = lexical
        self.store = store
        self.encoder = encoder
        self.top_k, self.candidate_k, self.rrf_k = top_k, candidate_k, rrf_k
        self._chunk_pos = {cid: i for i, cid in enumerate(sidecar.chunk_ids)}
        self._tokens: dict[int, frozenset[str]] = {}
        # (question key, (weights, total)), replaced in one assignment: safe across threads.
        self._last_weights: tuple[Any, tuple[dict[str, float], float]] = (None, ({}, 1.0))

    def sentence_tokens(self, s: int) -> frozenset[str]:
        """Content tokens of sentence `s`, computed once per loaded index version."""
        toks = self._tokens.get(s)
        if toks is None:
            toks = self._tokens[s] = frozenset(tokenize(self.side.sent_text[s]))
        return toks

    def context_tokens(self, s: int) -> frozenset[str]:
        """Tokens of sentence `s` and of the sentence before it in the same document."""
        side = self.side
        toks = self.sentence_tokens(s)
        if s > 0 and side.sent_doc[s - 1] == side.sent_doc[s]:
            return toks | self.sentence_tokens(s - 1)
        return toks

    def coverage(
        self, q_tokens: list[str], tokens: set[str], context: tuple[str, ...] = ()
    ) -> float:
        """IDF-weighted share of the question's tokens found in `tokens`.

        `context` tokens (from earlier turns of a conversation) count with 0.3 of their weight.
        """
        if not q_tokens and not context:
            return 0.0
        weights, total = self._weights(tuple(q_tokens), context)
        return sum(w for t, w in weights.items() if t in tokens) / total

    def _weights(
        self, q_tokens: tuple[str, ...], context: tuple[str, ...]
    ) -> tuple[dict[str, float], float]:
        """Token weights of one question, computed once and reused for every sentence scored."""
        key = (q_tokens, context)
        last_key, value = self._last_weights
        if last_key != key:
            weights = {t: self.lexical.idf(t) for t in set(q_tokens)}
            ctx = {t: self.lexical.idf(t) for t in set(context) if t not in weights}
            # Earlier turns help resolve "he" or "their", with less weight than the question.
            weights.update({t: CONTEXT_WEIGHT * w for t, w in ctx.items()})
            value = (weights, sum(weights.values()) or 1.0)
            self._last_weights = (key, value)
        return value

    def retrieve(self, question: str, search_text: str | None = None) -> Retrieval:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        query = search_text or question
        q_vec = self.encoder.encode_one(query)
        t1 = time.perf_counter()
        timings["embed"] = (t1 - t0) * 1000
        dense_hits = self.store.query(q_vec.tolist(), self.candidate_k + 8)
        dense = [self._chunk_pos[c] for c, _ in dense_hits if c in self._chunk_pos]
        t2 = time.perf_counter()
        timings["dense"] = (t2 - t1) * 1000
        q_tokens = question_tokens(question)
        asked = set(q_tokens)
        context = tuple(t for t in question_tokens(query) if t not in asked) if search_text else ()
        sparse = [i for i, _ in self.lexical.search(q_tokens + list(context), self.candidate_k)]
        t3 = time.perf_counter()
        timings["bm25"] = (t3 - t2) * 1000
        fused: dict[int, float] = {}
        for ranking in (dense[: self.candidate_k], sparse):
            for rank, pos in enumerate(ranking):
                fused[pos] = fused.get(pos, 0.0) + 1.0 / (self.rrf_k + rank + 1)
        chunks = sorted(fused.items(), key=lambda kv: -kv[1])[: self.top_k]
        # Each search's own first hits always make the cut. Fusion alone drops the chunk that BM25
        # ranks first by a wide margin (the only one with a rare name) when the dense search,
        # blind to made-up names, misses it: chunks found by both at middling ranks outscore it.
        chosen = {pos for pos, _ in chunks}
        firsts = dense[:FIRST_HITS_KEPT] + sparse[:FIRST_HITS_KEPT]
        missing = [pos for pos in dict.fromkeys(firsts) if pos not in chosen]
        if missing:
            room = max(self.top_k - len(missing), 0)
            chunks = chunks[:room] + [(pos, fused[pos]) for pos in missing]
        evidence = self._score_sentences(q_vec, q_tokens, context, chunks)
        timings["sentences"] = (time.perf_counter() - t3) * 1000
        return Retrieval(q_tokens, chunks, evidence, timings)

    def _score_sentences(
        self,
        q_vec: np.ndarray,
        q_tokens: list[str],
        context: tuple[str, ...],
        chunks: list[tuple[int, float]],
    ) -> list[Evidence]:
        side = self.side
        sents: list[tuple[int, int]] = []
        for rank, (pos, _) in enumerate(chunks):
            sents.extend((s, rank) for s in range(side.chunk_s0[pos], side.chunk_s1[pos]))
        if not sents:
            return []
        idx = np.array([s for s, _ in sents])
        dense = side.sent_vecs[idx] @ q_vec
        out = []
        for (s, rank), d in zip(sents, dense, strict=True):
            toks = self.sentence_tokens(s)
            lex = self.coverage(q_tokens, toks, context)
            # The sentence before often names who "he" or "it" is: give its words half weight.
            if s > 0 and side.sent_doc[s - 1] == side.sent_doc[s]:
                prev = self.sentence_tokens(s - 1) - toks
                lex = min(1.0, lex + 0.5 * self.coverage(q_tokens, prev, context))
            score = RANK_DENSE_WEIGHT * float(d) + (1.0 - RANK_DENSE_WEIGHT) * lex
            support = SUPPORT_DENSE_WEIGHT * float(d) + (1.0 - SUPPORT_DENSE_WEIGHT) * lex
            doc = side.docs[side.sent_doc[s]]
            out.append(
                Evidence(
                    int(s),
                    doc["source"],
                    int(side.sent_start[s]),
                    int(side.sent_end[s]),
                    side.sent_text[s],
                    score,
                    support,
                    float(d),
                    lex,
                    rank,
                )
            )
        out.sort(key=lambda e: -e.score)
        return out
