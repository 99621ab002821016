"""Regression eval harness: deterministic metrics over JSONL eval sets, through the Python API."""

from __future__ import annotations

import json
import re
import string
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.errors import BadInputError, ConfigError
from assistant.evaluation.report import (
    markdown_report,
    overall_table,
    risk_coverage_path,
    split_table,
    tag_tables,
    write_plot,
    write_risk_coverage_plot,
)

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
SPLITS = ("dev", "test")  # a case's `split`; a case without one counts as dev


def normalize(text: str) -> str:
    """SQuAD-style: lower case, punctuation as spaces ("three-day" = "three day"), no articles.
    Punctuation is any Unicode punctuation, so "5–10 days" (en dash) = "5-10 days": a model
    retyping a range with a hyphen says the same thing."""
    text = text.lower()
    text = "".join(
        " " if c in string.punctuation or unicodedata.category(c).startswith("P") else c
        for c in text
    )
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
    from assistant.documents.reader import load_documents

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
        split = case.setdefault("split", "dev")
        if split not in SPLITS:
            raise BadInputError(
                f"{path}:{n}: split {split!r} of {case['id']} is neither dev nor test.",
                'Write "split": "dev" or "split": "test".',
            )
        spans = []
        for quote in case["evidence"]:
            hits = [(d.source, *span) for d in docs if (span := find_evidence(d.text, quote))]
            if not hits:
                raise BadInputError(
                    f"{path}:{n}: evidence quote of {case['id']} is not in the "
                    f"corpus: {quote[:60]!r}",
                    "Copy the quote exactly.",
                )
            spans.append(hits[0])
        case["gold_spans"] = spans
        cases.append(case)
    return cases


def find_evidence(text: str, quote: str) -> tuple[int, int] | None:
    """The span of `quote` in `text`: exactly, else with any whitespace run matching any other.

    A PDF's extracted text breaks lines and table rows where the page did ("Q1 2025\n\n99.96%"),
    while an evidence string is written with single spaces; the span is in the original text.
    """
    at = text.find(quote)
    if at >= 0:
        return at, at + len(quote)
    words = quote.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    m = re.search(pattern, text)
    return (m.start(), m.end()) if m else None


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
        "split": case.get("split", "dev"),
        "tags": case["tags"],
        "answerable": case["answerable"],
        "must_pass": case["must_pass"],
        "expected": case["acceptable_answers"],
        "answer": ans.text,
        "abstained": ans.abstained,
        "mode": ans.mode,
        "citations": [c.to_dict() for c in ans.citations],
        "latency_ms": latency,
        "citation_valid": all(valid),
        "n_citations": len(valid),
        "chars_cited": sum(c.end - c.start for c in ans.citations),
        "confidence": ans.trace.get("confidence"),
        # LLM mode: the answer call's prompt tokens (the cost on a CPU) and what grounding left out
        "prompt_tokens": (ans.trace.get("answer_usage") or {}).get("prompt_tokens"),
        "unsupported": list(ans.unsupported),
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
        # what the answer would be at any threshold: the quote it gives, or the candidate it held
        candidate = normalize(ans.trace.get("candidate", "")) if ans.abstained else norm_answer
        result["candidate_correct"] = any(normalize(g) and normalize(g) in candidate for g in golds)
    else:
        result["correct"] = ans.abstained
        result["passed"] = ans.abstained
        result["candidate_correct"] = False  # any answer to an unanswerable question is wrong
    return result


