"""`assistant serve` end to end: headless Chromium, gradio_client and the openai client.

One server for the module: a corpus written here (the seed article, a tiny note and a document full
of HTML payloads), its index built in a temp folder, `assistant serve` in a subprocess on a free
loopback port, with a login (ASSISTANT_UI_AUTH) and a 300-character question limit.
Browser tests are skipped when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")
gradio_client = pytest.importorskip("gradio_client")
openai = pytest.importorskip("openai")

from assistant import Assistant  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_fda7896eed6c390c.txt"
SCREENSHOT = ROOT / "docs" / "ui.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USER, PASSWORD = "tester", "correct-horse"
LIMIT = 300
ANSWER_TIMEOUT_MS = 30_000

NOTE = (
    "The Brightwater lighthouse stands on the northern cape. It was built in 1874 by the "
    "engineer Ada Morrow. Its lamp can be seen from twenty nautical miles away.\n"
)
XSS = (
    "Festival notes.\nThe harbour festival opens on Friday at noon. "
    "<script>window.__xssScript = true</script> "
    '<img src=x onerror="window.__xssImg = true"> The fireworks start at ten.\n'
)


@dataclass
class Site:
    url: str
    seeds: Path
    log: Path

    def text(self, source: str) -> str:
        return (self.seeds / source).read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"assistant serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"{url}/v1/models", timeout=1)
            return
        except urllib.error.HTTPError:  # 401: up, and asking for the login
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"assistant serve did not answer within 90 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("ui")
    seeds = base / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    (seeds / "lighthouse.txt").write_text(NOTE, encoding="utf-8")
    (seeds / "xss_notes.md").write_text(XSS, encoding="utf-8")
    # first in sorted order: one Latin-1 file once cost the UI all its example questions
    (seeds / "000_0latin1.txt").write_bytes("Caf\xe9 in Z\xfcrich.\n".encode("latin-1"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ASSISTANT_", "OPENAI_", "GRADIO_"))
    }
    env.update(
        ASSISTANT_MODE="extractive",
        ASSISTANT_UI_AUTH=f"{USER}:{PASSWORD}",
        ASSISTANT_MAX_QUESTION_CHARS=str(LIMIT),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    Assistant(seeds_dir=seeds, index_dir=base / "index", mode="extractive").ingest()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "assistant",
                "serve",
                "--port",
                str(port),
                "--seeds",
                str(seeds),
                "--index",
                str(base / "index"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=base,
        )
    try:
        _wait_until_serving(url, proc, log)
        yield Site(url, seeds, log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def login(browser: Any, site: Site) -> list[dict[str, Any]]:
    """Log in through the login form once; the session cookie is reused by every page."""
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(site.url)
    pg.fill("input[data-testid=textbox]", USER)
    pg.fill("input[type=password]", PASSWORD)
    pg.click("button.primary")
    pg.wait_for_selector("#chat", timeout=ANSWER_TIMEOUT_MS)
    cookies = context.cookies()
    context.close()
    return cookies


@pytest.fixture
def page(browser: Any, site: Site, login: list[dict[str, Any]]) -> Iterator[Any]:
    """A logged-in page with an empty chat; fails if anything is fetched from elsewhere."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies(login)
    outside: list[str] = []

    def block(route: Any) -> None:
        outside.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]|data:|blob:)"), block)
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', "
        "e => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"
    )
    pg = context.new_page()
    response = pg.goto(site.url)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    pg.wait_for_selector("#chat", timeout=ANSWER_TIMEOUT_MS)
    yield pg
    violations = pg.evaluate("window.__csp")
    context.close()
    assert outside == [], f"the page fetched from outside the server: {outside}"
    assert violations == [], f"the page broke its Content-Security-Policy: {violations}"


def _ask(pg: Any, question: str) -> Any:
    """Ask in the UI and wait until the answer (or error) for it is in the chat."""
    before = pg.locator("#chat .bot").count()
    pg.fill("#question textarea", question)
    pg.click("#ask")
    done = pg.locator("#chat .bot").nth(before).locator(".answer:not(.pending), .answer-error")
    done.wait_for(timeout=ANSWER_TIMEOUT_MS)
    return done


def _offsets(item_text: str) -> tuple[int, int]:
    m = re.search(r"characters (\d+)–(\d+)", item_text)
    assert m, item_text
    return int(m.group(1)), int(m.group(2))


