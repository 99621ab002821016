"""A stand-in for `llama-server`, for local-mode fault tests: `python fake_llama_server.py --port
N --alias NAME ...` serves tests/fake_openai_server.py's scripted model on that port, with
llama-server's /health and /v1/models. `FAKE_LLAMA` picks how it misbehaves:

    serve      (default) answer like the fake model
    sigill     kill itself with SIGILL at start-up (a binary built for another CPU)
    bind_once  the first run fails as llama-server does when its port is taken (the file named by
               FAKE_LLAMA_MARKER records that it happened), the next one serves
    hang       never become healthy (/health stays 503)
    stubborn   serve, and ignore SIGTERM (only SIGKILL ends it)
    keyless    serve, and ignore LLAMA_API_KEY (as builds older than that variable do)

Like llama-server, it requires `Authorization: Bearer $LLAMA_API_KEY` when that variable is set
(401 otherwise), except on /health and /v1/models, which current llama-server builds leave open;
POST /tokenize answers `{"tokens": []}`.

While the file named by FAKE_LLAMA_DIE exists, a chat request deletes it and the server dies with
SIGKILL mid-answer.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_openai_server import FakeOpenAIServer

OPEN = {"/health", "/v1/health", "/models", "/v1/models"}  # llama-server's public endpoints


def _refused(h: Any) -> bool:
    """Answer 401 unless the request carries the key llama-server was given, as it does."""
    key = os.environ.get("LLAMA_API_KEY")
    if os.environ.get("FAKE_LLAMA") == "keyless" or not key or h.path in OPEN:
        return False
    if h.headers.get("Authorization") == f"Bearer {key}":
        return False
    FakeOpenAIServer._send_json(h, 401, {"error": {"code": 401, "message": "Invalid API Key",
                                                   "type": "authentication_error"}})
    return True


class _Llama(FakeOpenAIServer):
    def _handle(self, h: Any) -> None:
        if _refused(h):
            return
        if h.path == "/tokenize":  # not a chat request: FAKE_LLAMA_DIE leaves it alone
            FakeOpenAIServer._send_json(h, 200, {"tokens": []})
            return
        die = os.environ.get("FAKE_LLAMA_DIE")
        if die and os.path.exists(die):
            os.unlink(die)
            os.kill(os.getpid(), signal.SIGKILL)
        super()._handle(h)

    def _get(self, h: Any) -> None:
        if os.environ.get("FAKE_LLAMA") == "hang":
            h.send_response(503)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if _refused(h):
            return
        super()._get(h)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", default="fake")
    args, _ = parser.parse_known_args()
    behaviour = os.environ.get("FAKE_LLAMA", "serve")
    if behaviour == "sigill":
        signal.signal(signal.SIGILL, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGILL)
    marker = os.environ.get("FAKE_LLAMA_MARKER", "")
    if behaviour == "bind_once" and marker and not os.path.exists(marker):
        Path(marker).write_text("taken", encoding="utf-8")
        print(f"0.00.007.378 E srv         start: couldn't bind HTTP server socket, hostname: "
              f"127.0.0.1, port: {args.port}", flush=True)
        sys.exit(1)
    if behaviour == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _Llama(port=args.port, model_id=args.alias)
    threading.Event().wait()  # until a signal ends the process


if __name__ == "__main__":
    main()
