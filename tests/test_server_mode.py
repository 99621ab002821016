"""Chroma server mode against a real `chroma run` on a free loopback port.

The module's server is started once by a fixture and stopped after the last test; the outage test
runs its own server, which it stops and starts again.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, BackendError, ConfigError
from assistant.interfaces.cli import main
from benchmarks.chroma_server import ChromaServer
from tests import towns
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "data").start()
    try:
        yield srv
    finally:
        srv.stop()


def comparable(answer: Any) -> dict[str, Any]:
    d = answer.to_dict()
    d.pop("timings_ms")
    d["chunk_spans"] = answer.trace["chunk_spans"]
    return d


def test_server_mode_gives_the_same_answers_and_citations_as_embedded(
    server: ChromaServer, seed_assistant: Assistant, encoder: Any, tmp_path: Path
) -> None:
    seeds = seed_assistant.settings.seeds_dir
    remote = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", chroma_url=server.url,
                       encoder=encoder)  # fmt: skip
    summary = remote.ingest()
    assert summary.added == 1 and not (tmp_path / "index" / "chroma").exists()
    assert remote.status()["chroma"] == server.url
    rows = (ROOT / "evals" / "seed_qa.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(r)["question"] for r in rows if r.strip()]
    assert len(questions) > 100
    answered = 0
    for q in questions:
        local, there = seed_assistant.ask(q), remote.ask(q)
        assert comparable(there) == comparable(local), q
        answered += not there.abstained
    assert answered > 80


def test_server_down_is_a_clear_error_and_the_next_ask_recovers(
    tmp_path: Path, encoder: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    seeds = tmp_path / "seeds"
    items = towns.towns(5)
    towns.write(seeds, items)
    srv = ChromaServer(tmp_path / "data").start()
    try:
        a = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", chroma_url=srv.url,
                      encoder=encoder)  # fmt: skip
        a.ingest()
        before = comparable(a.ask(items[0].question()))
        manifest = (tmp_path / "index" / "manifest.json").read_text()

        srv.stop()
        with pytest.raises(BackendError) as err:
            a.ask(items[0].question())
        assert err.value.message == f"The Chroma server at {srv.url} is not reachable (querying)."
        assert f"--port {srv.port}" in err.value.hint and err.value.exit_code == 6
        with pytest.raises(BackendError, match="not reachable"):
            a.ingest()
        assert (tmp_path / "index" / "manifest.json").read_text() == manifest  # nothing lost
        late = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", chroma_url=srv.url,
                         encoder=encoder)  # fmt: skip
        with pytest.raises(BackendError, match="not reachable"):
            late.ask(items[1].question())  # down from its very first request
        monkeypatch.setenv("ASSISTANT_CHROMA_URL", srv.url)
        code = main(["ask", "--seeds", str(seeds), "--index", str(tmp_path / "index"), "Who?"])
        err_text = capsys.readouterr().err
        assert code == 6 and f"error: The Chroma server at {srv.url} is not reachable" in err_text
        assert "hint: Start it" in err_text and "Traceback" not in err_text

        srv.start()  # same port, same data: both assistants recover without a restart
        assert comparable(a.ask(items[0].question())) == before
        assert [c.source for c in late.ask(items[1].question()).citations] == [items[1].source]
    finally:
        srv.stop()


def test_unknown_database_and_bad_url_are_refused_clearly(server: ChromaServer) -> None:
    a = Assistant(seeds_dir="seeds", index_dir="index", chroma_url=server.url,
                  chroma_database="no-such-db")  # fmt: skip
    with pytest.raises(BackendError) as err:
        _ = a.store
    assert server.url in err.value.message and "no-such-db" in err.value.message
    assert "ASSISTANT_CHROMA_DATABASE" in err.value.hint and err.value.exit_code == 6
    for url in ("localhost:8000", "ftp://127.0.0.1:8000", "http://"):
        with pytest.raises(ConfigError, match="ASSISTANT_CHROMA_URL must be an http"):
            Assistant(chroma_url=url)


def test_index_folders_sharing_a_server_do_not_collide(
    server: ChromaServer, tmp_path: Path, encoder: Any
) -> None:
    everyone = towns.towns(6)
    assistants = []
    for n, part in enumerate((everyone[:3], everyone[3:])):
        seeds = tmp_path / f"seeds{n}"
        towns.write(seeds, part)
        a = Assistant(seeds_dir=seeds, index_dir=tmp_path / f"index{n}", chroma_url=server.url,
                      encoder=encoder)  # fmt: skip
        a.ingest()
        assistants.append((a, part))
    for a, part in assistants:  # each still answers from its own documents
        for t in part:
            assert [c.source for c in a.ask(t.question()).citations] == [t.source]


def test_token_is_sent_with_every_request(tmp_path: Path) -> None:
    """A loopback stand-in for an authenticating proxy: it records headers and says 401."""
    import http.server

    seen: list[dict[str, str]] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "Unauthorized", "message": "bad token"}')

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        a = Assistant(seeds_dir=tmp_path, index_dir=tmp_path / "index", chroma_url=url,
                      chroma_token="s3cret")  # fmt: skip
        with pytest.raises(BackendError) as err:
            _ = a.store
        assert err.value.message.startswith(f"The Chroma server at {url} refused the request")
        assert "ASSISTANT_CHROMA_TOKEN" in err.value.hint and err.value.exit_code == 6
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert seen and all(h.get("Authorization") == "Bearer s3cret" for h in seen)
    assert all(h.get("X-Chroma-Token") == "s3cret" for h in seen)


READER = """
import json, sys, time
from pathlib import Path
from assistant import Assistant