def test_ui_highlights_the_cited_span_and_follows_up(page: Any, site: Site) -> None:
    answer = _ask(page, "Who did Li Shangfu meet?")
    assert "Khrenin" in answer.inner_text()
    assert "offline extractive" in page.inner_text("#mode")
    mark = page.locator('#sources .sources[data-turn="0"] mark[data-cite="1"]').first
    mark.wait_for()
    item = page.locator('#sources .sources[data-turn="0"] .citation-list li[data-cite="1"]')
    start, end = _offsets(item.inner_text())
    source = item.locator("xpath=ancestor::section").get_attribute("data-source")
    quote = item.locator("q").text_content()
    assert mark.text_content() == quote == site.text(source)[start:end]
    assert f"characters {start}–{end}" in (mark.get_attribute("title") or "")

    page.locator("#chat .bot").nth(0).locator("a.cite-marker").first.click()
    page.wait_for_selector('#sources mark.cite-active[data-cite="1"]', timeout=5000)
    assert _in_view(page, "#sources mark.cite-active")

    follow = _ask(page, "How much did bilateral trade increase?")
    assert follow.inner_text()
    page.wait_for_selector('#sources .sources[data-turn="1"]', timeout=5000)
    assert page.locator("#chat .user").count() == 2
    if follow.locator("a.cite-marker").count():
        follow.locator("a.cite-marker").first.click()
        page.wait_for_selector('#sources .sources[data-turn="1"] mark.cite-active')
    page.wait_for_function("!document.querySelector('#sources .pending')")
    # docs/ui.png is refreshed on demand only, so a test run leaves the work tree clean.
    shot = SCREENSHOT if os.environ.get("ASSISTANT_UPDATE_SCREENSHOT") == "1" else Path(
        tempfile.mkdtemp()) / "ui.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    # an earlier answer's marker brings back that answer's sources
    page.locator("#chat .bot").nth(0).locator("a.cite-marker").first.click()
    page.wait_for_selector('#sources .sources[data-turn="0"] mark.cite-active', timeout=5000)


