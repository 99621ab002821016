"""Many documents, atomic re-index under kill -9, concurrent asks during an ingest, the ingest lock.

Every load or fault test here is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, IndexBusyError
from assistant.config import Settings
from assistant.documents.reader import read_text
from assistant.indexing.lock import ingest_lock
from assistant.indexing.manifest import read_manifest
from assistant.indexing.sidecar import load_current
from assistant.indexing.store import ChromaStore
from assistant.interfaces.cli import main
from tests import towns
from tests.conftest import CountingEncoder

HTML = """<!doctype html>
<html><head><title>The Aske Ferry</title><style>p { color: red }</style>
<script>var note = "<p>The ferry sank in 1700.</p>";</script></head>
<body><nav><a href="/">Home</a> | <a href="/ferries">Ferries</a></nav>
<h1>The ferry</h1>
<p>The Aske ferry was replaced by a chain ferry in 1874. The chain ferry
   was built by <b>Orla&nbsp;Pike</b> &amp; sons.</p>
<ul><li>It carried twelve carts.</li><li>It ran until 1931.</li></ul>
</body></html>
"""


def town_corpus(base: Path, n: int = 30) -> tuple[Path, Path, list[towns.Town]]:
    seeds = base / "seeds"
    items = towns.towns(n)
    towns.write(seeds, items)
    return seeds, base / "index", items


def check_citations(answer: Any, texts: dict[str, str]) -> None:
    for c in answer.citations:
        assert texts[c.source][c.start : c.end] == c.quote


# -- many documents --------------------------------------------------------------------------------
def test_many_documents_cite_the_right_one_with_titles_html_and_duplicates(
    tmp_path: Path, encoder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds, index, items = town_corpus(tmp_path)
    (seeds / "pages").mkdir()
    (seeds / "pages" / "ferry.html").write_text(HTML, encoding="utf-8")
    shutil.copy(seeds / items[0].source, seeds / "zz-copy.md")  # same text, other path
    counting = CountingEncoder(encoder)
    a = Assistant(seeds_dir=seeds, index_dir=index, encoder=counting)
    summary = a.ingest()
    assert summary.added == 31 and summary.duplicates == (("zz-copy.md", items[0].source),)

    for t in random.Random(6).sample(items, 8):
        answer = a.ask(t.question())
        assert not answer.abstained and t.mason in answer.text
        assert {c.source for c in answer.citations} == {t.source}
        assert answer.sources == {t.source: t.name}  # the title, for the UI and the CLI

    # HTML: offsets index into the extracted text, which verification extracts again.
    answer = a.ask("Who built the chain ferry?")
    c = answer.citations[0]
    assert c.source == "pages/ferry.html" and "Orla Pike & sons" in c.quote
    extracted = read_text(seeds / "pages" / "ferry.html")
    assert extracted[c.start : c.end] == c.quote and c.quote not in HTML
    assert "1700" not in extracted and "color" not in extracted  # script and style dropped
    assert answer.sources == {"pages/ferry.html": "The Aske Ferry"}
    assert answer.to_dict()["sources"] == {"pages/ferry.html": "The Aske Ferry"}

    # The CLI shows each citation's title.
    code = main(["ask", "--seeds", str(seeds), "--index", str(index), items[1].question()])
    out = capsys.readouterr().out
    assert code == 0 and f"{items[1].source} [" in out and f"· {items[1].name}" in out

    # Nothing changed: no new version. A renamed file: a new path, no re-embedding.
    embedded = counting.embedded
    assert a.ingest().version == summary.version
    (seeds / items[2].source).rename(seeds / "renamed.md")
    moved = a.ingest()
    assert (moved.added, moved.removed, moved.version) == (1, 1, summary.version + 1)
    assert counting.embedded == embedded
    answer = a.ask(items[2].question())
    assert [c.source for c in answer.citations] == ["renamed.md"]


# -- concurrency -----------------------------------------------------------------------------------
def test_threads_ask_while_an_ingest_changes_documents(tmp_path: Path, encoder: Any) -> None:
    seeds, index, items = town_corpus(tmp_path)
    a = Assistant(seeds_dir=seeds, index_dir=index, encoder=encoder)
    b = Assistant(seeds_dir=seeds, index_dir=index, encoder=encoder)  # a second instance
    a.ingest()
    versions = {1: towns.snapshot(seeds)}
    results: list[tuple[float, Any]] = []
    errors: list[BaseException] = []
    started = threading.Barrier(4)
    done = threading.Event()

    def reader(assistant: Assistant, seed: int) -> None:
        rng = random.Random(seed)
        after = 0
        started.wait(timeout=30)
        for _ in range(150):  # bounded, however slow the machine
            try:
                answer = assistant.ask(rng.choice(items).question())
            except BaseException as exc:
                errors.append(exc)
                return
            results.append((time.monotonic(), answer))
            after += done.is_set()
            if after >= 3:
                return

    threads = [threading.Thread(target=reader, args=(x, i)) for i, x in enumerate((a, a, b))]
    for t in threads:
        t.start()
    started.wait(timeout=30)
    # Change three documents, delete one, add one, then ingest while the readers ask.
    changed = items[:3]
    for t in changed:
        (seeds / t.source).write_text(t.text(year=t.year + 100), encoding="utf-8")
    (seeds / items[3].source).unlink()
    towns.write(seeds, towns.towns(31)[30:])
    versions[2] = towns.snapshot(seeds)
    t0 = time.monotonic()
    summary = a.ingest()
    t1 = time.monotonic()
    done.set()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert (summary.updated, summary.removed, summary.added, summary.version) == (3, 1, 1, 2)
    seen = {ans.trace["index_version"] for _, ans in results}
    assert seen == {1, 2}
    assert any(t0 <= when <= t1 for when, _ in results), "no ask overlapped the ingest"
    for _, answer in results:  # every citation is exactly the text of its answer's one version
        check_citations(answer, versions[answer.trace["index_version"]])
    for t in changed:
        answer = a.ask(f"In which year was the stone bridge of {t.name} built?")
        assert str(t.year + 100) in answer.text


def test_a_second_ingest_waits_for_the_lock_or_fails_clearly(tmp_path: Path, encoder: Any) -> None:
    seeds, index, items = town_corpus(tmp_path, n=4)
    a = Assistant(seeds_dir=seeds, index_dir=index, encoder=encoder)
    a.ingest()
    manifest = (index / "manifest.json").read_text()
    impatient = Assistant(seeds_dir=seeds, index_dir=index, encoder=encoder,
                          ingest_lock_timeout=0.2)  # fmt: skip
    with ingest_lock(index, 0):
        (seeds / items[0].source).write_text(items[0].text(year=1999), encoding="utf-8")
        with pytest.raises(IndexBusyError, match="Another ingest") as err:
            impatient.ingest()
    assert err.value.exit_code == 8 and "ASSISTANT_INGEST_LOCK_TIMEOUT" in err.value.hint
    assert (index / "manifest.json").read_text() == manifest  # nothing happened

    # Two ingests at once do not interleave: one publishes, the other then finds nothing to do.
    (seeds / items[1].source).write_text(items[1].text(year=1998), encoding="utf-8")
    out: list[Any] = []
    threads = [threading.Thread(target=lambda x=x: out.append(x.ingest())) for x in (a, a)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted((s.updated, s.version) for s in out) == [(0, 2), (2, 2)]
    assert load_current(a.settings)[0]["version"] == 2


def test_rebuild_writes_a_fresh_collection_and_the_old_one_goes_one_switch_later(
    tmp_path: Path, encoder: Any
) -> None:
    seeds, index, items = town_corpus(tmp_path, n=3)
    a = Assistant(seeds_dir=seeds, index_dir=index, encoder=encoder)
    a.ingest()
    first = read_manifest(index)["collection"]  # type: ignore[index]
    answer = a.ask(items[0].question())
    a.ingest(rebuild=True)
    second = read_manifest(index)
    assert second is not None and second["collection"] != first
    assert second["previous_collection"] == first  # readers of version 1 may still use it
    assert a.ask(items[0].question()).citations == answer.citations
    # An interrupted rebuild leaves a collection no manifest names: the next ingest drops it.
    a.store.view("assistant-chunks-orphan").collection(create=True)
    (index / ".pending-collection").write_text("assistant-chunks-orphan", encoding="utf-8")
    (seeds / items[1].source).write_text(items[1].text(year=1999), encoding="utf-8")
    a.ingest()
    names = set(a.store.collection_names())
    assert names == {second["collection"]}  # the orphan and version 1's collection are gone
    assert not (index / ".pending-collection").exists()


def test_lost_collection_is_a_clear_error_and_ingest_repairs_it_without_reembedding(
    tmp_path: Path, encoder: Any
) -> None:
    from assistant import BackendError

    seeds, index, items = town_corpus(tmp_path, n=3)
    counting = CountingEncoder(encoder)
    a = Assistant(seeds_dir=seeds, index_dir=index, encoder=counting)
    a.ingest()
    before = a.ask(items[0].question())
    a.store.drop(read_manifest(index)["collection"])  # type: ignore[index]
    with pytest.raises(BackendError, match="does not exist") as err:
        a.ask(items[0].question())
    assert "assistant ingest" in err.value.hint and err.value.exit_code == 6
    embedded = counting.embedded
    assert a.ingest().unchanged == 3 and counting.embedded == embedded
    assert a.ask(items[0].question()).citations == before.citations


# -- kill -9 in the middle of an ingest ------------------------------------------------------------
CHILD = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
logging.getLogger("assistant.indexing.ingest").setLevel(logging.INFO)
from assistant import Assistant
Assistant(seeds_dir=sys.argv[1], index_dir=sys.argv[2]).ingest()
"""
PHASES = ("ingest: scanning", "ingest: embedding", "ingest: adding", "ingest: writing sidecar",
          "ingest: switching", "ingest: cleaning up")  # fmt: skip


