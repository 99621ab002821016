"""The `assistant` command: a thin adapter over `Assistant` (no retrieval logic here)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
from typing import Any

from assistant.config import parse_log_level
from assistant.errors import AssistantError, ConfigError
from assistant.interfaces.shutdown import arm_exit_deadline, install_stop_handlers

EXIT_CODES = """exit codes: 0 ok, 1 error, 2 usage or bad input, 3 seeds folder problem,
4 index missing or incompatible, 5 embedding model problem, 6 backend failure (e.g. the Chroma
server is down), 7 eval gate failed, 8 index busy (another ingest holds its lock), 9 serve cannot
listen (the port is in use or not permitted)"""


def _port(value: str) -> int:
    """An argparse type: a TCP port number, 1-65535."""
    if not value.strip().isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535)")
    return int(value)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", metavar="DIR", help="documents folder (ASSISTANT_SEEDS_DIR)")
    p.add_argument("--index", metavar="DIR", help="index folder (ASSISTANT_INDEX_DIR)")


def _mode(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("auto", "extractive", "llm", "local"),
                   help="answering mode (ASSISTANT_MODE; auto = llm when OPENAI_API_KEY or "
                        "OPENAI_BASE_URL is set, else extractive; local = a llama.cpp model "
                        "the assistant runs itself)")


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
    _mode(p)
    p.add_argument("question", help="the question, in quotes")

    p = sub.add_parser("status", help="what is indexed")
    _common(p)

    p = sub.add_parser("serve", help="chat in the browser; OpenAI-compatible API at /v1")
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=7860, help="port to listen on (default: 7860)")
    _mode(p)

    p = sub.add_parser("eval", help="run the regression eval sets")
    p.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="eval set name from evals/sets.json (repeatable; default: all)")
    p.add_argument("--json-out", metavar="PATH", help="write per-case results as JSON")
    p.add_argument("--report-md", metavar="PATH",
                   help="write a Markdown report: tables and the diff against the baseline")
    p.add_argument("--plot", metavar="PATH",
                   help="write a PNG of metrics per tag (needs the `eval` extra: matplotlib)")
    p.add_argument("--sets-file", metavar="PATH",
                   help="eval sets file (default evals/sets.json)")
    p.add_argument("--work", metavar="DIR", help="folder for the eval indexes (default: temp)")
    p.add_argument("--baseline", metavar="PATH",
                   help="baseline file (default: baseline.json next to the sets file)")
    p.add_argument("--show-test-cases", action="store_true",
                   help="show the question and answers of regressed test-split cases (held out: "
                        "by default only their ids, so their misses are not studied)")
    p.add_argument("--update-baseline", action="store_true",
                   help="write the current figures as the new baseline instead of gating")
    _mode(p)

    p = sub.add_parser("build-server",
                       help="build llama-server from source for this CPU (local mode, where the "
                            "bundled one stops with SIGILL; needs cmake and g++, ~15 min)")
    p.add_argument("--sdist", metavar="PATH",
                   help="a downloaded llama_cpp_python-0.3.36.tar.gz (default: pip downloads it)")
    p.add_argument("--jobs", type=int, metavar="N", help="parallel compile jobs (default: CPUs)")
    p.add_argument("--force", action="store_true", help="build again over an existing build")
    return parser


# Control characters a terminal would act on (ESC and CSI sequences, OSC titles, BEL, a bare CR
# that overwrites the line): C0 except tab and newline, DEL, and C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters and lone surrogates shown as escapes (`\\x1b`), so a
    document or a file name cannot drive the terminal; newlines and tabs are kept."""
    text = text.replace("\r\n", "\n")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_text(data: Any) -> str:
    """Exact JSON (non-ASCII kept) in which C1 controls and lone surrogates are \\u escapes too
    (json escapes C0 itself); parsing it gives back exactly `data`."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return re.sub(r"[\x7f-\x9f\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    level = "INFO" if verbose else parse_log_level(os.environ.get("ASSISTANT_LOG_LEVEL"))
    logging.basicConfig(level=level, handlers=[handler])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM ends the command like Ctrl+C does (Python's default would die without running
    # atexit, and leave a local model server behind); both arm the exit deadline
    restore = install_stop_handlers()
    try:
        _setup_logging(args.verbose)
        code = _run(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at exit
        return code
    except AssistantError as exc:
        print(f"error: {printable(exc.message)}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {printable(exc.hint)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `assistant ask ... | head -1`: the reader has gone; not an error
        _discard_stdout()
        return 141  # 128 + SIGPIPE, what the shell reports for a program the pipe ended
    except KeyboardInterrupt:
        arm_exit_deadline(signal.SIGINT)
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if restore is not None:
            restore()


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass


def _assistant(args: argparse.Namespace) -> Any:
    from assistant.core import Assistant

    return Assistant(seeds_dir=args.seeds, index_dir=args.index, mode=getattr(args, "mode", None))


def _run(args: argparse.Namespace) -> int:
    if args.command == "ingest":
        summary = _assistant(args).ingest(rebuild=args.rebuild, progress=True)
        if args.json:
            print(json_text(summary.to_dict()))
        else:
            print(f"added {summary.added}, updated {summary.updated}, removed {summary.removed}, "
                  f"unchanged {summary.unchanged} document(s); {summary.chunks} chunks; "
                  f"{summary.seconds:.1f} s")
            for s in summary.skipped:
                reason = dict(summary.reasons).get(s, "not UTF-8 text or empty")
                print(printable(f"skipped {s}: {reason}"), file=sys.stderr)
            for dup, kept in summary.duplicates:
                print(printable(f"duplicate {dup}: same text as {kept}, indexed once"),
                      file=sys.stderr)
        return 0
    if args.command == "ask":
        with _assistant(args) as assistant:
            if not args.json and sys.stdout.isatty() and assistant.mode in ("llm", "local"):
                answer = _stream_to_terminal(assistant, args.question)
            else:
                answer = assistant.ask(args.question)
        if args.json:
            print(json_text(answer.to_dict()))
        else:
            print(printable(answer.text))
            if answer.notice:
                print(printable(f"note: {answer.notice}"))
            for sentence in answer.unsupported:
                print(printable(f"not supported by the documents, left out: {sentence}"))
            for i, c in enumerate(answer.citations, 1):
                title = answer.sources.get(c.source)
                page = f" page {c.page}" if c.page is not None else ""
                print(printable(f"\n[{i}] {c.source}{page} [{c.start}:{c.end}]"
                                + (f" · {title}" if title else "") + f"\n    “{c.quote}”"))
            if answer.related:
                print("\nRelated passages (not an answer):")
            for c in answer.related:
                title = answer.sources.get(c.source)
                page = f" page {c.page}" if c.page is not None else ""
                print(printable(f"- {c.source}{page} [{c.start}:{c.end}]"
                                + (f" · {title}" if title else "") + f"\n    “{c.quote}”"))
        return 0
    if args.command == "status":
        print(json_text(_assistant(args).status()))
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "eval":
        from assistant.evaluation.harness import run_cli

        return run_cli(args)  # passes --mode to each Assistant it builds
    if args.command == "build-server":
        from pathlib import Path

        from assistant.config import Settings
        from assistant.llm.build_server import build

        build(cache_dir=Settings.load().cache_dir, sdist=Path(args.sdist) if args.sdist else None,
              jobs=args.jobs, force=args.force)
        return 0
    return 2


def _stream_to_terminal(assistant: Any, question: str) -> Any:
    """Show each verified sentence as it arrives, then erase them: the final answer replaces them
    (the same text, unless the model failed midway and the offline answer stands in)."""
    import shutil

    shown, answer = "", None
    for item in assistant.stream(question):
        if isinstance(item, str):
            item = printable(item)
            sys.stdout.write(item)
            sys.stdout.flush()
            shown += item
        else:
            answer = item
    if shown:
        width = max(shutil.get_terminal_size().columns, 1)
        rows = sum(max(1, -(-len(line) // width)) for line in shown.split("\n"))
        sys.stdout.write("\r" + (f"\x1b[{rows - 1}A" if rows > 1 else "") + "\x1b[J")
        sys.stdout.flush()
    return answer


def _serve(args: argparse.Namespace) -> int:
    assistant = _assistant(args)  # settings errors first, before the slow UI import
    try:
        from assistant.interfaces.ui import serve
    except ModuleNotFoundError as exc:  # gradio is the optional `ui` extra
        raise ConfigError(
            f"The chat UI needs the {exc.name} package, which is not installed.",
            "Install it with: pip install 'assistant[ui]'",
        ) from None
    with assistant:
        if assistant.mode == "local":  # once, before the first question
            try:
                seconds = assistant.start_model()
                print(f"Local model {assistant.model_name} ready in {seconds:.1f} s.",
                      file=sys.stderr, flush=True)
            except AssistantError as exc:
                print(f"warning: {exc} Answers are offline extractive until it is fixed.",
                      file=sys.stderr, flush=True)
        return serve(assistant, host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
