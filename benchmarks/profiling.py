"""cProfile of the three paths the benchmark times: a cold ask, warm asks and an ingest.

    python -m benchmarks.profiling cold              # in-process cold ask on the seed article
    python -m benchmarks.profiling warm --asks 300   # warm asks on the seed article
    python -m benchmarks.profiling ingest --docs 100 # ingest of a synthetic corpus
    python -m benchmarks.profiling memory --index DIR  # RSS and time after each step of a cold ask

Each prints the functions with the largest cumulative time. The cold profile must run in a fresh
process (it is what this command is), so imports are included; import time itself is better read
with `python -X importtime -m assistant.interfaces.cli ask ...` (docs/performance.md).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Who is China's defense minister?"


def _print_stats(prof: cProfile.Profile, limit: int, sort: str) -> None:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    print(out.getvalue())


def _seed_index(work: Path) -> Path:
    from assistant import Assistant

    index = work / "seed-index"
    Assistant(seeds_dir=ROOT / "seeds", index_dir=index, mode="extractive").ingest(rebuild=True)
    return index


def _rss_mib() -> tuple[float, float]:
    """Current and peak resident memory of this process (VmRSS, VmHWM)."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line[:5]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def memory_steps(index: Path, question: str = QUESTION) -> None:
    """Each step of a cold ask in turn, with the memory and time it adds (run in a new process)."""
    last = time.perf_counter()

    def step(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        rss, peak = _rss_mib()
        ms = (now - last) * 1000
        print(f"{name:44s} RSS {rss:6.0f} MiB  peak {peak:6.0f} MiB  +{ms:6.0f} ms")
        last = time.perf_counter()

    step("interpreter")
    import numpy  # noqa: F401

    step("import numpy")
    from assistant import Assistant

    step("import assistant")
    import onnxruntime  # noqa: F401
    import tokenizers  # noqa: F401

    step("import onnxruntime, tokenizers")
    import chromadb  # noqa: F401

    step("import chromadb")
    assistant = Assistant(seeds_dir=ROOT / "seeds", index_dir=index, mode="extractive")
    assistant.indexing.store  # noqa: B018
    step("open the Chroma client (ChromaStore)")
    assistant.encoder  # noqa: B018
    step("MiniLMEncoder (sha256 check, ORT session)")
    assistant.ask(question)
    step("first ask (loads sidecar and lexical index)")
    assistant.ask(question)
    step("second ask")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["cold", "warm", "ingest", "memory"])
    p.add_argument("--index", type=Path, help="a prebuilt seed index (cold, warm)")
    p.add_argument("--asks", type=int, default=300)
    p.add_argument("--docs", type=int, default=100)
    p.add_argument("--limit", type=int, default=40)
    p.add_argument("--sort", default="cumulative", help="pstats sort key (cumulative, tottime)")
    args = p.parse_args(argv)
    if args.what == "memory":
        if args.index is None:
            raise SystemExit("memory needs --index (a prebuilt seed index)")
        memory_steps(args.index)
        return 0
    work = Path(tempfile.mkdtemp(prefix="assistant-prof-"))
    try:
        prof = cProfile.Profile()
        if args.what == "cold":
            if args.index is None:
                raise SystemExit("cold needs --index: build it first with `assistant ingest "
                                 "--index DIR` (building it here would warm the imports)")
            t0 = time.perf_counter()
            prof.enable()
            from assistant import Assistant

            answer = Assistant(seeds_dir=ROOT / "seeds", index_dir=args.index,
                               mode="extractive").ask(QUESTION)
            prof.disable()
            print(f"cold ask in {time.perf_counter() - t0:.3f} s: {answer.timings_ms}")
        elif args.what == "warm":
            from assistant import Assistant

            index = args.index or _seed_index(work)
            assistant = Assistant(seeds_dir=ROOT / "seeds", index_dir=index, mode="extractive")
            assistant.ask(QUESTION)
            t0 = time.perf_counter()
            prof.enable()
            for _ in range(args.asks):
                assistant.ask(QUESTION)
            prof.disable()
            print(f"{args.asks} warm asks, {(time.perf_counter() - t0) / args.asks * 1000:.2f} "
                  "ms each (under the profiler)")
        else:
            from assistant import Assistant

            from .corpus import write_corpus

            _seed_index(work)  # imports and model load out of the way
            docs = write_corpus(work / "corpus", args.docs)
            assistant = Assistant(seeds_dir=docs, index_dir=work / "index", mode="extractive")
            t0 = time.perf_counter()
            prof.enable()
            summary = assistant.ingest(rebuild=True)
            prof.disable()
            print(f"ingest of {args.docs} docs, {summary.chunks} chunks: "
                  f"{time.perf_counter() - t0:.2f} s (under the profiler)")
        _print_stats(prof, args.limit, args.sort)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
