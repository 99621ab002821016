"""Calibrate the abstention threshold: `python evals/calibrate.py`.

Runs every eval case with abstention disabled, records the answerer's confidence (the best
adjusted evidence score), and prints abstention recall / false refusal / correctness for a range of
thresholds. The rule used for the default: the highest threshold whose false-refusal rate on the
pooled answerable cases stays at or under 0.045 (the target 0.05 less a margin).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from assistant import Assistant
from assistant.evaluation import load_cases, normalize

ROOT = Path(__file__).resolve().parent.parent
# The target is 0.05; calibrate with a margin, since unseen questions will not score exactly alike.
MAX_REFUSAL = 0.045


def main() -> int:
    sets = json.loads((ROOT / "evals" / "sets.json").read_text(encoding="utf-8"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in sets.items():
            corpus = ROOT / spec["corpus"]
            a = Assistant(seeds_dir=corpus, index_dir=Path(tmp) / name, abstain_threshold=-9.0)
            a.ingest()
            for case in load_cases(ROOT / spec["cases"], corpus):
                ans = a.ask(case["question"], history=case.get("history"))
                ok = case["answerable"] and any(
                    normalize(g) in normalize(ans.text) for g in case["acceptable_answers"]
                )
                rows.append((ans.trace["confidence"], case["answerable"], ok))
    answerable = [r for r in rows if r[1]]
    unanswerable = [r for r in rows if not r[1]]
    print("threshold  abstention_recall  false_refusal  correctness")
    chosen = None
    for i in range(20, 71, 2):
        t = i / 100
        recall = sum(c < t for c, _, _ in unanswerable) / max(len(unanswerable), 1)
        refusal = sum(c < t for c, _, _ in answerable) / max(len(answerable), 1)
        correct = sum(c >= t and ok for c, _, ok in answerable) / max(len(answerable), 1)
        print(f"{t:9.2f}  {recall:17.3f}  {refusal:13.3f}  {correct:11.3f}")
        if refusal <= MAX_REFUSAL:
            chosen = t
    print(f"highest threshold with false refusal <= {MAX_REFUSAL}: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
