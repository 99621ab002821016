"""The chat UI (`assistant serve`): a Gradio app over `Assistant`, beside the OpenAI-compatible API.

The only module that imports gradio (and uvicorn); the CLI imports it lazily, so `assistant ask`
never pays for it. The UI is an adapter: answering is `Assistant.ask`/`stream`, the HTML is built
(and every piece of text escaped) in `ui_html`, and `/v1/chat/completions` lives in `http_api`.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it

import gradio as gr
import uvicorn

from assistant.documents.reader import discover, mb_to_bytes, read_text
from assistant.errors import AssistantError, BadInputError, ServeError
from assistant.inputs import check_text
from assistant.interfaces import ui_html
from assistant.interfaces.http_api import create_app
from assistant.interfaces.shutdown import arm_exit_deadline, stop_requested
from assistant.types import Answer

log = logging.getLogger(__name__)

EXAMPLES = 3
EXAMPLE_BUDGET_S = 10.0  # time allowed at start-up to check that example questions get answers
LOOPBACK = ("127.0.0.1", "localhost", "::1")

Turn = dict[str, Any]  # {"question": str, "answer": Answer.to_dict() | None, "error": [msg, hint]}

CSS = """
#chat .answer.abstained { color: var(--body-text-color-subdued); font-style: italic;
  border-left: 4px solid #9ca3af; padding-left: .6em; }
#chat .abstain-badge { font-style: normal; font-size: .75em; text-transform: uppercase;
  letter-spacing: .05em; background: #e5e7eb; color: #374151; border-radius: 4px;
  padding: .1em .45em; margin-right: .4em; }
#chat .answer-meta { font-size: .8em; color: var(--body-text-color-subdued); margin-top: .4em; }
#chat .answer-notice { color: #b45309; }
#chat .related { font-size: .88em; margin-top: .4em; }
#chat .related-label { font-weight: 600; color: var(--body-text-color-subdued); }
#chat .related-source { font-family: monospace; font-size: .9em; }
#chat .answer-error { color: #b91c1c; }
#chat .answer-error .hint { color: var(--body-text-color-subdued); font-size: .9em; }
#chat .answer.pending .cursor { animation: blink 1s steps(2) infinite; }
@keyframes blink { 50% { opacity: 0; } }
a.cite-marker { text-decoration: none; font-weight: 600; border-radius: 4px; padding: 0 .2em;
  color: #111827 !important; cursor: pointer; }
#sources .sources { max-height: 560px; overflow: auto; }
#sources .source-tabs { display: flex; flex-wrap: wrap; gap: .3em; margin-bottom: .5em; }
#sources .source-tab { border: 1px solid var(--border-color-primary); border-radius: 6px;
  padding: .2em .6em; background: var(--background-fill-secondary); cursor: pointer;
  font-size: .85em; }
#sources .source-tab.active { border-color: var(--color-accent); font-weight: 600; }
#sources .source-text { white-space: pre-wrap; line-height: 1.55; font-size: .92em;
  padding: .6em; border: 1px solid var(--border-color-primary); border-radius: 6px; }
#sources mark.cite { color: #111827; border-radius: 3px; padding: 0 .1em;
  transition: outline-color .2s, box-shadow .2s; }
