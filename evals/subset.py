"""Write one split (dev or test) of eval sets as a sets file `assistant eval --sets-file` reads.

    python evals/subset.py --split test --out /tmp/evals-test faq policy abstracts report

`assistant eval` runs and reports every split; this writes a smaller sets file for runs that
cost a real model's time per case: CI's local-mode gate (the test splits of the four new sets)
and the runs of docs/llm.md (`--every N` for smaller subsets).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = {"faq": "faq", "policy": "policy", "abstracts": "abstracts", "report": "report_src"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("dev", "test"), required=True)
    p.add_argument("--out", required=True, help="folder for the filtered cases and sets.json")
    p.add_argument("--every", type=int, default=1, help="keep every k-th case of the split")
    p.add_argument("sets", nargs="+", choices=sorted(CORPUS))
    args = p.parse_args()
    out = Path(args.out).resolve()
    (out / "evals").mkdir(parents=True, exist_ok=True)
    spec = {}
    for name in args.sets:
        lines = (ROOT / "evals" / f"{name}_qa.jsonl").read_text(encoding="utf-8").splitlines()
        kept = [ln for ln in lines if ln.strip() and json.loads(ln).get("split") == args.split]
        kept = kept[:: max(args.every, 1)]
        path = out / "evals" / f"{name}_{args.split}.jsonl"
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")
        corpus = ROOT / "evals" / "corpora" / CORPUS[name]
        spec[name] = {"cases": str(path), "corpus": str(corpus)}
        print(f"{name}: {len(kept)} {args.split} cases -> {path}")
    (out / "evals" / "sets.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    print(f"sets file: {out / 'evals' / 'sets.json'}")


if __name__ == "__main__":
    main()
