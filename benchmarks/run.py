"""The benchmark suite: one run, one table, one JSON file (docs/performance.md).

    python -m benchmarks.run                 # seed + corpora of 100, 1,000 and 10,000 documents
    python -m benchmarks.run --quick         # 100 documents only, fewer runs (a few minutes)
    python -m benchmarks.run --sizes 100,1000 --json-out benchmarks/results/latest.json
    python -m benchmarks.run --sections scale --sizes "" --stand-in-sizes 10000 --no-starter

What it measures, all in the same run so that ratios compare like with like:
  * cold `assistant ask` (a new process, index prebuilt by `assistant ingest`): wall time, CPU
    time and peak RSS, median of rounds;
  * the LlamaIndex starter (benchmarks/starter.py) on the same seed and question, in the same
    rounds (index prebuilt, and index built in the same process);
  * warm `Assistant.ask` p50/p95 on the seed index, and the per-stage timings it reports;
  * ingest throughput next to the raw throughput of the embedding model on the same sentences;
  * ingest time, query latency and answer accuracy on synthetic corpora (benchmarks/corpus.py),
    with embedded Chroma and with a `chroma run` server on 127.0.0.1 (started and stopped here),
    each in a worker process (benchmarks/worker.py), then cold asks on the result.
Corpora up to --always-run documents always run; a larger one whose ingest is estimated (from
the sizes before it) to take longer than --max-ingest-minutes is skipped and reported as such.
--stand-in-sizes measures the query path at sizes whose real ingest is out of reach (see
benchmarks/worker.py). Answers are offline (extractive mode); nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from assistant.fileio import write_atomically

from . import corpus
from .chroma_server import chroma_server
from .measure import ProcessRun, loadavg, median, percentile, run_process
from .report import render_markdown, targets
from .worker import combine_raw

ROOT = Path(__file__).resolve().parents[1]
SEED_QUESTION = "Who is China's defense minister?"
SEED_ANSWER = "Li Shangfu"
FALLBACK_QUESTIONS = [SEED_QUESTION, "Who is the defense minister of Belarus?",
                      "In which city did Li Shangfu meet his Belarusian counterpart?",
                      "By how much did bilateral trade increase last year?"]
VERSIONED = ["assistant", "chromadb", "onnxruntime", "tokenizers", "bm25s", "numpy",
             "llama-index-core", "llama-index-embeddings-huggingface", "sentence-transformers",
             "torch", "transformers"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    """The environment of measured processes: offline, extractive, no inherited overrides."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ASSISTANT_") and k != "OPENAI_API_KEY"}
    env.update({"ASSISTANT_MODE": "extractive", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})
    return env


def assistant_cmd() -> list[str]:
    script = Path(sys.executable).with_name("assistant")
    return [str(script)] if script.exists() else [sys.executable, "-m", "assistant"]