def risk_coverage(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The selective-QA curve: answer the most confident share of the cases, and how many of
    those answers are wrong (an answer to an unanswerable question is wrong).

    Cases are taken in order of confidence, best first; `aurc` is the mean risk over all
    coverages (lower is better; 0 when every right answer is more confident than every wrong one).
    """
    scored = [r for r in results if r.get("confidence") is not None]
    scored.sort(key=lambda r: -r["confidence"])
    points, wrong = [], 0
    for k, r in enumerate(scored, 1):
        wrong += not r["candidate_correct"]
        points.append((round(k / len(scored), 4), round(wrong / k, 4)))
    aurc = round(sum(risk for _, risk in points) / len(points), 4) if points else None
    return {"aurc": aurc, "curve": points}


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
    name: str,
    cases_path: Path,
    corpus: Path,
    work: Path,
    *,
    mode: str | None = None,
    assistant_factory: Callable[..., Any] | None = None,
    **assistant_kwargs: Any,
) -> dict[str, Any]:
    """Ingest the set's corpus into a fresh index and run every case through `Assistant.ask`.

    `mode` goes to the assistant (None: `ASSISTANT_MODE`, else auto). `assistant_factory` builds
    it from keyword arguments (default: `Assistant`); tests pass a deliberately broken one.
    """
    from assistant.core import Assistant
    from assistant.documents.reader import load_documents, read_text

    cases = load_cases(cases_path, corpus)
    factory = assistant_factory or Assistant
    assistant = factory(seeds_dir=corpus, index_dir=work / name, mode=mode, **assistant_kwargs)
    assistant.ingest()
    texts = {
        d: read_text(corpus / d)
        for d in {s for c in cases for s, _, _ in c["gold_spans"]}
    }
    texts.update({d.source: d.text for d in load_documents(corpus)[0]})
    try:
        assistant.ask("warm-up question")  # loads the model and index outside the timings
        results = [run_case(assistant, c, texts) for c in cases]
    finally:
        close = getattr(assistant, "close", None)
        if close is not None:  # local mode: one model server at a time
            close()
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        for t in r["tags"]:
            by_tag[t].append(r)
    report: dict[str, Any] = {"set": name, "mode": assistant.mode}
    if assistant.mode in ("llm", "local"):
        report["model"] = getattr(assistant, "model_name", None) or assistant.settings.llm_model
    report.update(
        {
            "overall": aggregate(results),
            **split_figures(results),
            "by_tag": {t: aggregate(rs) for t, rs in sorted(by_tag.items())},
            "results": results,
        }
    )
    return report


def split_figures(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregates of each split, and the risk-coverage curve of all cases and of each split."""
    parts = {s: [r for r in results if r.get("split", "dev") == s] for s in SPLITS}
    return {
        "splits": {s: aggregate(rs) for s, rs in parts.items() if rs},
        "selective": {
            "all": risk_coverage(results),
            **{s: risk_coverage(rs) for s, rs in parts.items() if rs},
        },
    }


def pooled(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """All sets' cases as one: overall, per split, and the risk-coverage curves."""
    results = [r for rep in reports for r in rep["results"]]
    return {"set": "pooled", "overall": aggregate(results), **split_figures(results)}


def find_sets_file() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "evals" / "sets.json").exists():
            return base / "evals" / "sets.json"
    raise BadInputError("Cannot find evals/sets.json.", "Run assistant eval from the project root.")


def load_sets(sets_file: Path) -> dict[str, dict[str, Path]]:
    """Eval sets by name: `{"cases": Path, "corpus": Path}`.

    Relative paths resolve against the folder above the sets file's folder (the project root for
    `evals/sets.json`); absolute paths are kept as they are.
    """
    root = sets_file.resolve().parent.parent
    try:
        raw = json.loads(sets_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"Cannot read the eval sets file {sets_file}: {exc}",
            'It must be JSON: {"name": {"cases": "path.jsonl", "corpus": "folder"}}.',
        ) from None
    sets = {}
    for name, spec in raw.items():
        if not (
            isinstance(spec, dict)
            and isinstance(spec.get("cases"), str)
            and isinstance(spec.get("corpus"), str)
        ):
            raise BadInputError(
                f'{sets_file}: set {name!r} needs a "cases" file and a "corpus" folder.',
                'Write it as {"cases": "path.jsonl", "corpus": "folder"}.',
            )
        sets[name] = {"cases": root / spec["cases"], "corpus": root / spec["corpus"]}
    return sets


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


def metric_changes(reports: list[dict[str, Any]], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Each gated metric of each set next to its baseline figure, and whether it is tolerated."""
    rows = []
    for rep in reports:
        base = baseline.get("sets", {}).get(rep["set"])
        if base is None:
            continue
        # the whole set, and each split (dev and test are gated alike)
        parts = [(rep["set"], rep["overall"], base["overall"])] + [
            (f"{rep['set']} ({split})", agg, base.get("splits", {}).get(split))
            for split, agg in rep.get("splits", {}).items()
        ]
        for label, agg, base_agg in parts:
            if base_agg is None:
                continue
            for metric, tol, higher in [
                *((m, t, True) for m, t in GATED.items()),
                *((m, t, False) for m, t in GATED_LOWER.items()),
            ]:
                now, was = agg.get(metric), base_agg.get(metric)
                if now is None or was is None:
                    continue
                ok = not (now < was - tol) if higher else not (now > was + tol)
                rows.append(
                    {
                        "set": label,
                        "metric": metric,
                        "was": was,
                        "now": now,
                        "tolerance": tol,
                        "higher_is_better": higher,
                        "ok": ok,
                    }
                )
    return rows


def baseline_cases(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A baseline set's cases by id: `{"passed": bool, "answer": str | None}`.

    Older baselines list only the ids that passed (`"passed"`), without answers.
    """
    if "cases" in base:
        return base["cases"]
    return {cid: {"passed": True, "answer": None} for cid in base.get("passed", [])}


def failure_reasons(result: dict[str, Any]) -> list[str]:
    """Why a case fails, in words (empty when it passes)."""
    if result["passed"]:
        return []
    if not result["answerable"]:
        return ["answered although the documents do not say"]
    if result["abstained"]:
        return ["abstained"]
    reasons = []
    if not result["correct"]:
        reasons.append("no acceptable answer in the text")
    if not result["evidence_hit"]:
        reasons.append("no citation overlaps the gold evidence")
    if not result["citation_valid"]:
        reasons.append("a citation does not match the document text")
    return reasons


# What a test-split case shows in the gate's output unless asked (`--show-test-cases`): its id and
# that it changed, never its question or answers. The test splits are held out: reading their
# misses while changing the engine tunes it to them (docs/evaluation.md, "Held-out protocol").
HELD_OUT = "(a held-out test case: not shown; --show-test-cases shows it)"


def _withheld(result: dict[str, Any], show_test: bool) -> bool:
    """Whether a case's question and answers stay out of the gate's output."""
    return result.get("split") == "test" and not show_test


def case_diff(
    rep: dict[str, Any], base: dict[str, Any], *, show_test: bool = False
) -> dict[str, Any]:
    """Cases that regressed or were fixed since the baseline, with both answers (a test-split
    case's question and answers only with `show_test`)."""
    before = baseline_cases(base)
    diff: dict[str, Any] = {"regressed": [], "fixed": [], "new": [], "changed": 0}
    for r in rep["results"]:
        was = before.get(r["id"])
        if was is None:
            diff["new"].append(r["id"])
            continue
        hidden = _withheld(r, show_test)
        entry = {
            "id": r["id"],
            "hidden": hidden,
            "question": HELD_OUT if hidden else r["question"],
            "tags": r["tags"],
            "must_pass": r["must_pass"],
            "expected": [] if hidden else r.get("expected", []),
            "why": [] if hidden else failure_reasons(r),
            "was": None if hidden else was.get("answer"),
            "now": "" if hidden else r["answer"],
        }
        if was["passed"] and not r["passed"]:
            diff["regressed"].append(entry)
        elif r["passed"] and not was["passed"]:
            diff["fixed"].append(entry)
        elif was.get("answer") is not None and was["answer"] != r["answer"]:
            diff["changed"] += 1
    return diff


def _run_label(d: dict[str, Any]) -> str:
    return f"{d.get('mode')} mode" + (f", model {d['model']}" if d.get("model") else "")


def _aggregate_problems(reports: list[dict[str, Any]], baseline: dict[str, Any]) -> list[str]:
    """A baseline from another mode or model, and aggregates beyond tolerance."""
    problems = []
    if reports and baseline.get("mode"):
        run = {"mode": reports[0].get("mode"), "model": reports[0].get("model")}
        if (baseline.get("mode"), baseline.get("model")) != (run["mode"], run["model"]):
            problems.append(
                f"the baseline was recorded in {_run_label(baseline)}, this run is "
                f"{_run_label(run)}: keep one baseline per model "
                "(--baseline evals/baseline-<model>.json)"
            )
    for c in metric_changes(reports, baseline):
        if not c["ok"]:
            verb = "fell" if c["higher_is_better"] else "rose"
            problems.append(
                f"{c['set']}: {c['metric']} {verb} from {c['was']:g} to {c['now']:g} "
                f"(tolerance {c['tolerance']:g})"
            )
    return problems


def compare(
    reports: list[dict[str, Any]], baseline: dict[str, Any], *, show_test: bool = False
) -> list[str]:
    """Regressions of aggregate metrics beyond tolerance, and cases that passed and fail now."""
    problems = _aggregate_problems(reports, baseline)
    for rep in reports:
        base = baseline.get("sets", {}).get(rep["set"])
        if base is None:
            continue
        for case in case_diff(rep, base, show_test=show_test)["regressed"]:
            if case["hidden"]:
                problems.append(f"{rep['set']}: {case['id']} regressed {HELD_OUT}")
                continue
            problems.append(
                f"{rep['set']}: {case['id']} regressed: {case['question']!r} -> "
                f"{case['now'][:120]!r}"
            )
    return problems


def _must_pass_failures(reports: list[dict[str, Any]], show_test: bool = False) -> list[str]:
    out = []
    for rep in reports:
        for r in rep["results"]:
            if not r["must_pass"] or r["passed"]:
                continue
            if _withheld(r, show_test):
                out.append(f"{rep['set']}: must_pass case {r['id']} failed {HELD_OUT}")
            else:
                out.append(f"{rep['set']}: must_pass case {r['id']} failed: {r['question']!r} -> "
                           f"{r['answer'][:120]!r}")
    return out


def gate(
    reports: list[dict[str, Any]], baseline: dict[str, Any] | None, *, show_test: bool = False
) -> list[str]:
    """Everything that fails the gate: failing must_pass cases, then `compare` (a test-split
    case by its id only, unless `show_test`)."""
    return _must_pass_failures(reports, show_test) + compare(
        reports, baseline or {}, show_test=show_test
    )


def gate_summary(
    reports: list[dict[str, Any]],
    baseline: dict[str, Any] | None,
    diffs: dict[str, Any],
    *,
    show_test: bool = False,
) -> list[str]:
    """The gate's problems for the report: as `gate`, but regressed cases as a count per set."""
    summary = _must_pass_failures(reports, show_test) + _aggregate_problems(
        reports, baseline or {}
    )
    return summary + [
        f"{name}: {len(d['regressed'])} case(s) that passed in the baseline fail now "
        "(listed under Cases against the baseline)"
        for name, d in diffs.items()
        if d["regressed"]
    ]


def baseline_of(
    reports: list[dict[str, Any]], previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The baseline file's content: figures without latency, and each case's verdict and answer.

    Sets that were not run keep their figures from `previous` (when it was recorded in the same
    mode), so `--set NAME --update-baseline` updates one set only.
    """
    run = {k: reports[0][k] for k in ("mode", "model") if reports and reports[0].get(k)}
    kept = {}
    if previous and (previous.get("mode"), previous.get("model")) in (
        (run.get("mode"), run.get("model")),
        (None, None),
    ):
        kept = previous.get("sets", {})
    sets = {
        rep["set"]: {
            "overall": {k: v for k, v in rep["overall"].items() if not k.startswith("latency")},
            "splits": {
                split: {k: v for k, v in a.items() if not k.startswith("latency")}
                for split, a in rep.get("splits", {}).items()
            },
            "aurc": {split: c["aurc"] for split, c in rep.get("selective", {}).items()},
            "by_tag": {
                t: {k: v for k, v in a.items() if not k.startswith("latency")}
                for t, a in rep["by_tag"].items()
            },
            "cases": {
                r["id"]: {"passed": r["passed"], "answer": r["answer"]} for r in rep["results"]
            },
        }
        for rep in reports
    }
    return {**run, "sets": {**kept, **sets}}


_CASE_LINES = re.compile(r'\{\n\s*"passed": (true|false),\n\s*"answer": (.*)\n\s*\}')


def dump_baseline(baseline: dict[str, Any]) -> str:
    """The baseline as JSON text: indented, one line per case, so a changed answer diffs as one."""
    text = json.dumps(baseline, indent=2, ensure_ascii=False)
    return _CASE_LINES.sub(r'{"passed": \1, "answer": \2}', text) + "\n"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_baseline(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"Cannot read the baseline {path}: {exc}",
            "Restore it from git, or rewrite it with: assistant eval --update-baseline",
        ) from None


def _require_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(
            "--plot needs the matplotlib package, which is not installed.",
            "Install it with: pip install 'assistant[eval]'",
        )


def run_cli(
    args: Any, *, assistant_factory: Callable[..., Any] | None = None, **assistant_kwargs: Any
) -> int:
    """`assistant eval`: run the sets, print the tables, write the report, gate (exit 7 on failure).

    `assistant_factory` and `assistant_kwargs` go to `run_set` (tests inject a broken assistant).
    """
    sets_file = Path(args.sets_file) if getattr(args, "sets_file", None) else find_sets_file()
    sets = load_sets(sets_file)
    names = args.sets or list(sets)
    unknown = [n for n in names if n not in sets]
    if unknown:
        raise BadInputError(
            f"Unknown eval set(s): {', '.join(unknown)}.", f"Choose from: {', '.join(sets)}."
        )
    plot, report_md = getattr(args, "plot", None), getattr(args, "report_md", None)
    if plot:
        _require_matplotlib()  # before the minutes of running, not after
    baseline_path = Path(args.baseline) if args.baseline else sets_file.parent / "baseline.json"
    baseline = _read_baseline(baseline_path)
    with tempfile.TemporaryDirectory(prefix="assistant-eval-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        reports = [
            run_set(
                n,
                sets[n]["cases"],
                sets[n]["corpus"],
                work,
                mode=getattr(args, "mode", None),
                assistant_factory=assistant_factory,
                **assistant_kwargs,
            )
            for n in names
        ]
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(reports, indent=2, ensure_ascii=False), encoding="utf-8"
        )

    notes, diffs = [], {}
    show_test = bool(getattr(args, "show_test_cases", False))
    if baseline is None:
        notes.append(
            f"no baseline at {_shown(baseline_path)}; run with --update-baseline to create it."
        )
    else:
        for rep in reports:
            base = baseline.get("sets", {}).get(rep["set"])
            if base is None:
                notes.append(
                    f"the baseline has no figures for set {rep['set']!r}: only its "
                    "must_pass cases are gated."
                )
            else:
                diffs[rep["set"]] = case_diff(rep, base, show_test=show_test)
    problems = [] if args.update_baseline else gate(reports, baseline, show_test=show_test)

    print(overall_table(reports))
    print()
    print(split_table(reports, pooled(reports)))
    print()
    print(tag_tables(reports))
    print()
    for name, d in diffs.items():
        print(
            f"{name}: {len(d['regressed'])} regressed, {len(d['fixed'])} fixed against "
            f"{_shown(baseline_path)}"
        )
    for note in notes:
        print(f"note: {note}")
    if report_md:
        text = markdown_report(
            reports,
            problems=[]
            if args.update_baseline
            else gate_summary(reports, baseline, diffs, show_test=show_test),
            changes=metric_changes(reports, baseline or {}),
            diffs=diffs,
            notes=notes,
            baseline_label=_shown(baseline_path),
            updated=args.update_baseline,
            pooled=pooled(reports),
        )
        Path(report_md).write_text(text, encoding="utf-8")
        print(f"report written to {report_md}")
    if plot:
        write_plot(reports, Path(plot))
        write_risk_coverage_plot([*reports, pooled(reports)], risk_coverage_path(Path(plot)))
        print(f"plot written to {plot} and {risk_coverage_path(Path(plot))}")
    if args.update_baseline:
        baseline_path.write_text(dump_baseline(baseline_of(reports, baseline)), encoding="utf-8")
        print(f"baseline written to {_shown(baseline_path)}")
        return 0
    if problems:
        print("\nEVAL GATE FAILED:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 7
    print("eval gate passed")
    return 0