def _ingest_and_kill(seeds: Path, index: Path, phase: str, delay: float) -> bool:
    """Run an ingest in a child process; SIGKILL it `delay` s after it logs `phase`.

    Returns whether it was killed (False: it finished first).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(seeds), str(index)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 120
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:  # finished before reaching the phase
                assert proc.wait(timeout=30) == 0, "".join(seen)
                return False
            seen.append(line)
            if line.startswith(phase):
                break
        try:
            proc.wait(timeout=delay)
            return False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.mark.slow
def test_kill_9_during_ingest_keeps_the_previous_index_and_the_next_ingest_completes(
    tmp_path: Path, encoder: Any
) -> None:
    # Version 1 is built here, in another folder, then copied: this process must not hold the
    # index's embedded Chroma open while child processes write it (embedded is one process only).
    seeds, build_index, items = town_corpus(tmp_path)
    Assistant(seeds_dir=seeds, index_dir=build_index, encoder=encoder).ingest()
    index = tmp_path / "index-crash"
    shutil.copytree(build_index, index)
    stable = items[10:]  # never changed: their answers must hold throughout
    extra = iter(towns.towns(60)[30:])
    rng = random.Random(6)
    kills = 0
    for rnd in range(5):
        (seeds / items[rnd].source).write_text(items[rnd].text(year=2000 + rnd), encoding="utf-8")
        towns.write(seeds, [next(extra), next(extra)])
        kills += _ingest_and_kill(seeds, index, rng.choice(PHASES), rng.uniform(0, 0.05))
        manifest, side = load_current(Settings.load(seeds_dir=seeds, index_dir=index))
        assert side.lexical is not None and len(side.chunk_ids) >= 30  # readable after each kill
    assert kills >= 3, f"only {kills} of 5 ingests were killed mid-way"

    # The published index still answers correctly (the changed documents may abstain: stale).
    reader = Assistant(seeds_dir=seeds, index_dir=index, encoder=encoder)
    for t in rng.sample(stable, 5):
        answer = reader.ask(t.question())
        assert [c.source for c in answer.citations] == [t.source] and t.mason in answer.text

    # The next ingest completes the job and leaves nothing behind.
    summary = reader.ingest()
    manifest, side = load_current(reader.settings)
    assert manifest["version"] == summary.version and len(manifest["documents"]) == 40
    leftovers = [p.name for p in index.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers
    sidecars = sorted(p.name for p in index.iterdir() if p.name.startswith("v"))
    assert len(sidecars) <= 2 and f"v{summary.version}" in sidecars
    store = ChromaStore(index / "chroma").view(manifest["collection"])
    assert store.all_ids() == set(side.chunk_ids)  # no orphan chunks, none missing
    for t in items[:5]:
        answer = reader.ask(f"In which year was the stone bridge of {t.name} built?")
        assert not answer.abstained and answer.citations[0].source == t.source
    for t in rng.sample(stable, 3):
        assert [c.source for c in reader.ask(t.question()).citations] == [t.source]


# -- bad input and hostile files -------------------------------------------------------------------
def _small(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    towns.write(seeds, towns.towns(3))
    return seeds, tmp_path / "index"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_hostile_files_are_skipped_with_a_warning_naming_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tracemalloc

    from assistant.documents.reader import scan

    seeds, index = _small(tmp_path)
    (seeds / "blob.txt").write_bytes(b"\x00\x01\x02 binary \xff")
    (seeds / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (seeds / "empty.md").write_text("  \n\n", encoding="utf-8")
    with (seeds / "big.txt").open("w", encoding="utf-8") as fh:  # 50 MB of real text
        line = "The river rose in the night and the mill was flooded again. " * 16 + "\n"
        for _ in range(50 * 1024 * 1024 // len(line) + 1):
            fh.write(line)
    os.mkfifo(seeds / "pipe.txt")  # reading it would block forever
    (seeds / "dangling.txt").symlink_to(seeds / "gone.txt")  # inside, but its target is gone
    (tmp_path / "secret.txt").write_text("The password is swordfish.\n", encoding="utf-8")
    (seeds / "outside.txt").symlink_to(tmp_path / "secret.txt")

    tracemalloc.start()
    found = scan(seeds, max_file_mb=20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # the 50 MB file was never read
    assert len(found.docs) == 3

    code, out, err = _cli(capsys, "ingest", "--seeds", str(seeds), "--index", str(index))
    assert code == 0 and "added 3" in out and "Traceback" not in err
    expected = {
        "blob.txt": "it is not UTF-8 text",
        "latin1.txt": "it is not UTF-8 text",
        "empty.md": "it is empty",
        "big.txt": "larger than the 20 MB limit (ASSISTANT_MAX_FILE_MB)",
        "pipe.txt": "it is not a regular file",
        "dangling.txt": "it cannot be read",
        "outside.txt": "symlink pointing outside the seeds folder (not followed)",
    }
    for source, reason in expected.items():
        assert f"skipped {source}: " in err and reason in err, source
    manifest = read_manifest(index)
    assert manifest is not None and sorted(manifest["skipped"]) == sorted(expected)
    assert len(manifest["documents"]) == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_skipped_with_a_warning(tmp_path: Path, caplog: Any) -> None:
    seeds, index = _small(tmp_path)
    (seeds / "locked.txt").write_text("Secret.\n", encoding="utf-8")
    (seeds / "locked.txt").chmod(0)
    (seeds / "closed").mkdir()
    (seeds / "closed" / "inside.txt").write_text("Hidden.\n", encoding="utf-8")
    (seeds / "closed").chmod(0)
    try:
        summary = Assistant(seeds_dir=seeds, index_dir=index).ingest()
    finally:
        (seeds / "locked.txt").chmod(0o644)
        (seeds / "closed").chmod(0o755)
    assert dict(summary.reasons)["locked.txt"].startswith("it cannot be read")
    assert dict(summary.reasons)["closed/"].startswith("it is a folder that cannot be read")
    assert "locked.txt" in caplog.text and "closed/" in caplog.text


def test_index_folder_that_cannot_be_written_exits_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds, _ = _small(tmp_path)
    blocker = tmp_path / "index"
    blocker.write_text("a file where the index folder should be\n", encoding="utf-8")
    code, _, err = _cli(capsys, "ingest", "--seeds", str(seeds), "--index", str(blocker))
    assert code == 6 and f"error: Cannot write the index in {blocker}" in err
    assert "hint: Check free disk space and permissions" in err and "Traceback" not in err
    assert blocker.read_text(encoding="utf-8").startswith("a file")


def test_empty_seeds_folder_exits_3_and_keeps_the_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds, index = _small(tmp_path)
    assert _cli(capsys, "ingest", "--seeds", str(seeds), "--index", str(index))[0] == 0
    manifest = (index / "manifest.json").read_bytes()
    shutil.rmtree(seeds)
    seeds.mkdir()
    code, _, err = _cli(capsys, "ingest", "--seeds", str(seeds), "--index", str(index))
    assert code == 3 and "hint:" in err
    assert "No readable .txt, .md, .html, .pdf or .docx document" in err
    assert (index / "manifest.json").read_bytes() == manifest


@pytest.mark.parametrize(
    "damage, needle",
    [
        ("corrupt-json", "manifest.json is unreadable or corrupt"),
        ("wrong-shape", "manifest.json is unreadable or corrupt"),
        ("sidecar-deleted", "are missing or corrupt"),
    ],
)
def test_damaged_index_exits_4_with_a_hint_and_nothing_is_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, needle: str
) -> None:
    seeds, index = _small(tmp_path)
    a = Assistant(seeds_dir=seeds, index_dir=index)
    a.ingest()
    before = towns.snapshot(seeds)
    if damage == "corrupt-json":
        (index / "manifest.json").write_text('{"version": 1, "documents": {', encoding="utf-8")
    elif damage == "wrong-shape":
        (index / "manifest.json").write_text('["not", "a", "manifest"]', encoding="utf-8")
    else:
        shutil.rmtree(index / "v1")
    question = towns.towns(3)[0].question()
    code, _, err = _cli(capsys, "ask", "--seeds", str(seeds), "--index", str(index), question)
    assert code == 4 and needle in err
    assert "hint: Rebuild the index with: assistant ingest --rebuild" in err
    assert "Traceback" not in err and towns.snapshot(seeds) == before
    rebuild = ["ingest", "--rebuild"] if damage != "sidecar-deleted" else ["ingest"]
    assert _cli(capsys, *rebuild, "--seeds", str(seeds), "--index", str(index))[0] == 0
    code, out, _ = _cli(capsys, "ask", "--seeds", str(seeds), "--index", str(index), question)
    assert code == 0 and towns.towns(3)[0].mason in out


def test_missing_index_is_built_on_first_ask_unless_there_is_nothing_to_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoder: Any
) -> None:
    seeds, index = _small(tmp_path)
    answer = Assistant(seeds_dir=seeds, index_dir=index, encoder=encoder).ask(
        towns.towns(3)[1].question()
    )
    assert not answer.abstained and read_manifest(index) is not None
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(capsys, "ask", "--seeds", str(empty), "--index", str(tmp_path / "i"), "Who")
    assert code == 3 and "No readable" in err and "hint:" in err


@pytest.mark.parametrize(
    "question, needle",
    [(None, "must be text"), (42, "must be text"), (["Who?"], "must be text"), ("\t\n ", "empty")],
)
def test_question_that_is_not_text_is_refused(tmp_path: Path, question: Any, needle: str) -> None:
    from assistant import BadInputError

    a = Assistant(seeds_dir=tmp_path, index_dir=tmp_path / "index", mode="extractive")
    with pytest.raises(BadInputError, match=needle) as err:
        a.ask(question)
    assert err.value.exit_code == 2 and not (tmp_path / "index").exists()  # checked first


def test_ingest_log_names_skipped_files_and_duplicates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seeds, index = _small(tmp_path)
    shutil.copy(seeds / towns.towns(3)[0].source, seeds / "zz-again.md")
    caplog.set_level(logging.INFO, logger="assistant")
    summary = Assistant(seeds_dir=seeds, index_dir=index).ingest()
    assert summary.to_dict()["duplicates"] == {"zz-again.md": towns.towns(3)[0].source}
    assert "zz-again.md has the same text as" in caplog.text
    assert json.loads((index / "manifest.json").read_text())["duplicates"] == {
        "zz-again.md": towns.towns(3)[0].source
    }


def test_bad_input_table_names_only_tests_that_exist() -> None:
    import re

    root = Path(__file__).resolve().parent.parent
    table = (root / "docs" / "bad-input.md").read_text(encoding="utf-8")
    refs = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", table))
    assert len(refs) >= 15
    for path, name in sorted(refs):
        assert f"def {name}(" in (root / path).read_text(encoding="utf-8"), f"{path}::{name}"
