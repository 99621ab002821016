"""Calibrate the answer check (`llm_answer_min`: P(yes) of "does the source answer this question?").

    python evals/calibrate_llm_answers.py [--every K] [--out rows.json] [--rows rows.json]

Runs every dev case (every K-th with --every) of the four held-out sets through local mode (the
`local` extra's model, or ASSISTANT_LOCAL_MODEL) with the check asked but never refusing, then
asks it of every shown claim the run did not reach. For each threshold it replays what the
answer would be (the first claim at or above it, and the claims after it; none: an abstention)
and scores it with the eval harness's rule. The suggested threshold (on a 0.05 grid: the dev
sets are small) has the best balanced accuracy, the mean of the answerable cases' correctness and
the unanswerable cases' abstention (the two rates the targets name); ties go to the lowest.
Rerun it whenever the engine, the prompts or the model change (`--rows` replays a saved run
without the model). Test cases are never read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from assistant import Assistant
from assistant.answering.llm_answer import answer_check_messages
from assistant.evaluation.harness import normalize

ROOT = Path(__file__).resolve().parent.parent
SETS = {"faq": "faq", "policy": "policy", "abstracts": "abstracts", "report": "report_src"}
SEEN = 1e-6  # asked, never refusing: every answer is seen
SHOWN = ("cited", "realigned", "aligned")
GRID = [round(0.05 * i, 2) for i in range(1, 20)]


def dev_cases(name: str, every: int) -> list[dict[str, Any]]:
    lines = (ROOT / "evals" / f"{name}_qa.jsonl").read_text(encoding="utf-8").splitlines()
    cases = [json.loads(ln) for ln in lines if ln.strip()]
    return [c for c in cases if c.get("split") == "dev"][:: max(every, 1)]


def claims_with_p(model: Any, answer: Any) -> list[tuple[str, float]]:
    """Each shown claim of the answer (in order) with P(its cited source answers the question)."""
    out = []
    question = answer.trace.get("search_text", answer.question)
    for step in answer.trace.get("sentences", []):
        if step.get("how") not in SHOWN:
            continue
        p = step.get("p_answers")
        if p is None:  # after the first answer: not asked at run time
            evidence = [answer.citations[n - 1].quote for n in step["cited"]]
            result = model.judge(answer_check_messages(evidence, question))
            p = result[0] if result else 1.0
        out.append((step["sentence"], float(p)))
    return out


def replay(case: dict[str, Any], claims: list[tuple[str, float]], t: float) -> bool:
    """Whether the case is right when the answer needs P(answers) >= t."""
    first = next((i for i, (_, p) in enumerate(claims) if p >= t), None)
    if first is None:
        return not case["answerable"]
    if not case["answerable"]:
        return False
    text = normalize(" ".join(c for c, _ in claims[first:]))
    return any(normalize(g) and normalize(g) in text for g in case["acceptable_answers"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--every", type=int, default=1, help="keep every k-th dev case")
    p.add_argument("--out", type=Path, help="write the per-case rows here (JSON)")
    p.add_argument("--rows", type=Path, help="replay the rows of an earlier --out, no model")
    args = p.parse_args()
    if args.rows:
        report(json.loads(args.rows.read_text(encoding="utf-8")))
        return 0
    from assistant.config import Settings
    from assistant.llm.local import LocalChatModel

    model = LocalChatModel.from_settings(Settings.load(mode="local"))
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, folder in SETS.items():
                a = Assistant(
                    seeds_dir=ROOT / "evals" / "corpora" / folder,
                    index_dir=Path(tmp) / name,
                    mode="local",
                    chat_model=model,
                    llm_answer_min=SEEN,
                )
                a.ingest()
                for case in dev_cases(name, args.every):
                    ans = a.ask(case["question"])
                    claims = claims_with_p(model, ans) if not ans.abstained else []
                    check = ans.trace.get("answer_check") or {}
                    rows.append(
                        {
                            "set": name,
                            "id": case["id"],
                            "answerable": case["answerable"],
                            "claims": claims,
                            "gate": ans.trace.get("gate"),
                            "prompt_tokens": (ans.trace.get("answer_usage") or {}).get(
                                "prompt_tokens"
                            ),
                            "check_ms": ans.timings_ms.get("answer_check"),
                            "check_asked": check.get("asked", 0),
                            "total_ms": ans.timings_ms.get("total"),
                            "case": case,
                        }
                    )
                    print(
                        f"{case['id']}: {[round(q, 3) for _, q in claims]}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        model.close()
    report(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


def report(rows: list[dict[str, Any]]) -> None:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    print(f"{len(answerable)} answerable, {len(unanswerable)} unanswerable dev cases")
    best = (-1.0, 0.0)
    for t in [0.0, *GRID]:
        right = sum(replay(r["case"], r["claims"], t) for r in rows)
        correct = sum(replay(r["case"], r["claims"], t) for r in answerable)
        refused = sum(not any(q >= t for _, q in r["claims"]) for r in answerable)
        abstained = sum(replay(r["case"], r["claims"], t) for r in unanswerable)
        balanced = (correct / max(1, len(answerable)) + abstained / max(1, len(unanswerable))) / 2
        print(
            f"min {t:.2f}: correct {correct}/{len(answerable)}, false refusal "
            f"{refused}/{len(answerable)}, abstention {abstained}/{len(unanswerable)}, "
            f"right {right}/{len(rows)}, balanced accuracy {balanced:.3f}"
        )
        if balanced > best[0] + 1e-9:
            best = (balanced, t)
    tokens = [r["prompt_tokens"] for r in rows if r["prompt_tokens"]]
    checked = [r for r in rows if r["check_asked"]]
    if tokens:
        print(
            f"answer-call prompt tokens p50 {statistics.median(tokens):.0f} ({len(tokens)} answers)"
        )
    if checked:
        per = [r["check_ms"] / r["check_asked"] for r in checked]
        print(
            f"answer check: {sum(r['check_asked'] for r in checked)} asked over "
            f"{len(checked)} answers, p50 {statistics.median(per):.0f} ms each"
        )
    print(f"suggested llm_answer_min: {best[1]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
