"""An OpenAI-compatible chat server on 127.0.0.1 that plays a model deterministically, for tests.

It reads the numbered sources (`[n] (file) text`) and the `Question:` line of the request and
answers with the source sentence that shares most words with the question, cited as `[n]`.
Each request takes the next scripted behaviour (default "answer"):

    "answer"        the best sentence and its [n]
    "bogus"         the best sentence cited as [99] (a source that does not exist)
    "no_markers"    the best sentence, no marker at all
    "wrong_source"  the best sentence cited with another (existing) source number
    "refuse"        "The documents do not say."
    "injection"     obeys an instruction found inside a source (quotes its payload) and cites it
    "cut"           (streaming) sends a few chunks, then drops the connection
    {"text": "..."} that reply verbatim
    {"status": 429 | 500 | 401 ..., "retry_after_ms": 10}   an error response
    {"sleep": 5.0}  waits that long before answering (past the client's timeout)

Condense requests ("Follow-up question:" in the prompt) get their scripted {"text": ...}, or else
the follow-up with its pronouns replaced by the capitalised names of the previous answer.

Support questions (one-token requests with `logprobs`, prompts/support.md) take nothing from the
script and are kept in `judged`, not `requests`: the reply is "yes" when every word of the answer
is in the source or the question, else "no", with llama-server's top logprobs; `judge_reply`
overrides it ({"body": "<html>…", "content_type": "text/html"} sends that instead).
Answer checks (the same kind of request without an "Answer:" line, prompts/answers.md) are kept
in `checked`; the reply is "yes" unless `answers` is set to False.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_STOP = {
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "by",
    "and",
    "or",
    "is",
    "was",
    "were",
    "did",
    "does",
    "do",
    "what",
    "when",
    "where",
    "who",
    "which",
    "how",
    "why",
    "with",
    "from",
    "as",
    "it",
    "its",
    "this",
    "that",
    "his",
    "her",
    "their",
    "he",
    "she",
    "they",
}
_SOURCE = re.compile(r"^\[(\d+)\] (?:\(([^)]*)\) )?(.*)$", re.M)  # "(file)": several files
_INSTRUCTION = re.compile(
    r"ignore (?:all )?previous instructions[^.]*?[:,]\s*[\"“']?([^\"”']+)", re.I
)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


class FakeOpenAIServer:
    """`with FakeOpenAIServer() as server:` then point the openai client at `server.base_url`."""

    def __init__(self, port: int = 0, model_id: str = "fake") -> None:
        self.model_id = model_id
        self.requests: list[dict[str, Any]] = []
        self.judged: list[dict[str, Any]] = []
        self.checked: list[dict[str, Any]] = []  # answer checks ("does this answer …?")
        self.answers = True  # the answer checks' reply
        self.judge_reply: dict[str, Any] | None = None
        self.reply_body: dict[str, Any] | None = None  # {"body", "content_type"}: the next 200
        self._script: deque[str | dict[str, Any]] = deque()
        self._release = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and chunked streams as real servers send

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                owner._handle(self)

            def do_GET(self) -> None:  # llama-server's /health and /v1/models
                owner._get(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeOpenAIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def script(self, *behaviours: str | dict[str, Any]) -> None:
        """Queue behaviours for the next requests, one each."""
        with self._lock:
            self._script.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.judged.clear()
            self.checked.clear()
            self.answers = True
            self.judge_reply = self.reply_body = None

    def close(self) -> None:
        self._release.set()  # wake any request sleeping past the client's timeout
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- the model ------------------------------------------------------------------------------
    def reply_for(self, body: dict[str, Any], behaviour: str | dict[str, Any]) -> str:
        user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        if isinstance(behaviour, dict) and "text" in behaviour:
            return str(behaviour["text"])
        if "Follow-up question:" in user:
            return self._condense(user)
        if behaviour == "refuse":
            return "The documents do not say."
        sources = [(int(n), text) for n, _, text in _SOURCE.findall(user)]
        if behaviour == "injection":
            for n, text in sources:
                if m := _INSTRUCTION.search(text):
                    return f"{m.group(1).strip().rstrip('.')} [{n}]."
        question = re.search(r"^Question: (.*)$", user, re.M)
        q_words = _words(question.group(1) if question else "")
        best = (-1, 0, "")
        for n, text in sources:
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                score = len(q_words & _words(sentence))
                if score > best[0]:
                    best = (score, n, sentence)
        _, n, sentence = best
        if not sentence:
            return "The documents do not say."
        claim = sentence.rstrip(".")
        if behaviour == "bogus":
            return f"{claim} [99]."
        if behaviour == "no_markers":
            return f"{claim}."
        if behaviour == "wrong_source":
            others = [m for m, _ in sources if m != n]
            return f"{claim} [{others[0] if others else n}]."
        return f"{claim} [{n}]."

    @staticmethod
    def _condense(user: str) -> str:
        follow_up = re.search(r"^Follow-up question: (.*)$", user, re.M)
        question = follow_up.group(1) if follow_up else ""
        answers = re.findall(r"^assistant: (.*)$", user, re.M)
        names = [
            m.group()
            for m in re.finditer(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*", answers[-1] if answers else "")
            if m.start() > 0
        ]
        if not names:
            return question
        return re.sub(r"\b(he|she|it|they|him|her|them)\b", names[0], question, count=1)

    # -- HTTP -----------------------------------------------------------------------------------
    def _get(self, h: BaseHTTPRequestHandler) -> None:
        if h.path == "/health":
            body: dict[str, Any] = {"status": "ok"}
        elif h.path == "/v1/models":
            body = {"object": "list", "data": [{"id": self.model_id, "object": "model"}]}
        else:
            body = {"error": {"message": "not found"}}
        payload = json.dumps(body).encode()
        h.send_response(404 if "error" in body else 200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}")
        if body.get("logprobs") and body.get("max_tokens") == 1:
            self._judge(h, body)
            return
        with self._lock:
            self.requests.append(
                {
                    "path": h.path,
                    "body": body,
                    "headers": {k.lower(): v for k, v in h.headers.items()},
                }
            )
            behaviour = self._script.popleft() if self._script else "answer"
        try:
            if isinstance(behaviour, dict) and "sleep" in behaviour:
                if self._release.wait(behaviour["sleep"]):
                    return
                behaviour = "answer"
            if isinstance(behaviour, dict) and "status" in behaviour:
                self._error(h, behaviour)
                return
            if self.reply_body is not None:  # a 200 that is not a chat completion
                self._send_raw(h, self.reply_body)
                return
            text = self.reply_for(body, behaviour)
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text.split()),
                "total_tokens": prompt_tokens + len(text.split()),
            }
            if body.get("stream"):
                self._stream(h, body, text, usage, cut=behaviour == "cut")
            else:
                self._send_json(
                    h,
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": usage,
                    },
                )
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def _judge(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        user = body["messages"][-1]["content"]
        check = not re.search(r"^Answer: ", user, re.M)
        with self._lock:
            (self.checked if check else self.judged).append({"path": h.path, "body": body})
        if self.judge_reply is not None:
            self._send_raw(h, self.judge_reply)
            return
        field = {
            k: re.search(rf"^{k}: (.*)$", user, re.M) for k in ("Source", "Question", "Answer")
        }
        source, question, claim = (m.group(1) if m else "" for m in field.values())
        yes = self.answers if check else _words(claim) <= _words(source) | _words(question)
        first, second = ("Yes", "No") if yes else ("No", "Yes")
        top = [{"token": first, "logprob": -0.05, "bytes": None},
               {"token": second.lower(), "logprob": -3.2, "bytes": None}]
        self._send_json(
            h,
            200,
            {
                "id": "chatcmpl-fake-judge",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "length",
                        "message": {"role": "assistant", "content": first},
                        "logprobs": {
                            "content": [{**top[0], "top_logprobs": top}]
                        },
                    }
                ],
                "usage": {"prompt_tokens": len(user.split()), "completion_tokens": 1,
                          "total_tokens": len(user.split()) + 1},
            },
        )

    @staticmethod
    def _send_raw(h: BaseHTTPRequestHandler, reply: dict[str, Any]) -> None:
        raw = str(reply["body"]).encode()
        h.send_response(200)
        h.send_header("Content-Type", reply.get("content_type", "application/json"))
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)

    @staticmethod
    def _send_json(
        h: BaseHTTPRequestHandler,
        status: int,
        data: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = json.dumps(data).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(raw)

    def _error(self, h: BaseHTTPRequestHandler, behaviour: dict[str, Any]) -> None:
        status = int(behaviour["status"])
        headers = {}
        if "retry_after_ms" in behaviour:
            headers["retry-after-ms"] = str(behaviour["retry_after_ms"])
        key = h.headers.get("Authorization", "").removeprefix("Bearer ")
        # Like OpenAI's 401, quote a masked form of the key the client sent.
        message = (
            f"Incorrect API key provided: {key[:6]}****{key[-4:]}."
            if status == 401
            else f"Fake server error {status}."
        )
        self._send_json(
            h,
            status,
            {"error": {"message": message, "type": "fake_error", "code": status}},
            headers,
        )

    @staticmethod
    def _stream(
        h: BaseHTTPRequestHandler, body: dict[str, Any], text: str, usage: dict[str, int], cut: bool
    ) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(raw: bytes) -> None:
            h.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            h.wfile.flush()

        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
        }

        def send(data: dict[str, Any] | str) -> None:
            payload = data if isinstance(data, str) else json.dumps({**base, **data})
            chunk(f"data: {payload}\n\n".encode())

        send(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ]
            }
        )
        pieces = [text[i : i + 4] for i in range(0, len(text), 4)]  # markers split across chunks
        for i, piece in enumerate(pieces):
            if cut and i == 3:  # half a chunk, then hang up
                h.wfile.write(b'40\r\ndata: {"choices"')
                h.wfile.flush()
                h.connection.shutdown(socket.SHUT_RDWR)
                h.close_connection = True
                return
            send({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        send({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            send({"choices": [], "usage": usage})
        send("[DONE]")
        chunk(b"")