#sources mark.cite-active { outline: 3px solid #dc2626; box-shadow: 0 0 0 6px rgba(220,38,38,.25); }
#sources .citation-list { font-size: .85em; margin-top: .6em; }
#sources .citation-list .offsets { color: var(--body-text-color-subdued); }
#sources .stale, #sources .sources-note { color: var(--body-text-color-subdued); }
#sources .gap { color: var(--body-text-color-subdued); }
.cite-badge { display: inline-block; min-width: 1.2em; text-align: center; border-radius: 4px;
  font-size: .8em; color: #111827; margin-left: .15em; }
.cite-c1 { background: #fde68a !important; } .cite-c2 { background: #a7f3d0 !important; }
.cite-c3 { background: #bfdbfe !important; } .cite-c4 { background: #fbcfe8 !important; }
.cite-c5 { background: #ddd6fe !important; } .cite-c6 { background: #fed7aa !important; }
.cite-c7 { background: #99f6e4 !important; } .cite-c8 { background: #e5e7eb !important; }
#sources .page-view { margin: 0 0 .6em 0; }
#sources .page-wrap { position: relative; line-height: 0;
  border: 1px solid var(--border-color-primary); }
#sources .page-image { width: 100%; height: auto; display: block; }
#sources mark.page-mark { position: absolute; background: transparent !important; padding: 0;
  border-radius: 2px; }
#sources .page-view figcaption { font-size: .8em; color: var(--body-text-color-subdued); }
#upload-status .upload-list { font-size: .85em; margin: .3em 0; padding-left: 1.2em; }
#upload-status .upload-refused { color: #b91c1c; }
#mode { text-align: right; }
#mode .mode-badge { display: inline-block; border: 1px solid var(--border-color-primary);
  border-radius: 999px; padding: .15em .7em; font-size: .85em; }
#status .status-table { font-size: .85em; width: 100%; border: none !important; }
#status .status-table :is(tr, th, td) { border: none !important;
  padding: .15em .5em !important; }
#status .status-table th { text-align: left; font-weight: 600; white-space: nowrap; }
"""

# Clicking [n] (in an answer or in the citation list) switches to the tab of its document, scrolls
# to its <mark> and emphasises it. The source panel may still be re-rendering for an older answer,
# so the mark is looked for until it appears (or 5 s pass). Each newly shown sources panel scrolls
# itself (not the page) to its first mark, once its page images have been decoded.
JS = """
<script>
(() => {
  if (window.assistantCitations) return;
  const show = (root, index) => {
    root.querySelectorAll(".source-doc").forEach(s => {
      s.hidden = s.dataset.sourceIndex !== index;
    });
    root.querySelectorAll(".source-tab").forEach(t =>
      t.classList.toggle("active", t.dataset.sourceIndex === index));
  };
  const focus = (turn, n, deadline) => {
    const root = document.querySelector(`#sources .sources[data-turn="${turn}"]`);
    const mark = root && root.querySelector(`mark[data-cites~="${n}"]`);
    if (!mark) {
      if (performance.now() < deadline) requestAnimationFrame(() => focus(turn, n, deadline));
      return;
    }
    show(root, mark.closest(".source-doc").dataset.sourceIndex);
    document.querySelectorAll("#sources mark.cite-active")
      .forEach(m => m.classList.remove("cite-active"));
    mark.classList.add("cite-active");
    reveal(root, mark, "smooth");
  };
  const reveal = (root, mark, behavior) => {
    const pane = root.getBoundingClientRect(), box = mark.getBoundingClientRect();
    const top = root.scrollTop + box.top - pane.top - (root.clientHeight - box.height) / 3;
    root.scrollTo({top: Math.max(0, top), behavior});
  };
  // Gradio may morph the panel in place, so "new" is a turn the element has not shown yet.
  const scrollNew = () => {
    document.querySelectorAll("#sources .sources[data-turn]").forEach(root => {
      if (root.dataset.scrolledTurn === root.dataset.turn) return;
      root.dataset.scrolledTurn = root.dataset.turn;
      const mark = root.querySelector(".source-doc:not([hidden]) mark.cite");
      if (!mark) return;
      const images = [...root.querySelectorAll("img.page-image")];
      Promise.all(images.map(i => i.decode().catch(() => null)))
        .then(() => requestAnimationFrame(() => reveal(root, mark, "auto")));
    });
  };
  new MutationObserver(scrollNew).observe(document.documentElement,
                                          {childList: true, subtree: true});
  document.addEventListener("click", (event) => {
    const marker = event.target.closest && event.target.closest("a.cite-marker");
    if (marker) {
      const m = /^#cite-(\\d+)-(\\d+)$/.exec(marker.getAttribute("href") || "");
      if (m) { event.preventDefault(); focus(m[1], m[2], performance.now() + 5000); }
      return;
    }
    const tab = event.target.closest && event.target.closest("#sources .source-tab");
    if (tab) show(tab.closest(".sources"), tab.dataset.sourceIndex);
  });
  window.assistantCitations = {focus};
})();
</script>
"""


class ChatUI:
    """The Blocks app's callbacks, bound to one `Assistant`."""

    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant
        self.root = assistant.settings.seeds_dir.resolve()

    def read(self, source: str) -> str | None:
        """The text of a document the index holds, else None.

        The chat state comes from the browser, so its citations are claims: only a document that
        ingest indexed is read (never `.env` or a skipped file), and `ui_html` marks a span only
        where the document holds exactly the quoted text.
        """
        if self.root not in (self.root / source).resolve().parents:
            return None
        return self.assistant.source_text(source)

    def _holds(self, c: dict[str, Any]) -> bool:
        """Whether an indexed document holds exactly this quote at these offsets."""
        text = self.read(c["source"])
        return text is not None and text[c["start"] : c["end"]] == c["quote"]

    # -- labels ---------------------------------------------------------------------------------
    def model_name(self) -> str | None:
        name = getattr(self.assistant, "model_name", None)
        return name or getattr(self.assistant.settings, "llm_model", None)

    def mode(self) -> str:
        mode = getattr(self.assistant, "mode", None) or self.assistant.settings.mode
        return ui_html.mode_label(str(mode), self.model_name())

    def mode_html(self, label: str | None = None) -> str:
        return f'<span class="mode-badge">Mode: {ui_html.esc(label or self.mode())}</span>'

    def status(self, message: str = "") -> str:
        try:
            status = self.assistant.status()
        except AssistantError as exc:
            status, message = {"indexed": False}, str(exc)
        return ui_html.status_html(status, self.mode(), message)

    # -- chat -----------------------------------------------------------------------------------
    def messages(self, turns: list[Turn], partial: str | None = None) -> list[dict[str, str]]:
        """The chatbot's messages: two per turn, so message index // 2 is the turn."""
        out = []
        model = self.model_name()
        for i, t in enumerate(turns):
            out.append({"role": "user", "content": ui_html.question_html(t["question"])})
            if t.get("answer") is not None:
                content = ui_html.answer_html(t["answer"], i, model)
            elif t.get("error"):
                content = ui_html.error_html(*t["error"])
            else:
                content = ui_html.pending_html(partial or "")
            out.append({"role": "assistant", "content": content})
        return out

    def sources(self, turns: list[Turn], turn: int) -> str:
        if not 0 <= turn < len(turns) or turns[turn].get("answer") is None:
            return ui_html.sources_placeholder()
        return ui_html.sources_html(turns[turn]["answer"], turn, self.read, self.page_images)

    def page_images(self, source: str, items: list[tuple[int, dict[str, Any]]]
                    ) -> list[ui_html.PageView]:  # fmt: skip
        """A PDF's cited pages rendered here, each verified span highlighted in its colour.

        `items` are the citations `sources_html` verified against the text this server extracts
        itself; their page is computed from that text, not taken from the browser's state.
        """
        if not source.lower().endswith(".pdf") or self.read(source) is None:
            return []
        from assistant.documents import pdf

        text = self.read(source) or ""
        by_page: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for n, c in items:
            by_page.setdefault(pdf.page_of(text, c["start"]), []).append((n, c))
        views = []
        settings = self.assistant.settings
        for page, cites in sorted(by_page.items()):
            spans = [(c["start"], c["end"], (*ui_html.colour_rgb(n), 170)) for n, c in cites]
            try:
                image = pdf.render_page(self.root / source, page, spans,
                                        max_bytes=mb_to_bytes(settings.max_file_mb),
                                        max_pages=settings.max_pdf_pages)  # fmt: skip
            except (AssistantError, OSError):
                log.warning("Could not render page %d of %s.", page, source)
                return []
            url = "data:image/png;base64," + base64.b64encode(image.png).decode("ascii")
            views.append((page, url, [(cites[i][0], box) for i, box in image.boxes]))
        return views

    def respond(self, question: str, turns: list[Turn] | None) -> Iterator[tuple[Any, ...]]:
        """Answer one question (streaming when the assistant can), with the history so far."""
        question = question if isinstance(question, str) else ""
        if not question.strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        turns = kept_turns(turns) or []
        history = history_messages(turns)
        turn: Turn = {"question": question, "answer": None, "error": None}
        turns.append(turn)
        index = len(turns) - 1
        try:
            check_text(question, "question")
        except AssistantError as exc:  # kept as shown: a lone surrogate cannot go to the browser
            turn["question"] = question.encode("utf-8", "replace").decode("utf-8")
            turn["error"] = [exc.message, exc.hint]
            yield self.messages(turns), turns, gr.skip(), gr.skip(), gr.skip(), ""
            return
        yield self.messages(turns), turns, gr.skip(), gr.skip(), gr.skip(), ""
        try:
            answer = None
            partial = ""
            for item in answer_items(self.assistant, question, history):
                if isinstance(item, Answer):
                    answer = item
                    break
                partial += item
                yield self.messages(turns, partial), turns, gr.skip(), gr.skip(), gr.skip(), ""
            if answer is None:
                raise RuntimeError("The answer stream ended without a final answer.")
        except AssistantError as exc:
            turn["error"] = [exc.message, exc.hint]
            yield self.messages(turns), turns, gr.skip(), gr.skip(), gr.skip(), ""
            return
        except Exception:
            log.exception("Answering %r failed.", question[:200])
            turn["error"] = ["Something went wrong while answering.", "See the server log."]
            yield self.messages(turns), turns, gr.skip(), gr.skip(), gr.skip(), ""
            return
        turn["answer"] = clean_answer(answer.to_dict())
        label = ui_html.mode_label(answer.mode, self.model_name())
        yield (
            self.messages(turns),
            turns,
            self.sources(turns, index),
            index,
            self.mode_html(label),
            "",
        )

    def select(self, event: gr.SelectData, turns: list[Turn] | None, shown: int) -> tuple[Any, Any]:
        """Clicking an answer (or a marker in it) shows that answer's sources."""
        index = event.index[0] if isinstance(event.index, list | tuple) else event.index
        if type(index) is not int:
            return gr.skip(), gr.skip()
        turn = index // 2
        turns = kept_turns(turns)
        if turns is None or turn < 0:
            return gr.skip(), gr.skip()
        if turn == shown or turn >= len(turns) or turns[turn].get("answer") is None:
            return gr.skip(), gr.skip()
        return self.sources(turns, turn), turn

    def restore(self, turns: list[Turn] | None) -> tuple[Any, ...]:
        """On page load: the chat kept in the browser, its last sources, the status and mode."""
        kept = kept_turns(turns)
        if kept is None:
            log.info("Ignoring a chat state this UI did not write.")
            kept = []
        for t in kept:
            if t["answer"] is None and not t["error"]:
                t["error"] = ["This answer was interrupted (the page was reloaded).", ""]
            if t["answer"] and t["answer"].get("related"):  # shown as quoted: only what matches
                t["answer"]["related"] = [c for c in t["answer"]["related"] if self._holds(c)]
        last = max((i for i, t in enumerate(kept) if t.get("answer") is not None), default=-1)
        return (
            self.messages(kept),
            kept,
            self.sources(kept, last),
            last,
            self.status(),
            self.mode_html(),
        )

    def clear(self) -> tuple[Any, ...]:
        return [], [], ui_html.sources_placeholder(), -1, ""

    # -- documents: upload and remove -----------------------------------------------------------
    def documents(self) -> list[str]:
        try:
            return [p.relative_to(self.root).as_posix()
                    for p in discover(self.assistant.settings.seeds_dir)]  # fmt: skip
        except (AssistantError, OSError):
            return []

    def _refuse_anonymous(self, request: gr.Request | None) -> None:
        if self.assistant.settings.ui_auth and not getattr(request, "username", None):
            raise BadInputError("Log in to add or remove documents.", "Reload the page and log in.")

    def upload(self, files: list[Any] | None, request: gr.Request,
               progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[Any, ...]:  # noqa: B008
        """Store the dropped files in the seeds folder (each checked), then ingest them."""
        lines: list[tuple[str, bool]] = []
        added = 0
        try:
            self._refuse_anonymous(request)
            for f in files or []:
                path = getattr(f, "path", None) or getattr(f, "name", None) or str(f)
                name = getattr(f, "orig_name", None) or os.path.basename(path)
                try:
                    stored = self.assistant.add_document(name, path)
                except AssistantError as exc:
                    lines.append((str(exc), False))
                    continue
                added += stored.status != "unchanged"
                lines.append((_stored_line(stored), True))
            if added:
                progress(0, desc="Ingesting")
                s = self.assistant.ingest(progress="always")
                lines.append((f"Ingested: added {s.added}, updated {s.updated}, "
                              f"unchanged {s.unchanged}; answerable now.", True))  # fmt: skip
        except AssistantError as exc:
            lines.append((str(exc), False))
        return (ui_html.upload_html(lines), None, self.status(),
                gr.update(choices=self.documents(), value=None))  # fmt: skip

    def remove(self, source: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Move a document out of the seeds folder (into .removed/) and ingest."""
        lines: list[tuple[str, bool]] = []
        try:
            self._refuse_anonymous(request)
            if not source:
                raise BadInputError("Pick a document to remove.", "")
            where = self.assistant.remove_document(source)
            self.assistant.ingest()
            kept = where.parent.relative_to(self.root).as_posix()
            lines.append((f"Removed {source} from the index (the file is kept in {kept}/).", True))
        except AssistantError as exc:
            lines.append((str(exc), False))
        return (ui_html.upload_html(lines), self.status(),
                gr.update(choices=self.documents(), value=None))  # fmt: skip

    def reingest(self) -> str:
        t0 = time.perf_counter()
        try:
            s = self.assistant.ingest()
        except AssistantError as exc:
            return self.status(f"Re-ingest failed: {exc}")
        return self.status(
            f"Re-ingested in {time.perf_counter() - t0:.1f} s: added {s.added}, "
            f"updated {s.updated}, removed {s.removed}, unchanged {s.unchanged}."
        )

    # -- the Gradio API endpoint ----------------------------------------------------------------
    def ask_api(
        self, question: str = "", history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        """Answer `question` from the documents: the answer as JSON, with verified citations.

        `history` is the conversation so far, as [{"role": "user"|"assistant", "content": ...}].
        """
        try:
            if isinstance(question, str):
                check_text(question, "question")
            return self.assistant.ask(question, history=history or None).to_dict()
        except AssistantError as exc:
            raise gr.Error(str(exc)) from None
        except Exception:
            log.exception("The /ask API call failed.")
            raise gr.Error("Something went wrong while answering; see the server log.") from None

    def examples(self) -> list[str]:
        """Questions about names that recur in the documents, kept if they get an answer."""
        try:
            paths = discover(self.assistant.settings.seeds_dir)
        except (AssistantError, OSError):
            return []
        texts = []
        for path in paths[:20]:
            try:
                texts.append(read_text(path))
            except (AssistantError, OSError, UnicodeDecodeError):
                continue  # one unreadable file must not cost the others their examples
        candidates = ui_html.example_questions(texts, k=12)
        try:
            indexed = self.assistant.status().get("indexed")
        except AssistantError:
            indexed = False
        if not indexed or getattr(self.assistant, "mode", "extractive") != "extractive":
            return candidates[:EXAMPLES]  # never build the index or pay an LLM for examples
        picked: list[str] = []
        deadline = time.monotonic() + EXAMPLE_BUDGET_S
        for q in candidates:
            if len(picked) == EXAMPLES or time.monotonic() > deadline:
                break
            try:
                if not self.assistant.ask(q).abstained:
                    picked.append(q)
            except AssistantError:
                break
        return picked


def _stored_line(stored: Any) -> str:
    if stored.status == "renamed":
        return (f"Added {stored.source} (another file is already called {stored.requested}; "
                "both are kept).")  # fmt: skip
    if stored.status == "unchanged":
        return f"{stored.source} is already there with the same content."
    return f"Added {stored.source}."


MAX_OFFSET = 2**53  # larger integers are not JSON numbers every client reads alike


def kept_turns(turns: Any) -> list[Turn] | None:
    """The chat kept in the browser, each turn rebuilt from the fields this UI writes.

    None if any turn is not one this UI could have written: the state comes from the browser and
    may be tampered with, and what goes back to it must encode (no lone surrogates, no integers
    past 64 bits: Gradio's encoder would fail mid-stream).
    """
    if not isinstance(turns, list):
        return None
    out = []
    for t in turns:
        turn = _clean_turn(t)
        if turn is None:
            return None
        out.append(turn)
    try:
        json.dumps(out, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        return None
    return out


def _clean_turn(t: Any) -> Turn | None:
    if not isinstance(t, dict) or not isinstance(t.get("question"), str):
        return None
    error, answer = t.get("error"), t.get("answer")
    if error is not None and not (
        isinstance(error, list) and len(error) <= 2 and all(isinstance(e, str) for e in error)
    ):
        return None
    turn: Turn = {"question": t["question"], "answer": None, "error": list(error or []) or None}
    if answer is not None:
        turn["answer"] = clean_answer(answer)
        if turn["answer"] is None:
            return None
    return turn


def clean_answer(answer: Any) -> dict[str, Any] | None:
    """The fields of `Answer.to_dict()` the UI shows, type-checked; None if it is not one."""
    if not (
        isinstance(answer, dict)
        and isinstance(answer.get("answer"), str)
        and isinstance(answer.get("citations"), list)
    ):
        return None
    citations = _clean_citations(answer["citations"])
    related = _clean_citations(answer.get("related", []))
    if citations is None or related is None:
        return None
    out = {
        "answer": answer["answer"],
        "abstained": answer.get("abstained") is True,
        "mode": answer.get("mode") if isinstance(answer.get("mode"), str) else "",
        "citations": citations,
    }
    if related:
        out["related"] = related
    if isinstance(answer.get("notice"), str) and answer["notice"]:
        out["notice"] = answer["notice"]
    return out


def _clean_citations(items: Any) -> list[dict[str, Any]] | None:
    """Citations (or related passages) of a kept answer, type-checked; None if any is not one."""
    if not isinstance(items, list):
        return None
    out = []
    for c in items:
        if not (
            isinstance(c, dict)
            and isinstance(c.get("source"), str)
            and isinstance(c.get("quote"), str)
            and type(c.get("start")) is int
            and type(c.get("end")) is int
            and 0 <= c["start"] <= c["end"] <= MAX_OFFSET
        ):
            return None
        kept = {k: c[k] for k in ("source", "start", "end", "quote")}
        if type(c.get("page")) is int and 0 < c["page"] <= MAX_OFFSET:
            kept["page"] = c["page"]  # a PDF's (only a label: the page image is computed here)
        out.append(kept)
    return out


def history_messages(turns: list[Turn]) -> list[dict[str, str]]:
    """The answered turns as [{"role", "content"}] for `Assistant.ask(history=...)`."""
    out = []
    for t in turns:
        if t.get("answer") is not None:
            out.append({"role": "user", "content": t["question"]})
            out.append({"role": "assistant", "content": t["answer"]["answer"]})
    return out


def answer_items(
    assistant: Any, question: str, history: list[dict[str, str]]
) -> Iterator[str | Answer]:
    """Text deltas then the final `Answer`, from `stream` when the assistant has it."""
    stream = getattr(assistant, "stream", None)
    if stream is not None:
        yield from stream(question, history=history or None)
        return
    yield assistant.ask(question, history=history or None)


class _Blocks(gr.Blocks):
    """Blocks whose "too few inputs" refusal is one sentence, not the components' reprs."""

    def validate_inputs(self, block_fn: Any, inputs: list[Any]) -> None:
        if len(inputs) < len(block_fn.inputs):
            raise gr.Error(
                f"The call sent {len(inputs)} input value(s); this endpoint takes "
                f"{len(block_fn.inputs)}. See the API page (/?view=api) for its parameters."
            )
        super().validate_inputs(block_fn, inputs)


def build_blocks(assistant: Any) -> gr.Blocks:
    """The chat app: chat and examples on the left; sources and index status on the right."""
    ui = ChatUI(assistant)
    examples = ui.examples()
    with _Blocks(title="Assistant: grounded answers", analytics_enabled=False) as demo:
        # the chat lives in the browser (localStorage), so a reload keeps answers and citations
        turns = gr.BrowserState([], storage_key="assistant-chat")
        shown = gr.State(-1)
        with gr.Row(equal_height=False):
            gr.Markdown("### Answers from your documents, with each cited passage highlighted")
            mode = gr.HTML(ui.mode_html(), elem_id="mode", js_on_load=None, min_width=220)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                chat = gr.Chatbot(
                    elem_id="chat",
                    height=560,
                    render_markdown=False,
                    sanitize_html=True,
                    feedback_options=None,
                    show_label=False,
                    buttons=[],  # no "share" (it posts to Hugging Face)
                    placeholder="Ask about the documents. Answers quote them, and [n] shows where.",
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="question",
                        show_label=False,
                        scale=8,
                        placeholder="Ask a question about the documents",
                        submit_btn=False,
                        autofocus=True,
                        container=False,
                    )
                    send = gr.Button("Ask", elem_id="ask", variant="primary", scale=1, min_width=80)
                    clear = gr.Button("Clear chat", elem_id="clear", scale=1, min_width=130)
                if examples:
                    gr.Examples(
                        examples=[[q] for q in examples],
                        inputs=[question],
                        label="Example questions",
                        elem_id="examples",
                    )
            with gr.Column(scale=5):
                sources = gr.HTML(
                    ui_html.sources_placeholder(),
                    elem_id="sources",
                    label="Sources",
                    js_on_load=None,
                )
                with gr.Accordion("Index status", open=True):
                    status = gr.HTML(ui.status(), elem_id="status", js_on_load=None)
                    reingest = gr.Button("Re-ingest documents", elem_id="reingest", size="sm")
                with gr.Accordion("Documents", open=False, elem_id="documents"):
                    upload = gr.File(
                        file_count="multiple",
                        file_types=[".pdf", ".docx", ".txt", ".md", ".html", ".htm"],
                        label="Drop PDF, Word, text, Markdown or HTML files here",
                        elem_id="upload",
                    )
                    upload_status = gr.HTML("", elem_id="upload-status", js_on_load=None)
                    with gr.Row(equal_height=True):
                        listed = gr.Dropdown(choices=ui.documents(), value=None, label="Document",
                                             elem_id="doc-list", scale=4)  # fmt: skip
                        remove = gr.Button("Remove", elem_id="remove", size="sm", scale=1)

        outputs = [chat, turns, sources, shown, mode, question]
        for trigger in (question.submit, send.click):
            trigger(
                ui.respond,
                [question, turns],
                outputs,
                api_visibility="private",
                concurrency_id="answer",
                show_progress="minimal",
            )
        chat.select(
            ui.select,
            [turns, shown],
            [sources, shown],
            api_visibility="private",
            show_progress="hidden",  # a click on [n] must not fade the panel it scrolls
        )
        for trigger in (clear.click, chat.clear):  # the chatbot's own bin icon clears too
            trigger(
                ui.clear,
                None,
                [chat, turns, sources, shown, question],
                api_visibility="private",
                queue=False,
            )
        reingest.click(ui.reingest, None, status, api_visibility="private", concurrency_id="answer")
        upload.upload(ui.upload, [upload], [upload_status, upload, status, listed],
                      api_visibility="private", concurrency_id="answer")  # fmt: skip
        remove.click(ui.remove, [listed], [upload_status, status, listed],
                     api_visibility="private", concurrency_id="answer")  # fmt: skip
        demo.load(
            ui.restore,
            [turns],
            [chat, turns, sources, shown, status, mode],
            api_visibility="private",
        )
        gr.api(ui.ask_api, api_name="ask", concurrency_id="answer")
    return demo


def build_app(assistant: Any, extra_hosts: tuple[str, ...] = ()) -> Any:
    """The FastAPI app: `/v1/...` (OpenAI-compatible) and the Gradio UI and API at `/`."""
    settings = assistant.settings
    app = create_app(
        assistant,
        auth=settings.ui_auth,
        queue_size=settings.ui_queue_size,
        max_request_bytes=settings.max_request_bytes,
        max_history_messages=settings.max_history_messages,
        max_history_chars=settings.max_history_chars,
        allowed_hosts=(*settings.host_allow_list(), *extra_hosts),
    )
    demo = build_blocks(assistant).queue(
        max_size=settings.ui_queue_size, default_concurrency_limit=1
    )
    user, _, password = settings.ui_auth.partition(":")
    theme = gr.themes.Default(  # system fonts: nothing is fetched from a font CDN
        font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=(user, password) if user else None,
        footer_links=["api"],
        max_file_size=mb_to_bytes(settings.max_upload_mb),
        theme=theme,
        css=CSS,
        head=JS,
        show_error=False,  # our callbacks raise gr.Error, which is shown; nothing else leaks
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`, or `ServeError` saying why not (in use, not permitted)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServeError(
            f"Cannot listen on {host!r}: {getattr(exc, 'strerror', None) or exc}.",
            "Pass --host an address of this machine, e.g. 127.0.0.1 or 0.0.0.0.",
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not SO_REUSEPORT
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"Port {port} is already in use on {host}.",
                "Stop the program that uses it, or pass another --port.",
            ) from None
        raise ServeError(
            f"Cannot listen on {shown}: {exc.strerror or exc}.",
            "Ports below 1024 need root; pick another --port or --host.",
        ) from None
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, whose stop request (SIGTERM, Ctrl+C) also arms the exit deadline: its
    own graceful shutdown, or a thread it leaves, cannot keep the process alive past it. A stop
    requested before uvicorn took the signals over (while the app was built), whose exception
    Python dropped, is honoured at the first tick (see `shutdown`)."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        arm_exit_deadline(sig)
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if stop_requested() is not None:
            self.should_exit = True
        return await super().on_tick(counter)


def serve(assistant: Any, *, host: str = "127.0.0.1", port: int = 7860) -> int:
    """Run the UI and both APIs until interrupted."""
    if host not in LOOPBACK and not assistant.settings.ui_auth:
        log.warning(
            "Serving on %s without ASSISTANT_UI_AUTH: anyone who can reach it can use it.", host
        )
    sock = listen(host, port)  # before the slow app build: a taken port fails at once
    # the address it was started on is served too (a wildcard address names no host)
    named = () if host in ("0.0.0.0", "::", "") else (host.lower(),)
    app = build_app(assistant, named)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"Serving the assistant on http://{shown}:{port}/  (OpenAI-compatible API at "
        f"http://{shown}:{port}/v1; Ctrl+C stops)",
        file=sys.stderr,
        flush=True,
    )
    # open event streams (browsers, gradio_client) would otherwise hold up Ctrl+C and SIGTERM
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3)
    try:
        _Server(config).run(sockets=[sock])
    finally:
        sock.close()
    stopped_by = stop_requested()
    return 0 if stopped_by is None else 128 + stopped_by
