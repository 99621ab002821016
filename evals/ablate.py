"""Each signal switched off, measured: `python evals/ablate.py [--split test] [--sets a,b]`.

Ingests every eval set once, then runs all cases of the chosen split with the full engine and
with one signal (or mechanism) switched off at a time: a signal's weight is set to 0 in the
fitted models (answerability.Weights.without), a mechanism (bridged answers, a second quoted
sentence, clause trimming) is disabled. Prints *aggregates only*, pooled over the sets: per-case
results of test questions are never shown (the held-out rule, docs/evaluation.md).
A signal earns its place when switching it off makes the pooled test figures worse.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from assistant import Assistant
from assistant.answering.answerability import load_weights
from assistant.evaluation.harness import aggregate, load_cases, risk_coverage, run_case

ROOT = Path(__file__).resolve().parent.parent
SIGNALS = ["cosine", "type_missing_strict", "type_missing", "focus_missing", "margin"]
MECHANISMS = ["bridging", "second_sentence", "strict_types"]


def switch(answerer, full, off: str | None) -> None:  # type: ignore[no-untyped-def]
    answerer.weights = full.without({off}) if off in SIGNALS else full
    answerer.bridging = off != "bridging"
    answerer.strict_types = off != "strict_types"
    answerer.max_sentences = 1 if off == "second_sentence" else answerer.default_sentences


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--sets", default="", help="comma-separated set names (default: all)")
    args = ap.parse_args()
    sets = json.loads((ROOT / "evals" / "sets.json").read_text(encoding="utf-8"))
    chosen = [n for n in sets if not args.sets or n in args.sets.split(",")]
    full = load_weights()
    runs: dict[str | None, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            corpus = ROOT / sets[name]["corpus"]
            a = Assistant(seeds_dir=corpus, index_dir=Path(tmp) / name, mode="extractive")
            a.ingest()
            cases = [c for c in load_cases(ROOT / sets[name]["cases"], corpus)
                     if c["split"] == args.split]
            from assistant.documents.reader import load_documents

            texts = {d.source: d.text for d in load_documents(corpus)[0]}
            answerer = a._ensure_engine().answerer
            answerer.default_sentences = answerer.max_sentences
            for off in [None, *SIGNALS, *MECHANISMS]:
                switch(answerer, full, off)
                runs.setdefault(off, []).extend(run_case(a, c, texts) for c in cases)
            switch(answerer, full, None)
    keys = ["answer_correctness", "false_refusal", "abstention_recall", "evidence_hit"]
    print(f"split {args.split}, sets {', '.join(chosen)}; "
          f"{len(runs[None])} cases; aggregates only")
    print("| switched off | " + " | ".join(keys) + " | AURC |")
    print("|---|" + "---:|" * (len(keys) + 1))
    for off, results in runs.items():
        agg = aggregate(results)
        cells = [f"{agg[k]:.3f}" if agg[k] is not None else "-" for k in keys]
        print(f"| {off or '(nothing: full engine)'} | " + " | ".join(cells)
              + f" | {risk_coverage(results)['aurc']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