seeds, index, url, questions, stop = sys.argv[1:6]
a = Assistant(seeds_dir=seeds, index_dir=index, chroma_url=url, mode="extractive")
questions = json.loads(questions)
deadline, after = time.monotonic() + 90, 0
for i in range(3000):  # until 3 answers after the stop file appears; bounded in count and time
    answer = a.ask(questions[i % len(questions)])
    print(json.dumps({"version": answer.trace["index_version"],
                      "citations": [c.to_dict() for c in answer.citations]}), flush=True)
    after += Path(stop).exists()
    if after >= 3 or time.monotonic() > deadline:
        break
"""


@pytest.mark.slow
def test_two_processes_ask_while_an_ingest_changes_documents(
    server: ChromaServer, tmp_path: Path, encoder: Any
) -> None:
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    items = towns.towns(30)
    towns.write(seeds, items)
    writer = Assistant(seeds_dir=seeds, index_dir=index, chroma_url=server.url, encoder=encoder)
    writer.ingest()
    versions = {1: towns.snapshot(seeds)}
    stop = tmp_path / "stop"
    questions = json.dumps([t.question() for t in items])
    env = dict(os.environ)
    args = [sys.executable, "-c", READER, str(seeds), str(index), server.url, questions, str(stop)]
    pipe = subprocess.PIPE
    procs = [
        subprocess.Popen(args, stdout=pipe, stderr=pipe, text=True, env=env, cwd=ROOT)
        for _ in range(2)
    ]
    lines: queue.Queue[tuple[int, str | None]] = queue.Queue()

    def pump(n: int) -> None:
        for line in procs[n].stdout or ():
            lines.put((n, line))
        lines.put((n, None))

    for n in range(2):
        threading.Thread(target=pump, args=(n,), daemon=True).start()
    out: dict[int, list[str]] = {0: [], 1: []}
    try:
        deadline = time.monotonic() + 120
        while not (out[0] and out[1]):  # both readers are answering
            n, line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, procs[n].communicate()[1]
            out[n].append(line)
        for t in items[:3]:
            (seeds / t.source).write_text(t.text(year=t.year + 100), encoding="utf-8")
        (seeds / items[3].source).unlink()
        towns.write(seeds, towns.towns(31)[30:])
        versions[2] = towns.snapshot(seeds)
        assert writer.ingest().version == 2
        stop.touch()
        for p in procs:
            assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    while not lines.empty():
        n, line = lines.get()
        if line is not None:
            out[n].append(line)
    seen = set()
    for n in (0, 1):
        for line in out[n]:
            row = json.loads(line)
            seen.add(row["version"])
            texts = versions[row["version"]]  # one version per answer, all citations from it
            for c in row["citations"]:
                assert texts[c["source"]][c["start"] : c["end"]] == c["quote"]
    assert seen == {1, 2}


class _Proxy:
    """A loopback TCP proxy to the Chroma server that can stop passing answers back (`silent`)."""

    def __init__(self, port: int) -> None:
        import socket

        self.upstream = port
        self.silent = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.sockets: list[Any] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]

    def __enter__(self) -> _Proxy:
        self.threads[0].start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in list(self.threads):
            t.join(timeout=5)
        for s in self.sockets:
            s.close()
        self.listener.close()

    def _accept(self) -> None:
        import socket

        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream))
            for s in (client, server):
                s.settimeout(0.2)
                self.sockets.append(s)
            for src, dst, answers in ((client, server, False), (server, client, True)):
                t = threading.Thread(target=self._pump, args=(src, dst, answers), daemon=True)
                self.threads.append(t)
                t.start()

    def _pump(self, src: Any, dst: Any, answers: bool) -> None:
        while not self.stop.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if answers and self.silent:
                continue  # the server's answer never arrives
            try:
                dst.sendall(data)
            except OSError:
                return


def test_server_that_stops_answering_mid_session_fails_within_the_timeout(
    server: ChromaServer, encoder: Any, tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds"
    items = towns.towns(3)
    towns.write(seeds, items)
    with _Proxy(server.port) as proxy:
        a = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", chroma_url=proxy.url,
                      encoder=encoder, chroma_timeout=1.0)  # fmt: skip
        a.ingest()
        assert items[0].mason in a.ask(items[0].question()).text
        proxy.silent = True  # connected, requests arrive, no answer ever comes back
        with pytest.raises(BackendError, match=r"did not answer within 1 s \(querying\)") as err:
            a.ask(items[1].question())
        assert "ASSISTANT_CHROMA_TIMEOUT" in err.value.hint
        proxy.silent = False
        assert items[2].mason in a.ask(items[2].question()).text  # the next request recovers
