"""Regression eval harness: deterministic metrics over JSONL eval sets, through the Python API."""

from __future__ import annotations

import json
import re
import string
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from .errors import BadInputError

REQUIRED = {
    "id": str,
    "question": str,
    "answerable": bool,
    "acceptable_answers": list,
    "evidence": list,
    "tags": list,
    "must_pass": bool,
}
TAGS = {
    "factoid",
    "numeric",
    "temporal",
    "paraphrase",
    "multi-hop",
    "unanswerable",
    "adversarial",
    "follow-up",
}


def normalize(text: str) -> str:
    """SQuAD-style: lower case, punctuation as spaces ("three-day" = "three day"), no articles."""
    text = text.lower().replace("’", "'").replace("“", '"').replace("”", '"')
    text = "".join(" " if c in string.punctuation else c for c in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def load_cases(path: Path, corpus: Path) -> list[dict[str, Any]]:
    """Read and validate a JSONL eval set; resolve each evidence quote to (source, start, end)."""
    from .documents import load_documents

    docs, _ = load_documents(corpus)
    cases, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        case = json.loads(line)
        for key, kind in REQUIRED.items():
            if not isinstance(case.get(key), kind):
                raise BadInputError(
                    f"{path}:{n}: field {key!r} is missing or not a {kind.__name__}.",
                    "Fix the eval case.",
                )
        if case["id"] in seen:
            raise BadInputError(f"{path}:{n}: duplicate id {case['id']!r}.", "Ids must be unique.")
        seen.add(case["id"])
        if set(case["tags"]) - TAGS:
            raise BadInputError(
                f"{path}:{n}: unknown tag(s) {set(case['tags']) - TAGS}.",
                f"Use tags from {sorted(TAGS)}.",
            )
        spans = []
        for quote in case["evidence"]:
            hits = [(d.source, d.text.find(quote)) for d in docs if quote in d.text]
            if not hits:
                raise BadInputError(
                    f"{path}:{n}: evidence quote of {case['id']} is not in the "
                    f"corpus: {quote[:60]!r}",
                    "Copy the quote exactly.",
                )
            spans.append((hits[0][0], hits[0][1], hits[0][1] + len(quote)))
        case["gold_spans"] = spans
        cases.append(case)
    return cases


def _overlap(a: tuple[str, int, int], b: tuple[str, int, int]) -> int:
    return max(0, min(a[2], b[2]) - max(a[1], b[1])) if a[0] == b[0] else 0


def _char_f1(cited: list[tuple[str, int, int]], gold: list[tuple[str, int, int]]) -> float:
    def chars(spans: list[tuple[str, int, int]]) -> set[tuple[str, int]]:
        return {(s, i) for s, a, b in spans for i in range(a, b)}

    c, g = chars(cited), chars(gold)
    inter = len(c & g)
    if not inter:
        return 0.0
    p, r = inter / len(c), inter / len(g)
    return 2 * p * r / (p + r)


def run_case(assistant: Any, case: dict[str, Any], corpus_texts: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ans = assistant.ask(case["question"], history=case.get("history"))
    latency = (time.perf_counter() - t0) * 1000
    cited = [(c.source, c.start, c.end) for c in ans.citations]
    valid = [corpus_texts.get(c.source, "")[c.start : c.end] == c.quote for c in ans.citations]
    gold = case["gold_spans"]
    norm_answer = normalize(ans.text)
    result: dict[str, Any] = {
        "id": case["id"],
        "question": case["question"],
        "tags": case["tags"],
        "answerable": case["answerable"],
        "must_pass": case["must_pass"],
        "answer": ans.text,
        "abstained": ans.abstained,
        "mode": ans.mode,
        "citations": [c.to_dict() for c in ans.citations],
        "latency_ms": latency,
        "citation_valid": all(valid),
        "n_citations": len(valid),
        "chars_cited": sum(c.end - c.start for c in ans.citations),
        "confidence": ans.trace.get("confidence"),
    }
    chunk_spans = ans.trace.get("chunk_spans", [])
    if case["answerable"]:
        golds = case["acceptable_answers"]
        result["correct"] = (not ans.abstained) and any(
            normalize(g) and normalize(g) in norm_answer for g in golds
        )
        result["f1"] = 0.0 if ans.abstained else max(token_f1(ans.text, g) for g in golds)
        result["evidence_hit"] = any(_overlap(c, g) for c in cited for g in gold)
        result["evidence_f1"] = _char_f1(cited, gold)
        ranks = [
            i
            for i, span in enumerate(chunk_spans, 1)
            if any(_overlap(tuple(span), g) for g in gold)
        ]
        result["retrieval_rank"] = ranks[0] if ranks else None
        result["passed"] = result["correct"] and result["evidence_hit"] and result["citation_valid"]
    else:
        result["correct"] = ans.abstained
        result["passed"] = ans.abstained
    return result


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 2)


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    ans = [r for r in results if r["answerable"]]
    una = [r for r in results if not r["answerable"]]
    answered = [r for r in results if not r["abstained"]]
    with_cit = [r for r in results if r["n_citations"]]
    ranks = [r["retrieval_rank"] for r in ans]
    lat = [r["latency_ms"] for r in results]
    return {
        "cases": len(results),
        "answer_correctness": _mean([float(r["correct"]) for r in ans]),
        "answer_f1": _mean([r["f1"] for r in ans]),
        "evidence_hit": _mean([float(r["evidence_hit"]) for r in ans]),
        "evidence_char_f1": _mean([r["evidence_f1"] for r in ans]),
        "citation_validity": _mean([float(r["citation_valid"]) for r in with_cit]) or 1.0,
        "abstention_recall": _mean([float(r["abstained"]) for r in una]),
        "false_refusal": _mean([float(r["abstained"]) for r in ans]),
        "mean_chars_cited": _mean([float(r["chars_cited"]) for r in answered]),
        "retrieval_hit@1": _mean([float(k is not None and k <= 1) for k in ranks]),
        "retrieval_hit@3": _mean([float(k is not None and k <= 3) for k in ranks]),
        "retrieval_hit@8": _mean([float(k is not None and k <= 8) for k in ranks]),
        "retrieval_mrr": _mean([1.0 / k if k else 0.0 for k in ranks]),
        "latency_p50_ms": _pct(lat, 0.5),
        "latency_p95_ms": _pct(lat, 0.95),
    }


def run_set(
    name: str, cases_path: Path, corpus: Path, work: Path, **assistant_kwargs: Any
) -> dict[str, Any]:
    """Ingest the set's corpus into a fresh index and run every case through `Assistant.ask`."""
    from .core import Assistant

    cases = load_cases(cases_path, corpus)
    assistant = Assistant(seeds_dir=corpus, index_dir=work / name, **assistant_kwargs)
    assistant.ingest()
    texts = {
        d: (corpus / d).read_text(encoding="utf-8")
        for d in {s for c in cases for s, _, _ in c["gold_spans"]}
    }
    from .documents import load_documents

    texts.update({d.source: d.text for d in load_documents(corpus)[0]})
    assistant.ask("warm-up question")  # loads the model and index outside the timings
    results = [run_case(assistant, c, texts) for c in cases]
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        for t in r["tags"]:
            by_tag[t].append(r)
    return {
        "set": name,
        "overall": aggregate(results),
        "by_tag": {t: aggregate(rs) for t, rs in sorted(by_tag.items())},
        "results": results,
    }


def find_sets_file() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (base / "evals" / "sets.json").exists():
            return base / "evals" / "sets.json"
    raise BadInputError("Cannot find evals/sets.json.", "Run assistant eval from the project root.")


METRICS_SHOWN = [
    "answer_correctness",
    "evidence_hit",
    "citation_validity",
    "abstention_recall",
    "false_refusal",
    "mean_chars_cited",
    "retrieval_hit@3",
    "retrieval_mrr",
    "latency_p50_ms",
]


def format_table(reports: list[dict[str, Any]]) -> str:
    head = "| set | cases | " + " | ".join(METRICS_SHOWN) + " |"
    lines = [head, "|" + "---|" * (len(METRICS_SHOWN) + 2)]
    for rep in reports:
        o = rep["overall"]
        lines.append(
            f"| {rep['set']} | {o['cases']} | "
            + " | ".join("" if o[m] is None else f"{o[m]:g}" for m in METRICS_SHOWN)
            + " |"
        )
    return "\n".join(lines)


# Metrics where higher is better, and the drop the gate tolerates (absolute).
GATED = {
    "answer_correctness": 0.02,
    "evidence_hit": 0.02,
    "citation_validity": 0.0,
    "abstention_recall": 0.03,
    "retrieval_hit@3": 0.02,
}
# Metrics where lower is better.
GATED_LOWER = {"false_refusal": 0.02, "mean_chars_cited": 30.0}


def compare(reports: list[dict[str, Any]], baseline: dict[str, Any]) -> list[str]:
    """Regressions of aggregate metrics beyond tolerance, and must_pass cases that fail."""
    problems = []
    for rep in reports:
        base = baseline.get("sets", {}).get(rep["set"])
        if base is None:
            continue
        for metric, tol in GATED.items():
            now, was = rep["overall"].get(metric), base["overall"].get(metric)
            if now is not None and was is not None and now < was - tol:
                problems.append(
                    f"{rep['set']}: {metric} fell from {was:g} to {now:g} (tolerance {tol:g})"
                )
        for metric, tol in GATED_LOWER.items():
            now, was = rep["overall"].get(metric), base["overall"].get(metric)
            if now is not None and was is not None and now > was + tol:
                problems.append(
                    f"{rep['set']}: {metric} rose from {was:g} to {now:g} (tolerance {tol:g})"
                )
        passed_before = set(base.get("passed", []))
        for r in rep["results"]:
            if not r["passed"] and r["id"] in passed_before:
                problems.append(
                    f"{rep['set']}: {r['id']} regressed: {r['question']!r} -> {r['answer'][:120]!r}"
                )
    return problems


def baseline_of(reports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "sets": {
            rep["set"]: {
                "overall": {k: v for k, v in rep["overall"].items() if not k.startswith("latency")},
                "by_tag": {
                    t: {k: v for k, v in a.items() if not k.startswith("latency")}
                    for t, a in rep["by_tag"].items()
                },
                "passed": sorted(r["id"] for r in rep["results"] if r["passed"]),
            }
            for rep in reports
        }
    }


def run_cli(args: Any) -> int:
    sets_file = find_sets_file()
    root = sets_file.parent.parent
    sets = json.loads(sets_file.read_text(encoding="utf-8"))
    names = args.sets or list(sets)
    unknown = [n for n in names if n not in sets]
    if unknown:
        raise BadInputError(
            f"Unknown eval set(s): {', '.join(unknown)}.", f"Choose from: {', '.join(sets)}."
        )
    with tempfile.TemporaryDirectory(prefix="assistant-eval-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        reports = [
            run_set(n, root / sets[n]["cases"], root / sets[n]["corpus"], work) for n in names
        ]
    print(format_table(reports))
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(reports, indent=2, ensure_ascii=False), encoding="utf-8"
        )
    baseline_path = Path(args.baseline) if args.baseline else root / "evals" / "baseline.json"
    if args.update_baseline:
        baseline_path.write_text(
            json.dumps(baseline_of(reports), indent=2) + "\n", encoding="utf-8"
        )
        print(f"baseline written to {baseline_path}")
        return 0
    problems = [
        f"{rep['set']}: must_pass case {r['id']} failed: {r['question']!r} -> {r['answer'][:120]!r}"
        for rep in reports
        for r in rep["results"]
        if r["must_pass"] and not r["passed"]
    ]
    if baseline_path.exists():
        problems += compare(reports, json.loads(baseline_path.read_text(encoding="utf-8")))
    else:
        print(f"note: no baseline at {baseline_path}; run with --update-baseline to create it.")
    if problems:
        print("\nEVAL GATE FAILED:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 7
    print("eval gate passed")
    return 0
