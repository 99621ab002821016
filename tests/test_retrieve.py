"""Fusion of the dense and BM25 searches (HybridRetriever), with fakes for both searches."""

from pathlib import Path

import numpy as np

from assistant.answering.retrieve import HybridRetriever
from assistant.indexing.sidecar import Sidecar

N = 30


class FakeStore:
    """Dense search: chunks 1..N-1 in order; chunk 0 (the one with the rare name) not at all."""

    def query(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        return [(f"c{i}", 1.0 - i / 100) for i in range(1, N)][:k]


class FakeLexical:
    """BM25: chunk 0 first by a wide margin, then the others in reverse order."""

    def search(self, tokens: list[str], k: int) -> list[tuple[int, float]]:
        others = [(i, 1.0) for i in range(N - 1, 0, -1)]
        return [(0, 9.0), *others[: k - 1]]

    def idf(self, token: str) -> float:
        return 1.0


class FakeEncoder:
    def encode_one(self, text: str) -> np.ndarray:
        return np.full(4, 0.5, dtype=np.float32)


def sidecar() -> Sidecar:
    texts = [f"Sentence number {i} of the look-alike documents." for i in range(N)]
    starts = np.array([i * 100 for i in range(N)])
    return Sidecar(
        folder=Path("."),
        docs=[{"source": f"d{i}.txt", "sha256": str(i), "title": str(i)} for i in range(N)],
        chunk_ids=[f"c{i}" for i in range(N)],
        chunk_doc=np.arange(N),
        chunk_s0=np.arange(N),
        chunk_s1=np.arange(1, N + 1),
        sent_doc=np.arange(N),
        sent_start=starts,
        sent_end=starts + np.array([len(t) for t in texts]),
        sent_text=texts,
        sent_vecs=np.full((N, 4), 0.5, dtype=np.float32),
        doc_sent_base=list(range(N)),
    )


def test_each_search_keeps_its_first_hits_when_fusion_would_drop_them() -> None:
    retriever = HybridRetriever(
        sidecar(), FakeLexical(), FakeStore(), FakeEncoder(), top_k=8, candidate_k=24
    )
    chunks = [pos for pos, _ in retriever.retrieve("Who founded the Solcorham fair?").chunks]
    assert len(chunks) == 8
    # by reciprocal rank alone, every chunk both searches found outscores chunk 0
    assert 0 in chunks
    assert 1 in chunks  # the dense search's first hit
    assert len(set(chunks)) == len(chunks)