# -- cold start ------------------------------------------------------------------------------------
@dataclass
class Contender:
    """A command measured cold; its answer is JSON on stdout, or in `out` if given."""

    name: str
    cmd: list[str]
    out: Path | None = None
    fresh_dir: Path | None = None  # removed before every run (a starter that builds its index)
    timeout: float = 900.0

    def run(self) -> tuple[ProcessRun, dict[str, Any]]:
        if self.fresh_dir is not None:
            shutil.rmtree(self.fresh_dir, ignore_errors=True)
        r = run_process(self.cmd, env=child_env(), cwd=str(ROOT), timeout=self.timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{self.name} failed ({r.returncode}): {r.stderr[-2000:]}")
        return r, json.loads(self.out.read_text() if self.out else r.stdout)


def cold_compare(contenders: list[Contender], runs: int) -> dict[str, list[tuple[ProcessRun, Any]]]:
    """Runs in rounds (A, B, C, A, B, C, ...) so that all see the same background load.

    Round 0 is not counted: it warms the page cache (and builds the prebuilt starter index).
    """
    samples: dict[str, list[tuple[ProcessRun, Any]]] = {c.name: [] for c in contenders}
    for i in range(runs + 1):
        for c in contenders:
            r, parsed = c.run()
            if i:
                samples[c.name].append((r, parsed))
    return samples


def _process_summary(samples: list[tuple[ProcessRun, Any]]) -> dict[str, Any]:
    runs = [r for r, _ in samples]
    return {"runs": len(runs), "wall_s": [round(r.wall_s, 3) for r in runs],
            "rss_mib": [round(r.max_rss_mib, 1) for r in runs],
            "cpu_s": [round(r.cpu_s, 3) for r in runs],
            "wall_s_median": round(median([r.wall_s for r in runs]), 3),
            "cpu_s_median": round(median([r.cpu_s for r in runs]), 3),
            "rss_mib_median": round(median([r.max_rss_mib for r in runs]), 1)}


def summarize_ours(samples: list[tuple[ProcessRun, Any]], expect: str) -> dict[str, Any]:
    answers = [a for _, a in samples]
    keys = sorted({k for a in answers for k in a.get("timings_ms", {})})
    last = answers[-1]
    return {**_process_summary(samples),
            "timings_ms_median": {k: round(median([a["timings_ms"][k] for a in answers
                                                   if k in a.get("timings_ms", {})]), 1)
                                  for k in keys},
            "answer": last.get("answer", ""),
            "correct": expect.lower() in last.get("answer", "").lower(),
            "cited_chars": sum(c["end"] - c["start"] for c in last.get("citations", []))}


def summarize_starter(samples: list[tuple[ProcessRun, Any]], expect: str) -> dict[str, Any]:
    results = [x for _, x in samples]
    last = results[-1]
    text = " ".join(n["text"] for n in last["nodes"])
    return {**_process_summary(samples), "built_index": last["built"],
            "timings_s_median": {k: round(median([x["timings"][k] for x in results]), 3)
                                 for k in sorted(last["timings"])},
            "nodes": len(last["nodes"]), "correct": expect.lower() in text.lower(),
            "cited_chars": last["cited_chars"]}


def ours_cmd(seeds: Path, index: Path, question: str) -> list[str]:
    return [*assistant_cmd(), "ask", "--seeds", str(seeds), "--index", str(index), "--json",
            question]


def starter_cmd(seeds: Path, persist: Path, question: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks.starter", "ask", "--seeds", str(seeds),
            "--persist", str(persist), "--question", question, "--out", str(out)]


def cold_seed(args: argparse.Namespace, seeds: Path, index: Path, work: Path) -> dict[str, Any]:
    q = SEED_QUESTION
    contenders = [Contender("ours", ours_cmd(seeds, index, q))]
    if not args.no_starter:
        prebuilt, build = work / "starter-seed", work / "starter-seed-build"
        shutil.rmtree(prebuilt, ignore_errors=True)
        contenders += [
            Contender("starter_prebuilt", starter_cmd(seeds, prebuilt, q, work / "sp.json"),
                      out=work / "sp.json", timeout=1800),
            Contender("starter_build", starter_cmd(seeds, build, q, work / "sb.json"),
                      out=work / "sb.json", fresh_dir=build, timeout=1800)]
    samples = cold_compare(contenders, args.cold_runs)
    out = {"ours": summarize_ours(samples["ours"], SEED_ANSWER)}
    for name in ("starter_prebuilt", "starter_build"):
        if name in samples:
            out[name] = summarize_starter(samples[name], SEED_ANSWER)
    return out


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_profile(seeds: Path, index: Path, question: str, top: int = 12) -> dict[str, Any]:
    """`python -X importtime` of a cold ask: cumulative time of each top-level import."""
    cmd = [sys.executable, "-X", "importtime", "-m", "assistant", "ask", "--seeds",
           str(seeds), "--index", str(index), question]
    r = run_process(cmd, env=child_env(), cwd=str(ROOT))
    top_level: dict[str, int] = {}
    by_name: dict[str, int] = {}
    for m in _IMPORT_LINE.finditer(r.stderr):
        cumulative, indent, name = int(m.group(2)), len(m.group(3)), m.group(4)
        by_name[name] = max(by_name.get(name, 0), cumulative)
        if indent <= 1:
            root = name.split(".")[0]
            top_level[root] = top_level.get(root, 0) + cumulative
    ranked = sorted(top_level.items(), key=lambda kv: -kv[1])
    watch = ["chromadb", "bm25s", "scipy", "scipy.sparse", "numpy", "onnxruntime", "tokenizers",
             "llama_index", "pydantic", "httpx", "opentelemetry", "jsonschema", "assistant.indexing.sidecar",
             "assistant.answering.retrieve", "assistant.answering.extractive", "assistant.indexing.store"]
    return {
        "wall_s": round(r.wall_s, 3),
        "imports_ms": round(sum(top_level.values()) / 1000, 1),
        "top_ms": [[k, round(v / 1000, 1)] for k, v in ranked[:top]],
        "modules_ms": {k: round(by_name[k] / 1000, 1) for k in watch if k in by_name},
        "llama_index_imported": any(k.startswith("llama_index") for k in by_name),
        "torch_imported": "torch" in by_name,
    }


# -- warm queries ----------------------------------------------------------------------------------
def seed_questions() -> list[str]:
    path = ROOT / "evals" / "seed_qa.jsonl"
    try:
        qs = [json.loads(line)["question"] for line in path.read_text().splitlines()
              if line.strip()]
    except (OSError, ValueError, KeyError):
        qs = []
    return qs or FALLBACK_QUESTIONS


def warm_asks(assistant: Any, questions: list[str], n: int, warmup: int = 3) -> dict[str, Any]:
    """Ask `n` questions (cycling) on a loaded engine; latency percentiles and stage medians."""
    for q in questions[:warmup]:
        assistant.ask(q)
    wall, stages = [], {}
    for i in range(n):
        q = questions[i % len(questions)]
        t0 = time.perf_counter()
        answer = assistant.ask(q)
        wall.append((time.perf_counter() - t0) * 1000)
        for k, v in answer.timings_ms.items():
            stages.setdefault(k, []).append(v)
    return {"n": n, "p50_ms": round(percentile(wall, 50), 2),
            "p95_ms": round(percentile(wall, 95), 2), "max_ms": round(max(wall), 2),
            "stages_p50_ms": {k: round(median(v), 2) for k, v in sorted(stages.items())}}


# -- corpora ---------------------------------------------------------------------------------------
def index_dir(work: Path, n: int, backend: str, stand_in: bool = False) -> Path:
    return work / f"index-{n}-{backend}{'-stand-in' if stand_in else ''}"


def scale_row(args: argparse.Namespace, n: int, backend: str, docs_dir: Path, work: Path,
              raw: bool, stand_in: bool = False) -> dict[str, Any]:
    """Ingest and probe one corpus in a worker process (benchmarks/worker.py)."""
    index = index_dir(work, n, backend, stand_in)
    shutil.rmtree(index, ignore_errors=True)
    out = work / f"worker-{n}-{backend}.json"
    common = ["--corpus", str(docs_dir), "--docs", str(n), "--index", str(index), "--out",
              str(out)]
    row: dict[str, Any] = {"docs": n, "backend": backend}
    if stand_in:
        row["stand_in"] = True

    def worker(phase: list[str]) -> dict[str, Any]:
        r = run_process([sys.executable, "-m", "benchmarks.worker", *phase],
                        env=child_env(), cwd=str(ROOT), timeout=6 * 3600)
        if r.returncode != 0:
            raise RuntimeError(f"worker {phase[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
        result = json.loads(out.read_text())
        result[f"{phase[0]}_peak_rss_mib"] = round(r.max_rss_mib, 1)
        return result

    def work_once(extra: list[str]) -> None:
        raw_before = worker(["raw", *common]) if raw else None
        row.update(worker(["ingest", *common, *extra] + (["--stand-in"] if stand_in else [])))
        if raw_before is not None:
            row["raw"] = combine_raw(raw_before, worker(["raw", *common]))
        row.update(worker(["query", *common, *extra, "--probes", str(args.probes)]))

    if backend == "server":
        server_dir = work / f"chroma-server-{n}"
        shutil.rmtree(server_dir, ignore_errors=True)
        with chroma_server(server_dir, work / f"chroma-server-{n}.log") as server:
            row["server_startup_s"] = round(server.startup_s, 2)
            work_once(["--url", server.url])
            row["server_peak_rss_mib"] = server.peak_rss_mib()
    else:
        work_once([])
    return row


def run_scale(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    budget_s = args.max_ingest_minutes * 60
    rates: dict[str, float] = {}  # backend -> docs per second of its largest ingest so far
    for n in args.sizes:
        docs_dir: Path | None = None
        for backend in args.backends:
            rate = rates.get(backend) or rates.get("embedded")
            if n > args.always_run and rate and n / rate > budget_s:
                reason = (f"skipped: ingest estimated at {n / rate / 60:.0f} min "
                          f"({rate:.2f} docs/s measured), over the {args.max_ingest_minutes:g}"
                          f" min budget (--max-ingest-minutes)")
                log(f"{n} docs [{backend}]: {reason}")
                results["scale"].append({"docs": n, "backend": backend, "skipped": reason,
                                         "estimated_ingest_s": round(n / rate)})
                continue
            if docs_dir is None:
                log(f"{n} docs: writing the corpus")
                docs_dir = corpus.write_corpus(work / f"corpus-{n}", n)
            reference = backend == "embedded" and "ingest_vs_raw" not in results
            log(f"{n} docs [{backend}]: ingest and {args.probes} probes"
                + (", raw model throughput before and after" if reference else ""))
            try:
                row = scale_row(args, n, backend, docs_dir, work, reference)
            except Exception as exc:  # record and go on: one backend failing is a finding
                log(f"  failed: {exc!r}")
                results["scale"].append({"docs": n, "backend": backend,
                                         "error": f"{type(exc).__name__}: {exc}"})
                continue
            log(f"  ingest {row['ingest_s']:.1f} s, {row['chunks']} chunks; warm p50 "
                f"{row['p50_ms']:.1f} ms; accuracy {row['accuracy']:.0%}")
            rates[backend] = row["docs_per_s"]
            if reference:
                raw = row.pop("raw")
                results["ingest_vs_raw"] = {
                    "docs": n, "ingest_s": row["ingest_s"], "chunks": row["chunks"],
                    "ingest_docs_per_s": row["docs_per_s"],
                    "ingest_chunks_per_s": row["chunks_per_s"],
                    "ingest_chars_per_s": row["chars_per_s"],
                    "ingest_sentences_per_s": row["sentences_per_s"],
                    # same sentences, so the ratio of sentence rates is the ratio of times
                    "raw": raw, "ratio": round(row["sentences_per_s"] / raw["sentences_per_s"],
                                               3)}
            if "ingest_vs_raw" in results:
                row["vs_raw"] = round(row["sentences_per_s"]
                                      / results["ingest_vs_raw"]["raw"]["sentences_per_s"], 3)
            if backend == "embedded":
                log(f"  cold ask x{args.cold_runs_scale} on {n} docs")
                probe = corpus.sample_probes(n, 1)[0]
                cmd = ours_cmd(docs_dir, index_dir(work, n, backend), probe.question)
                cold = summarize_ours(cold_compare([Contender("ours", cmd)],
                                                   args.cold_runs_scale)["ours"], probe.answer)
                row["cold_wall_s"] = cold["wall_s_median"]
                row["cold_rss_mib"] = cold["rss_mib_median"]
                row["cold_load_ms"] = cold["timings_ms_median"].get("load")
            results["scale"].append(row)
        write_json(args.json_out, results)  # partial results survive an interrupted run
    for n in args.stand_in_sizes:
        log(f"{n} docs [embedded, stand-in vectors]: writing the corpus")
        docs_dir = corpus.write_corpus(work / f"corpus-{n}", n)
        log(f"{n} docs [embedded, stand-in vectors]: ingest with HashingEncoder, "
            f"{args.probes} probes with MiniLM")
        try:
            row = scale_row(args, n, "embedded", docs_dir, work, False, stand_in=True)
        except Exception as exc:
            log(f"  failed: {exc!r}")
            results["scale"].append({"docs": n, "backend": "embedded", "stand_in": True,
                                     "error": f"{type(exc).__name__}: {exc}"})
            continue
        log(f"  ingest {row['ingest_s']:.1f} s (stand-in); warm p50 {row['p50_ms']:.1f} ms")
        probe = corpus.sample_probes(n, 1)[0]
        cmd = ours_cmd(docs_dir, index_dir(work, n, "embedded", True), probe.question)
        cold = summarize_ours(cold_compare([Contender("ours", cmd)],
                                           args.cold_runs_scale)["ours"], probe.answer)
        row.update({"cold_wall_s": cold["wall_s_median"], "cold_rss_mib": cold["rss_mib_median"],
                    "cold_load_ms": cold["timings_ms_median"].get("load")})
        results["scale"].append(row)
        write_json(args.json_out, results)


def run_starter_scale(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    for n in args.starter_sizes:
        folder = work / f"corpus-{n}"
        docs_dir = corpus.write_corpus(folder, n)
        probes = corpus.sample_probes(n, args.probes)
        probe_file = work / f"starter-probes-{n}.jsonl"
        probe_file.write_text("".join(json.dumps(p.__dict__) + "\n" for p in probes))
        persist = work / f"starter-index-{n}"
        shutil.rmtree(persist, ignore_errors=True)
        out = work / f"starter-corpus-{n}.json"
        log(f"LlamaIndex starter on {n} docs: build and {len(probes)} probes")
        r = run_process([sys.executable, "-m", "benchmarks.starter", "corpus", "--seeds",
                         str(docs_dir), "--persist", str(persist), "--probes", str(probe_file),
                         "--out", str(out)], env=child_env(), cwd=str(ROOT), timeout=3600)
        if r.returncode != 0:
            results["starter_scale"].append({"docs": n, "error": r.stderr[-1000:]})
            continue
        data = json.loads(out.read_text())
        ms = [p["ms"] for p in data["probes"]]
        k = len(ms)
        results["starter_scale"].append({
            "docs": n, "backend": "embedded", "ingest_s": round(data["timings"]["index_s"], 2),
            "wall_s": round(r.wall_s, 1), "peak_rss_mib": round(r.max_rss_mib, 1),
            "probes": k, "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2),
            "accuracy": round(sum(p["found"] for p in data["probes"]) / k, 3),
            "source_hit": round(sum(p["source_hit"] for p in data["probes"]) / k, 3),
            "cited_chars_median": median([p["cited_chars"] for p in data["probes"]])})
        write_json(args.json_out, results)


# -- the run ---------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def assistant_location() -> str:
    import assistant

    return str(Path(assistant.__file__).parent)


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(results, indent=2, ensure_ascii=False).encode("utf-8"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                description="Benchmarks against the LlamaIndex starter.")
    p.add_argument("--quick", action="store_true",
                   help="corpus of 100 documents only and fewer runs (a fast check)")
    p.add_argument("--sizes", help="corpus sizes, comma-separated (default 100,1000,10000)")
    p.add_argument("--backends", default="embedded,server",
                   help="Chroma modes for the corpora: embedded, server (default both)")
    p.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    p.add_argument("--md-out", type=Path, help="also write the Markdown table to this file")
    p.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    p.add_argument("--seeds", type=Path, default=ROOT / "seeds", help="the seed article folder")
    p.add_argument("--cold-runs", type=int, help="measured cold runs per command (default 5)")
    p.add_argument("--warm", type=int, help="warm asks on the seed index (default 200)")
    p.add_argument("--probes", type=int, help="probe questions per corpus (default 100)")
    p.add_argument("--max-ingest-minutes", type=float, default=20.0,
                   help="skip a corpus larger than --always-run whose ingest is estimated "
                        "(from the sizes before it) to take longer (default 20)")
    p.add_argument("--always-run", type=int, default=1000,
                   help="corpora up to this size are never skipped (default 1000)")
    p.add_argument("--starter-sizes", help="corpus sizes for the starter too (default 100; "
                   "none with --quick)")
    p.add_argument("--stand-in-sizes",
                   help="corpus sizes to index with a stand-in encoder (hashed words, fast) "
                        "and query with MiniLM: query latency and memory at sizes whose real "
                        "ingest is out of reach; ingest time and accuracy are not comparable")
    p.add_argument("--sections", default="seed,scale,starter",
                   help="what to run: seed (cold, starter, warm), scale, starter (default all)")
    p.add_argument("--note", help="recorded with the results, e.g. the commit measured")
    p.add_argument("--no-starter", action="store_true",
                   help="skip the LlamaIndex starter (when the bench extra is not installed)")
    args = p.parse_args(argv)
    quick = args.quick

    def sizes(text: str | None, default: str) -> list[int]:
        text = default if text is None else text
        return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]

    args.sizes = sizes(args.sizes, "100" if quick else "100,1000,10000")
    args.starter_sizes = [] if args.no_starter else sizes(args.starter_sizes,
                                                          "" if quick else "100")
    args.stand_in_sizes = sizes(args.stand_in_sizes, "")
    args.sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    if "scale" not in args.sections:
        args.sizes, args.stand_in_sizes = [], []
    if "starter" not in args.sections:
        args.starter_sizes = []
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - {"embedded", "server"}:
        p.error("--backends takes embedded and/or server")
    args.cold_runs = args.cold_runs or (3 if quick else 5)
    args.cold_runs_scale = 2 if quick else 3
    args.warm = args.warm or (50 if quick else 200)
    args.probes = args.probes or (40 if quick else 100)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds.resolve()
    results: dict[str, Any] = {
        "meta": {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": args.quick,
                 "argv": sys.argv[1:], "python": platform.python_version(),
                 "platform": platform.platform(), "cpus": os.cpu_count(),
                 "loadavg_start": loadavg(), "versions": versions(),
                 "question": SEED_QUESTION, "expected": SEED_ANSWER, "note": args.note,
                 "assistant_package": assistant_location()},
        "scale": [], "starter_scale": [],
    }
    t_run = time.perf_counter()
    from assistant import Assistant

    try:
        if "seed" in args.sections:
            seed_index = work / "seed-index"
            shutil.rmtree(seed_index, ignore_errors=True)
            log("seed: assistant ingest")  # in its own process: see benchmarks/worker.py
            r = run_process([*assistant_cmd(), "ingest", "--seeds", str(seeds), "--index",
                             str(seed_index), "--json"], env=child_env(), cwd=str(ROOT))
            if r.returncode != 0:
                raise RuntimeError(f"assistant ingest failed ({r.returncode}): {r.stderr[-2000:]}")
            summary = json.loads(r.stdout)
            results["seed"] = {"docs": summary["added"], "chunks": summary["chunks"],
                               "ingest_s": round(summary["seconds"], 2),
                               "process_wall_s": round(r.wall_s, 2),
                               "process_peak_rss_mib": round(r.max_rss_mib, 1)}

            log(f"seed: cold asks, {args.cold_runs} rounds of assistant ask"
                + ("" if args.no_starter else " and the LlamaIndex starter (prebuilt, build)"))
            results["cold"] = cold_seed(args, seeds, seed_index, work)
            log("seed: -X importtime of a cold ask")
            results["cold_imports"] = import_profile(seeds, seed_index, SEED_QUESTION)

            log(f"seed: {args.warm} warm asks")
            assistant = Assistant(seeds_dir=seeds, index_dir=seed_index, mode="extractive")
            results["warm_seed"] = warm_asks(assistant, seed_questions(), args.warm)
            del assistant
            write_json(args.json_out, results)

        run_scale(args, work, results)
        run_starter_scale(args, work, results)
    finally:
        results["meta"]["loadavg_end"] = loadavg()
        results["meta"]["seconds"] = round(time.perf_counter() - t_run, 1)
        results["targets"] = targets(results)
        write_json(args.json_out, results)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    table = render_markdown(results)
    print(table)
    if args.md_out:
        args.md_out.write_text(table, encoding="utf-8")
    log(f"results in {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
