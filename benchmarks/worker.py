"""One corpus measurement in its own processes: ingest, then (a new process) the probes warm.

    python -m benchmarks.worker raw --corpus DIR --docs N --index DIR --out raw.json
    python -m benchmarks.worker ingest --corpus DIR --docs N --index DIR --out ingest.json
    python -m benchmarks.worker query --corpus DIR --docs N --probes K --index DIR --out q.json
    (ingest and query take --url http://127.0.0.1:PORT for a Chroma server; default embedded)

run.py starts the two phases as separate processes for each corpus size and Chroma mode, so that
each starts from the same state, and so that the queries, like the cold asks measured afterwards,
open an index whose writer has exited, as they would after `assistant ingest`: embedded Chroma
persists its vector segment when the writing process closes, and a reader in the writing process
or one that comes earlier works from the log, which costs it time and memory. `raw` measures the
embedding model's raw throughput on the sentences that ingest embeds; run.py runs it in its own
process just before and just after the ingest (in the ingest's process, after an embedded ingest,
it ran at half speed).

With --stand-in, the index is built with `HashingEncoder` instead of MiniLM (seconds instead of
hours for 10,000 documents on a small machine), and then queried with the real MiniLM encoder:
the query path does all its real work (query embedding, Chroma search over as many vectors,
BM25, sentence scoring, loading a sidecar of the same size), so its latency and memory are
representative; the ingest time and the answer accuracy are not, and are reported as such.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from . import corpus
from .measure import median, percentile


class HashingEncoder:
    """A stand-in for MiniLM: hashed bag-of-words vectors, unit length, 384 dimensions."""

    model_id = "stand-in/hashing-384"
    dimension = 384

    def encode(self, texts: list[str], batch_size: int = 32) -> Any:
        import zlib

        import numpy as np

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = zlib.crc32(word.encode())
                out[i, h % self.dimension] += 1.0 if h & 0x80000000 else -1.0
        out[:, 0] += 1e-3  # no zero vectors
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_one(self, text: str) -> Any:
        return self.encode([text])[0]


def raw_model_throughput(sentences: list[str]) -> dict[str, Any]:
    """MiniLMEncoder.encode on exactly the sentences an ingest embeds: the practical ceiling."""
    from assistant.indexing.embedding import MiniLMEncoder

    t0 = time.perf_counter()
    encoder = MiniLMEncoder()
    load_s = time.perf_counter() - t0
    encoder.encode(sentences[:32])
    t0 = time.perf_counter()
    encoder.encode(sentences)
    seconds = time.perf_counter() - t0
    chars = sum(len(s) for s in sentences)
    return {"seconds": round(seconds, 3), "sentences_per_s": round(len(sentences) / seconds, 1),
            "chars_per_s": round(chars / seconds, 1), "encoder_load_s": round(load_s, 3)}


def combine_raw(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Raw throughput measured just before and just after the ingest, pooled."""
    seconds = before["seconds"] + after["seconds"]
    n, chars = before["sentences"], before["chars"]
    return {"sentences": n, "chars": chars, "seconds": round(seconds / 2, 3),
            "sentences_per_s": round(2 * n / seconds, 1),
            "chars_per_s": round(2 * chars / seconds, 1), "before": before, "after": after}


def probe_asks(assistant: Any, probes: list[corpus.Probe]) -> dict[str, Any]:
    t0 = time.perf_counter()
    assistant.ask(probes[0].question)  # loads the engine (sidecar, lexical index, Chroma)
    first_ms = (time.perf_counter() - t0) * 1000
    for p in probes[1:4]:
        assistant.ask(p.question)
    wall, correct, source_hit, abstained, cited = [], 0, 0, 0, []
    stages: dict[str, list[float]] = {}
    for p in probes:
        t0 = time.perf_counter()
        answer = assistant.ask(p.question)
        wall.append((time.perf_counter() - t0) * 1000)
        correct += (not answer.abstained) and p.answer.lower() in answer.text.lower()
        source_hit += any(c.source == p.source for c in answer.citations)
        abstained += answer.abstained
        cited.append(sum(c.end - c.start for c in answer.citations))
        for k, v in answer.timings_ms.items():
            stages.setdefault(k, []).append(v)
    n = len(probes)
    return {"first_ask_ms": round(first_ms, 1), "probes": n,
            "p50_ms": round(percentile(wall, 50), 2), "p95_ms": round(percentile(wall, 95), 2),
            "accuracy": round(correct / n, 3), "source_hit": round(source_hit / n, 3),
            "abstained": round(abstained / n, 3), "cited_chars_median": median(cited),
            "stages_p50_ms": {k: round(median(v), 2) for k, v in sorted(stages.items())}}


def _assistant(args: argparse.Namespace, encoder: Any = None) -> Any:
    from assistant import Assistant

    store_factory = None
    if args.url:
        from assistant.indexing.store import ChromaStore

        def store_factory() -> Any:
            return ChromaStore(args.index / "chroma", url=args.url)

    return Assistant(seeds_dir=args.corpus, index_dir=args.index, mode="extractive",
                     store_factory=store_factory, encoder=encoder)


def corpus_texts(folder: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))]


def corpus_sentences(texts: list[str]) -> list[str]:
    from assistant.documents.splitter import parse_document

    return [s.text for t in texts for s in parse_document(t).sentences]


def raw(args: argparse.Namespace) -> dict[str, Any]:
    sentences = corpus_sentences(corpus_texts(args.corpus))
    return {"sentences": len(sentences), "chars": sum(len(s) for s in sentences),
            **raw_model_throughput(sentences)}


def ingest(args: argparse.Namespace) -> dict[str, Any]:
    texts = corpus_texts(args.corpus)
    sentences = corpus_sentences(texts)
    chars = sum(len(t) for t in texts)
    assistant = _assistant(args, HashingEncoder() if args.stand_in else None)
    t0 = time.perf_counter()
    summary = assistant.ingest(rebuild=True)
    seconds = time.perf_counter() - t0
    n = len(texts)
    return {"chars": chars, "ingest_s": round(seconds, 2), "chunks": summary.chunks,
            "sentences": len(sentences), "docs_per_s": round(n / seconds, 3),
            "chunks_per_s": round(summary.chunks / seconds, 1),
            "sentences_per_s": round(len(sentences) / seconds, 1),
            "chars_per_s": round(chars / seconds, 1)}


def query(args: argparse.Namespace) -> dict[str, Any]:
    return probe_asks(_assistant(args), corpus.sample_probes(args.docs, args.probes))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phase", choices=["raw", "ingest", "query"])
    p.add_argument("--corpus", type=Path, required=True, help="the documents folder")
    p.add_argument("--docs", type=int, required=True)
    p.add_argument("--probes", type=int, default=100)
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--url", help="a Chroma server (http://127.0.0.1:PORT); default embedded")
    p.add_argument("--stand-in", action="store_true",
                   help="build the index with HashingEncoder (queries always use MiniLM)")
    args = p.parse_args(argv)
    result = {"raw": raw, "ingest": ingest, "query": query}[args.phase](args)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
