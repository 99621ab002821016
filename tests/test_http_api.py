"""`/v1/chat/completions`: the real openai client against the app on a loopback port.

The assistant is a queue-driven fake, so these tests pin the HTTP adapter, not answer quality.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from assistant.errors import BackendError, BadInputError  # noqa: E402
from assistant.interfaces.http_api import create_app  # noqa: E402
from assistant.types import Answer, Citation  # noqa: E402

QUOTE = "The lighthouse was built in 1874."
Serve = Callable[..., str]
CITATION = Citation("lighthouse.txt", 10, 10 + len(QUOTE), QUOTE)


def _answer(text: str = f"{QUOTE} [1]") -> Answer:
    return Answer(text, False, "extractive", [CITATION], question="q")


class FakeAssistant:
    """Answers come from a queue; every call is kept in `calls`; long questions are refused."""

    limit = 50

    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers: deque[Answer | Exception] = deque(answers)
        self.calls: list[tuple[str, list[dict[str, str]] | None]] = []

    def ask(self, question: str, *, history: list[dict[str, str]] | None = None) -> Answer:
        self.calls.append((question, history))
        if len(question) > self.limit:
            raise BadInputError(
                f"The question is {len(question)} characters long; the limit is {self.limit}.",
                "Shorten it.",
            )
        item = self.answers.popleft()
        if isinstance(item, Exception):
            raise item
        return item


class StreamingFake(FakeAssistant):
    """Like `Assistant.stream`: text deltas, then the final `Answer`."""

    def stream(
        self, question: str, history: list[dict[str, str]] | None = None
    ) -> Iterator[str | Answer]:
        answer = self.ask(question, history=history)
        yield "The lighthouse "
        yield "was built in 1874."
        yield answer


class BlockingFake(FakeAssistant):
    """Holds each request until `release` is set, to fill the queue."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__(*answers)
        self.entered = threading.Event()
        self.release = threading.Event()

    def ask(self, question: str, *, history: list[dict[str, str]] | None = None) -> Answer:
        self.entered.set()
        assert self.release.wait(10)
        return super().ask(question, history=history)


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start `create_app(assistant, ...)` on a free loopback port; returns its base URL."""
    servers: list[tuple[Any, threading.Thread]] = []

    def start(assistant: Any, **kwargs: Any) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(assistant, **kwargs), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the test server did not start"
            assert thread.is_alive(), "the test server stopped"
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def _client(base: str, key: str = "unused") -> Any:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=10)


def test_chat_completions_returns_the_answer_with_its_citations(serve: Serve) -> None:
    base = serve(FakeAssistant(_answer()))
    resp = _client(base).chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "When was it built?"}]
    )
    assert resp.choices[0].message.content == f"{QUOTE} [1]"
    assert resp.choices[0].finish_reason == "stop"
    extra = resp.model_extra or {}
    assert extra["citations"] == [CITATION.to_dict()]
    assert extra["abstained"] is False and extra["mode"] == "extractive"


def test_chat_completions_asks_the_last_user_message_with_the_turns_before_it(serve: Serve) -> None:
    fake = FakeAssistant(_answer())
    _client(serve(fake)).chat.completions.create(
        model="assistant",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Who built the lighthouse?"},
            {"role": "assistant", "content": "Ann Lee [1]"},
            {"role": "user", "content": [{"type": "text", "text": "When did she build it?"}]},
        ],
    )
    assert fake.calls == [
        (
            "When did she build it?",
            [
                {"role": "user", "content": "Who built the lighthouse?"},
                {"role": "assistant", "content": "Ann Lee [1]"},
            ],
        )
    ]


def test_chat_completions_streams_the_deltas_then_the_citations(serve: Serve) -> None:
    base = serve(StreamingFake(_answer()))
    chunks = list(
        _client(base).chat.completions.create(
            model="assistant", stream=True, messages=[{"role": "user", "content": "When?"}]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "The lighthouse was built in 1874."
    last = chunks[-1].model_extra or {}
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert last["citations"] == [CITATION.to_dict()]
    assert last["answer"] == f"{QUOTE} [1]"  # the verified text, with its markers
    assert all("citations" not in (c.model_extra or {}) for c in chunks[:-1])


def test_chat_completions_streams_one_chunk_when_the_assistant_cannot_stream(serve: Serve) -> None:
    base = serve(FakeAssistant(_answer()))
    chunks = list(
        _client(base).chat.completions.create(
            model="assistant", stream=True, messages=[{"role": "user", "content": "When?"}]
        )
    )
    contents = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert contents == [f"{QUOTE} [1]"]
    assert (chunks[-1].model_extra or {})["citations"] == [CITATION.to_dict()]


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_refuses_a_too_long_question_with_its_message(
    serve: Serve, stream: bool
) -> None:
    base = serve(StreamingFake())
    with pytest.raises(openai.BadRequestError) as err:
        _client(base).chat.completions.create(
            model="assistant", stream=stream, messages=[{"role": "user", "content": "x" * 60}]
        )
    assert "the limit is 50" in str(err.value)
    assert "Traceback" not in str(err.value)


def test_chat_completions_without_a_user_message_is_a_bad_request(serve: Serve) -> None:
    resp = httpx.post(
        f"{serve(FakeAssistant())}/v1/chat/completions",
        json={"messages": [{"role": "system", "content": "hi"}]},
    )
    assert resp.status_code == 400
    assert "no user message" in resp.json()["error"]["message"]
    resp = httpx.post(f"{serve(FakeAssistant())}/v1/chat/completions", json={"messages": 3})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"


def test_chat_completions_reports_a_backend_failure_as_502(serve: Serve) -> None:
    base = serve(FakeAssistant(BackendError("The model server failed.", "Try later.")))
    with pytest.raises(openai.APIStatusError) as err:
        _client(base).chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "When?"}]
        )
    assert err.value.status_code == 502 and "model server failed" in str(err.value)


def test_chat_completions_requires_the_credentials_when_auth_is_set(serve: Serve) -> None:
    base = serve(FakeAssistant(_answer(), _answer()), auth="ann:s3cret")
    messages = [{"role": "user", "content": "When?"}]
    with pytest.raises(openai.AuthenticationError):
        _client(base, "ann:wrong").chat.completions.create(model="assistant", messages=messages)
    resp = _client(base, "ann:s3cret").chat.completions.create(model="assistant", messages=messages)
    assert resp.choices[0].message.content
    basic = base64.b64encode(b"ann:s3cret").decode()
    resp2 = httpx.post(
        f"{base}/v1/chat/completions",
        json={"messages": messages},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert resp2.status_code == 200
    assert httpx.get(f"{base}/v1/models").status_code == 401


def test_chat_completions_turns_requests_away_when_the_queue_is_full(serve: Serve) -> None:
    fake = BlockingFake(_answer())
    base = serve(fake, queue_size=1)
    messages = [{"role": "user", "content": "When?"}]
    results: list[Any] = []
    first = threading.Thread(
        target=lambda: results.append(
            _client(base).chat.completions.create(model="assistant", messages=messages)
        )
    )
    first.start()
    try:
        assert fake.entered.wait(10)
        with pytest.raises(openai.InternalServerError) as err:  # 503, like Gradio's full queue
            _client(base).chat.completions.create(model="assistant", messages=messages)
        assert err.value.status_code == 503 and err.value.response.headers["Retry-After"] == "1"
        assert "The server is busy" in err.value.message
    finally:
        fake.release.set()
        first.join(10)
    assert results and results[0].choices[0].message.content


def test_models_lists_the_assistant(serve: Serve) -> None:
    models = _client(serve(FakeAssistant())).models.list()
    assert [m.id for m in models.data] == ["assistant"]


def _post(base: str, content: bytes | str, **headers: str) -> Any:
    return httpx.post(
        f"{base}/v1/chat/completions",
        content=content,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )


def _error_of(resp: Any) -> str:
    """The OpenAI-shaped error message of a response (fails if the body has another shape)."""
    body = resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return str(body["error"]["message"])


def test_chat_completions_refuses_a_body_over_the_size_limit_with_413(serve: Serve) -> None:
    fake = FakeAssistant()
    base = serve(fake, max_request_bytes=2000)
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 3000}]})
    resp = _post(base, big)
    assert resp.status_code == 413
    assert "the limit is 2000 bytes" in _error_of(resp)

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield big[:1000].encode()
        yield big[1000:].encode()

    resp = _post(base, chunked())  # type: ignore[arg-type]
    assert resp.status_code == 413 and "ASSISTANT_MAX_REQUEST_BYTES" in _error_of(resp)
    assert "larger than the limit of 2000 bytes" in _error_of(resp)
    assert fake.calls == []


def test_chat_completions_caps_the_messages_and_characters_before_the_question(
    serve: Serve,
) -> None:
    fake = FakeAssistant(_answer())
    base = serve(fake, max_history_messages=3, max_history_chars=100)
    turn = [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Ann."}]
    question = {"role": "user", "content": "When?"}
    resp = httpx.post(f"{base}/v1/chat/completions", json={"messages": [*turn, *turn, question]})
    assert resp.status_code == 400
    assert _error_of(resp).startswith("The history has 4 messages; the limit is 3.")
    long = [{"role": "system", "content": "s" * 101}, {"role": "user", "content": "When?"}]
    resp = httpx.post(f"{base}/v1/chat/completions", json={"messages": long})
    assert resp.status_code == 400
    assert "The history is 101 characters long; the limit is 100." in _error_of(resp)
    ok = httpx.post(f"{base}/v1/chat/completions", json={"messages": [*turn, question]})
    assert ok.status_code == 200 and fake.calls == [("When?", turn)]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "When?\\ud800"}],
        [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}],
        [{"role": "assistant", "content": "x\\udc80"}, {"role": "user", "content": "When?"}],
    ],
    ids=["question", "text-part", "history"],
)
def test_chat_completions_refuses_a_lone_surrogate_with_400(serve: Serve, messages: Any) -> None:
    fake = FakeAssistant(_answer())
    raw = json.dumps({"messages": messages}).replace("\\\\u", "\\u")  # a JSON escape
    assert "\\ud" in raw or "\\udc" in raw
    resp = _post(serve(fake), raw)
    assert resp.status_code == 400
    assert "is not valid Unicode: it has a lone surrogate" in _error_of(resp)
    assert fake.calls == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "Invalid request: "),
        (b"", "Invalid request: body"),
        (b'{"messages": [{"role": "user", "content": "\xff"}]}', "The request body could not be"),
        (b"[" * 100_000 + b"]" * 100_000, "The request body could not be parsed"),
    ],
    ids=["malformed", "empty", "not-utf8", "deeply-nested"],
)
def test_chat_completions_body_parse_errors_are_in_openai_shape(
    serve: Serve, body: bytes, needle: str
) -> None:
    resp = _post(serve(FakeAssistant(), max_request_bytes=500_000), body)
    assert resp.status_code == 400, resp.text
    assert _error_of(resp).startswith(needle)


def test_unknown_v1_paths_and_methods_are_errors_in_openai_shape(serve: Serve) -> None:
    base = serve(FakeAssistant())
    resp = httpx.get(f"{base}/v1/chat/completions")
    assert resp.status_code == 405 and resp.headers["Allow"] == "POST"
    assert "takes POST, not GET" in _error_of(resp)
    resp = httpx.post(f"{base}/v1/embeddings", json={})
    assert resp.status_code == 404 and "There is no /v1/embeddings" in _error_of(resp)


def test_server_refuses_a_foreign_host_or_origin_and_sends_security_headers(
    serve: Serve,
) -> None:
    base = serve(FakeAssistant(_answer(), _answer()), allowed_hosts=("assistant.example.org",))
    models = f"{base}/v1/models"
    resp = httpx.get(models, headers={"Host": "evil.example"})
    assert resp.status_code == 400 and "ASSISTANT_ALLOWED_HOSTS" in _error_of(resp)
    assert "'evil.example' is not served here" in _error_of(resp)
    for host in ("localhost:8000", "[::1]:8000", "127.0.0.1", "Assistant.Example.org."):
        assert httpx.get(models, headers={"Host": host}).status_code == 200, host
    resp = httpx.get(models, headers={"Origin": "http://evil.example"})
    assert resp.status_code == 403 and "access-control-allow-origin" not in resp.headers
    assert httpx.get(models, headers={"Origin": "http://127.0.0.1:7860"}).status_code == 200
    resp = httpx.get(models)
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


def test_a_body_that_never_arrives_is_refused_with_408_not_waited_for(serve: Serve) -> None:
    fake = FakeAssistant()
    base = serve(fake, body_timeout=0.5)
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
        )
        reply = s.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 408"), reply
    assert "did not arrive within 0.5 s" in reply and fake.calls == []


def test_other_methods_on_v1_get_an_openai_shaped_405(serve: Serve) -> None:
    base = serve(FakeAssistant())
    for method in ("OPTIONS", "TRACE", "DELETE"):
        resp = httpx.request(method, f"{base}/v1/models")
        assert resp.status_code == 405, method
        assert f"takes GET, HEAD, not {method}" in _error_of(resp)


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("127.0.0.1:7860", True),
        ("127.8.9.10", True),
        ("[::1]:7860", True),
        ("LOCALHOST.", True),
        ("app.localhost:80", True),
        ("0.0.0.0:7860", False),
        ("evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("[::1", False),
        ("", False),
        ("assistant.example.org:443", True),  # listed
    ],
)
def test_host_allow_list_takes_loopback_and_the_listed_names(header: str, allowed: bool) -> None:
    from assistant.interfaces.http_api import host_allowed, host_name

    assert host_allowed(host_name(header), ("assistant.example.org",)) is allowed
    name = host_name(header)
    assert host_allowed(name, ("*",)) is bool(name)  # "*": any host, but never a malformed one


def test_an_abstention_carries_its_related_passages_next_to_the_citations(serve: Serve) -> None:
    refusal = Answer("The documents do not say.", True, "extractive", [], question="q",
                     related=[CITATION])
    resp = _client(serve(FakeAssistant(refusal))).chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "Who painted it?"}]
    )
    extra = resp.model_extra or {}
    assert extra["abstained"] is True and extra["citations"] == []
    assert extra["related"] == [CITATION.to_dict()]


FERRY = (
    "The Millbridge ferry began service in 1887. The bridge was designed by the engineer "
    "Harriet Coles.\n"
)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_never_send_an_unsupported_sentence(
    serve: Serve, tmp_path: Any, encoder: Any, stream: bool
) -> None:
    from assistant import Assistant
    from assistant.llm.client import FakeChatModel

    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "ferry.txt").write_text(FERRY, encoding="utf-8")
    reply = (
        "The bridge was designed by the engineer Harriet Coles [1]. "
        "<script>alert(1)</script> She studied under Gustave Eiffel in Paris [1]."
    )
    assistant = Assistant(
        seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", encoder=encoder,
        chat_model=FakeChatModel([reply]),
    )
    assistant.ingest()
    client = _client(serve(assistant))
    messages = [{"role": "user", "content": "Who designed the bridge?"}]
    shown = "The bridge was designed by the engineer Harriet Coles [1]."
    if stream:
        chunks = list(client.chat.completions.create(model="assistant", stream=True,
                                                     messages=messages))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        extra = chunks[-1].model_extra or {}
    else:
        reply_body = client.chat.completions.create(model="assistant", messages=messages)
        text, extra = reply_body.choices[0].message.content, reply_body.model_extra or {}
    assert text == shown and extra["abstained"] is False
    assert extra["unsupported"] == [
        "<script>alert(1)</script> She studied under Gustave Eiffel in Paris."
    ]
    assert "left out" in extra["notice"]