def _in_view(page: Any, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(sel) => {
        const el = document.querySelector(sel), box = el.closest('.sources');
        const r = el.getBoundingClientRect(), b = box.getBoundingClientRect();
        return r.top >= b.top - 1 && r.bottom <= b.bottom + 1 && r.top >= 0
            && r.bottom <= window.innerHeight;
    }""",
            selector,
        )
    )


def test_ui_shows_html_in_documents_and_questions_as_text_and_runs_none_of_it(
    page: Any, site: Site
) -> None:
    _ask(page, "When does the harbour festival open?")
    section = page.locator('#sources section[data-source="xss_notes.md"]')
    section.wait_for(timeout=5000)
    shown = section.locator(".source-text").text_content()
    assert "<script>window.__xssScript = true</script>" in shown
    assert '<img src=x onerror="window.__xssImg = true">' in shown
    _ask(page, '<img src=x onerror="window.__xssQuestion = true"> When are the fireworks?')
    assert "onerror=" in page.locator("#chat .user").nth(1).inner_text()
    assert page.locator("#chat img, #sources img, #sources script").count() == 0
    flags = page.evaluate("[window.__xssScript, window.__xssImg, window.__xssQuestion]")
    assert flags == [None, None, None]


def test_ui_gives_each_cited_document_a_tab_and_markers_switch_to_it(page: Any) -> None:
    answer = _ask(page, "What was built in 1874 and what opens on Friday?")
    root = page.locator('#sources .sources[data-turn="0"]')
    root.wait_for()
    if root.locator(".source-tab").count() < 2:
        pytest.skip("the answer cited one document; this test needs a question citing two")
    docs = root.locator("section.source-doc")
    assert docs.nth(0).is_visible() and not docs.nth(1).is_visible()
    root.locator(".source-tab").nth(1).click()
    assert docs.nth(1).is_visible() and not docs.nth(0).is_visible()
    root.locator(".source-tab").nth(0).click()
    assert docs.nth(0).is_visible()
    second = docs.nth(1).locator("mark").first.get_attribute("data-cite")
    answer.locator(f'a.cite-marker[href="#cite-0-{second}"]').click()
    page.wait_for_selector(f'#sources mark.cite-active[data-cite="{second}"]', timeout=5000)
    assert docs.nth(1).is_visible() and not docs.nth(0).is_visible()


def test_ui_abstains_visibly_and_cites_nothing(page: Any) -> None:
    answer = _ask(page, "What is the airspeed velocity of an unladen swallow?")
    assert "abstained" in (answer.get_attribute("class") or "")
    assert "The documents do not say." in answer.inner_text()
    assert "the documents do not say" in page.inner_text("#sources")


def test_ui_shows_the_question_limit_message_not_a_traceback(page: Any) -> None:
    error = _ask(page, "Why? " * 70)
    text = error.inner_text()
    assert f"the limit is {LIMIT}" in text and "Traceback" not in text


def test_ui_keeps_the_chat_on_reload_and_clears_it(page: Any) -> None:
    _ask(page, "When was the Brightwater lighthouse built?")
    page.reload()
    page.wait_for_selector('#sources .sources[data-turn="0"]', timeout=ANSWER_TIMEOUT_MS)
    assert page.locator("#chat .bot .answer").count() == 1
    page.click("#clear")
    page.wait_for_function("document.querySelectorAll('#chat .bot').length === 0")
    assert page.locator("#sources .sources.empty").count() == 1
    page.reload()
    page.wait_for_selector("#sources .sources.empty")
    assert page.locator("#chat .bot").count() == 0


def test_ui_status_panel_and_reingest(page: Any) -> None:
    status = page.inner_text("#status")
    assert re.search(r"Documents indexed\s+3", status)
    assert "all-MiniLM-L6-v2" in status and "Index built" in status
    page.click("#reingest")
    page.wait_for_selector("#status .status-message", timeout=ANSWER_TIMEOUT_MS)
    assert "unchanged 3" in page.inner_text("#status .status-message")


def test_ui_example_questions_come_from_the_documents(page: Any) -> None:
    examples = page.locator("#examples button")
    # the buttons are rendered before their labels: wait for the first label, not a fixed time
    page.wait_for_function(
        "() => (document.querySelector('#examples button')?.innerText || '').trim() !== ''",
        timeout=ANSWER_TIMEOUT_MS,
    )
    assert examples.count() >= 1
    first = examples.first.inner_text().strip()
    assert first.startswith("What do the documents say about ")
    examples.first.click()
    page.wait_for_function(
        "(q) => document.querySelector('#question textarea').value === q", arg=first
    )


# -- the two APIs, against the same server ---------------------------------------------------------
def _gradio(site: Site) -> Any:
    return gradio_client.Client(site.url, auth=(USER, PASSWORD), verbose=False)


def _openai(site: Site, key: str = f"{USER}:{PASSWORD}") -> Any:
    return openai.OpenAI(base_url=f"{site.url}/v1", api_key=key, max_retries=0, timeout=30)


def _check_citations(site: Site, citations: list[dict[str, Any]]) -> None:
    assert citations
    for c in citations:
        assert site.text(c["source"])[c["start"] : c["end"]] == c["quote"]


def test_gradio_api_ask_returns_the_answer_json(site: Site) -> None:
    client = _gradio(site)
    result = client.predict("Who did Li Shangfu meet?", api_name="/ask")
    assert {"answer", "abstained", "mode", "citations"} <= set(result)
    assert result["abstained"] is False and result["mode"] == "extractive"
    _check_citations(site, result["citations"])
    history = [
        {"role": "user", "content": "Who did Li Shangfu meet?"},
        {"role": "assistant", "content": result["answer"]},
    ]
    follow = client.predict("When did he arrive in Minsk?", history, api_name="/ask")
    assert isinstance(follow["citations"], list)


def test_gradio_api_ask_reports_the_question_limit(site: Site) -> None:
    with pytest.raises(Exception, match=f"the limit is {LIMIT}"):
        _gradio(site).predict("x" * (LIMIT + 1), api_name="/ask")


def test_openai_api_returns_verified_citations(site: Site) -> None:
    resp = _openai(site).chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "Who did Li Shangfu meet?"}]
    )
    assert "Khrenin" in resp.choices[0].message.content
    _check_citations(site, (resp.model_extra or {})["citations"])


def test_openai_api_streams_with_citations_in_the_last_chunk(site: Site) -> None:
    stream = _openai(site).chat.completions.create(
        model="assistant",
        stream=True,
        messages=[{"role": "user", "content": "When was the Brightwater lighthouse built?"}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "1874" in text
    _check_citations(site, (chunks[-1].model_extra or {})["citations"])


def test_server_requires_the_login(site: Site) -> None:
    with pytest.raises(openai.AuthenticationError):
        _openai(site, "tester:wrong").chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "Hello?"}]
        )
    for path in ("/config", "/gradio_api/info"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(site.url + path, timeout=5)
        assert err.value.code == 401


def test_server_refuses_a_foreign_host_and_sends_the_security_headers(site: Site) -> None:
    for path in ("/", "/config", "/v1/models"):
        req = urllib.request.Request(site.url + path, headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 400, path  # before the login: DNS rebinding reads nothing
        assert "'evil.example' is not served here" in err.value.read().decode()
    with urllib.request.urlopen(site.url + "/", timeout=5) as resp:  # the login page
        headers = resp.headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_gradio_api_errors_are_one_sentence(site: Site) -> None:
    """Too few inputs and a lone surrogate, sent raw (gradio_client fills in and encodes both)."""
    import httpx

    for data, needle in (
        ([], "The call sent 0 input value(s); this endpoint takes 2."),
        (["Who\\ud800?", None], "The question is not valid Unicode"),
    ):
        raw = json.dumps({"data": data}).replace("\\\\u", "\\u")  # a JSON escape
        with httpx.Client(base_url=site.url, timeout=30) as c:
            c.post("/login", data={"username": USER, "password": PASSWORD})
            r = c.post(
                "/gradio_api/call/ask", content=raw, headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 200, r.text
            events = c.get(f"/gradio_api/call/ask/{r.json()['event_id']}").text
        assert "event: error" in events and needle in events, events
        assert " object at 0x" not in events
