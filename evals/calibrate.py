"""Calibrate the abstention threshold: `python evals/calibrate.py`.

Runs every *dev* case (never a test case: the test splits are held out) with abstention
disabled, records the answerability stage's confidence (answerability.py: the estimated
probability that the chosen sentence answers), and prints abstention recall / false refusal /
correctness for a range of thresholds. The rule used for the default: among the
thresholds whose false-refusal rate stays within the 0.05 target on every set and at or under
0.045 (the target less a margin) on the pooled answerable cases, take those with the best
abstention recall, then of these those with the lowest pooled false refusal, and of these the
middle one: it sits furthest from the scores on either side, so unseen questions cross it least.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from assistant import Assistant
from assistant.evaluation.harness import load_cases, normalize

ROOT = Path(__file__).resolve().parent.parent
# The target is 0.05; calibrate with a margin, since unseen questions will not score exactly alike.
MAX_REFUSAL = 0.045
MAX_REFUSAL_PER_SET = 0.05


def main() -> int:
    sets = json.loads((ROOT / "evals" / "sets.json").read_text(encoding="utf-8"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in sets.items():
            corpus = ROOT / spec["corpus"]
            a = Assistant(seeds_dir=corpus, index_dir=Path(tmp) / name, abstain_threshold=0.0,
                          mode="extractive")
            a.ingest()
            for case in load_cases(ROOT / spec["cases"], corpus):
                if case["split"] != "dev":
                    continue
                ans = a.ask(case["question"], history=case.get("history"))
                ok = case["answerable"] and any(
                    normalize(g) in normalize(ans.text) for g in case["acceptable_answers"]
                )
                rows.append((ans.trace["confidence"], case["answerable"], ok, name))
    answerable = [r for r in rows if r[1]]
    unanswerable = [r for r in rows if not r[1]]
    names = list(dict.fromkeys(r[3] for r in rows))

    def share_below(t: float, cases: list[tuple[float, bool, bool, str]]) -> float:
        """Share of cases the threshold `t` abstains on (recall or false refusal)."""
        return sum(c < t for c, *_ in cases) / max(len(cases), 1)

    print("threshold  abstention_recall  false_refusal  correctness  worst_set_false_refusal")
    # (threshold, abstention recall, pooled false refusal) within the limits
    allowed: list[tuple[float, float, float]] = []
    for i in range(50, 951, 10):  # 0.05 to 0.95 in steps of 0.01
        t = i / 1000
        recall = share_below(t, unanswerable)
        pooled = share_below(t, answerable)
        worst = max(share_below(t, [r for r in answerable if r[3] == n]) for n in names)
        correct = sum(c >= t and ok for c, _, ok, _ in answerable) / max(len(answerable), 1)
        print(f"{t:9.3f}  {recall:17.3f}  {pooled:13.3f}  {correct:11.3f}  {worst:23.3f}")
        if pooled <= MAX_REFUSAL and worst <= MAX_REFUSAL_PER_SET:
            allowed.append((t, recall, pooled))
    if not allowed:
        print("no threshold keeps false refusal within the limits")
        return 1
    best = max(r for _, r, _ in allowed)
    least = min(f for _, r, f in allowed if r == best)
    tied = [t for t, r, f in allowed if r == best and f == least]
    chosen = tied[(len(tied) - 1) // 2]
    print(
        f"best abstention recall with pooled false refusal <= {MAX_REFUSAL} and every set's "
        f"<= {MAX_REFUSAL_PER_SET}: {best:.3f}; of these, the least false refusal ({least:.3f}) "
        f"from {tied[0]} to {tied[-1]}; middle: {chosen}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
