"""Calibrate the LLM gate (`llm_gate`, answering/llm_answer.py).

    python evals/calibrate_llm_gate.py


For every dev case of the held-out sets, the answerability stage's LLM-mode confidence
(`answerability.decide(..., mode="llm")`: the relevance model over the best candidate), which
the gate compares to `llm_gate`. The gate only spares the model questions nothing retrieved is
about, so it is set low: the highest threshold that keeps every answerable dev case (less a
margin of 0.03), with the share of unanswerable dev cases it stops printed beside it.
Test cases are never read.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from assistant import Assistant
from assistant.answering.answerability import decide

ROOT = Path(__file__).resolve().parent.parent
SETS = {"faq": "faq", "policy": "policy", "abstracts": "abstracts", "report": "report_src"}
MARGIN = 0.03


def main() -> int:
    rows = []  # (set, answerable, relevance)
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in SETS.items():
            corpus = ROOT / "evals" / "corpora" / folder
            a = Assistant(seeds_dir=corpus, index_dir=Path(tmp) / name, mode="extractive")
            a.ingest()
            a.ask("warm-up question")
            engine = a._ensure_engine()
            for line in (ROOT / "evals" / f"{name}_qa.jsonl").read_text().splitlines():
                case = json.loads(line) if line.strip() else None
                if not case or case.get("split") != "dev":
                    continue
                q = case["question"]
                retrieval = engine.retriever.retrieve(q)
                found = engine.answerer.candidates(q, retrieval.question_tokens,
                                                   retrieval.evidence)
                best = decide(q, found, mode="llm", threshold=0.0).confidence
                rows.append((name, bool(case["answerable"]), best))
    answerable = sorted(r for _, ok, r in rows if ok)
    unanswerable = sorted(r for _, ok, r in rows if not ok)
    print(f"{len(answerable)} answerable, {len(unanswerable)} unanswerable dev cases")
    print("answerable relevance, lowest five:", [round(r, 3) for r in answerable[:5]])
    print("unanswerable relevance:", [round(r, 3) for r in unanswerable])
    for t in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
        kept = sum(r >= t for r in answerable) / len(answerable)
        stopped = sum(r < t for r in unanswerable) / len(unanswerable)
        print(f"gate {t:.2f}: answerable kept {kept:.3f}, unanswerable stopped {stopped:.3f}")
    print(f"suggested llm_gate: {max(0.0, round(answerable[0] - MARGIN, 2)):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
