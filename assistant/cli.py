"""The `assistant` command: a thin adapter over `Assistant` (no retrieval logic here)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from .errors import AssistantError

EXIT_CODES = """exit codes: 0 ok, 1 error, 2 usage or bad input, 3 seeds folder problem,
4 index missing or incompatible, 5 embedding model problem, 6 backend failure, 7 eval gate failed"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", metavar="DIR", help="documents folder (ASSISTANT_SEEDS_DIR)")
    p.add_argument("--index", metavar="DIR", help="index folder (ASSISTANT_INDEX_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant", description="Grounded answers with verified character-span citations.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="build or refresh the index from the seeds folder")
    _common(p)
    p.add_argument("--rebuild", action="store_true", help="discard the index and build it anew")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser("ask", help="answer a question with citations")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("question", help="the question, in quotes")

    p = sub.add_parser("status", help="what is indexed")
    _common(p)

    p = sub.add_parser("eval", help="run the regression eval sets")
    p.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="eval set name from evals/sets.json (repeatable; default: all)")
    p.add_argument("--json-out", metavar="PATH", help="write per-case results as JSON")
    p.add_argument("--work", metavar="DIR", help="folder for the eval indexes (default: temp)")
    p.add_argument("--baseline", metavar="PATH", help="baseline file (default evals/baseline.json)")
    p.add_argument("--update-baseline", action="store_true",
                   help="write the current figures as the new baseline instead of gating")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else
                        os.environ.get("ASSISTANT_LOG_LEVEL", "WARNING").upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except AssistantError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _assistant(args: argparse.Namespace) -> Any:
    from .core import Assistant

    return Assistant(seeds_dir=args.seeds, index_dir=args.index)


def _run(args: argparse.Namespace) -> int:
    if args.command == "ingest":
        summary = _assistant(args).ingest(rebuild=args.rebuild, progress=True)
        if args.json:
            print(json.dumps(summary.to_dict(), indent=2))
        else:
            print(f"added {summary.added}, updated {summary.updated}, removed {summary.removed}, "
                  f"unchanged {summary.unchanged} document(s); {summary.chunks} chunks; "
                  f"{summary.seconds:.1f} s")
            for s in summary.skipped:
                print(f"skipped {s} (not UTF-8 text or empty)", file=sys.stderr)
        return 0
    if args.command == "ask":
        answer = _assistant(args).ask(args.question)
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        else:
            print(answer.text)
            if answer.notice:
                print(f"note: {answer.notice}")
            for i, c in enumerate(answer.citations, 1):
                print(f"\n[{i}] {c.source} [{c.start}:{c.end}]\n    “{c.quote}”")
        return 0
    if args.command == "status":
        print(json.dumps(_assistant(args).status(), indent=2))
        return 0
    if args.command == "eval":
        from .evaluation import run_cli

        return run_cli(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
