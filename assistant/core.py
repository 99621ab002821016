"""The `Assistant` facade: the one public entry point; CLI, UI and evals are thin adapters."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from assistant.answering.citations import SourceReader, verify, with_pages
from assistant.config import Settings
from assistant.errors import AssistantError, BadInputError, IndexMissingError
from assistant.inputs import check_history, check_text
from assistant.types import Answer, Citation, IngestSummary

log = logging.getLogger(__name__)


class Assistant:
    """Grounded question answering over a folder of documents, with verified citations.

    Keyword arguments override environment variables (`ASSISTANT_SEEDS_DIR`,
    `ASSISTANT_INDEX_DIR`, `ASSISTANT_MODE`, ...), which override the defaults; see README.md.
    `encoder` and `store` may be injected (tests, benchmarks); by default they are created lazily.
    `chat_model` (an `llm.ChatModel`) may be injected too; by default LLM mode talks to OpenAI or
    the server at `OPENAI_BASE_URL`, and local mode to a llama.cpp server it starts itself and
    stops at `close()` or exit (see docs/llm.md). `with Assistant(...) as a:` closes it.
    """

    def __init__(self, *, seeds_dir: str | Path | None = None, index_dir: str | Path | None = None,
                 settings: Settings | None = None, encoder: Any = None,
                 store_factory: Callable[[], Any] | None = None, chat_model: Any = None,
                 **overrides: Any) -> None:
        if settings is None:
            settings = Settings.load(seeds_dir=seeds_dir, index_dir=index_dir, **overrides)
        self.settings = settings
        self._encoder = encoder
        self._store_factory = store_factory
        self._store: Any = None
        self._chat_model = chat_model
        self._engine: Any = None
        self._engine_version: Any = None  # build_key of the loaded manifest
        self._store_version: Any = None  # build_key current when the store was opened
        # stores replaced by a reopen, with when: asks may still run on them for a while
        self._retired_stores: list[tuple[float, Any]] = []
        self._lock = threading.RLock()
        self._reader = SourceReader(settings.seeds_dir, settings.max_file_mb,
                                    settings.max_pdf_pages)

    # -- components, created on first use -------------------------------------------------------
    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from assistant.indexing.embedding import MiniLMEncoder

            self._encoder = MiniLMEncoder(
                self.settings.model_path,
                self.settings.tokenizer_path,
                cache_dir=self.settings.cache_dir,
            )
        return self._encoder

    def _new_store(self) -> Any:
        if self._store_factory is not None:
            return self._store_factory()
        from assistant.indexing.store import ChromaStore

        s = self.settings  # a Chroma server when chroma_url is set (docs/deployment.md)
        return ChromaStore(s.index_dir / "chroma", url=s.chroma_url or None, token=s.chroma_token,
                           tenant=s.chroma_tenant, database=s.chroma_database,
                           collection=s.chroma_collection, timeout=s.chroma_timeout)

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = self._new_store()
        return self._store

    @property
    def mode(self) -> str:
        """The answering mode that runs: `llm`, `local` or `extractive` (`auto` resolved here)."""
        if self.settings.mode != "auto":
            return self.settings.mode
        from assistant.llm.client import llm_configured

        return "llm" if self._chat_model is not None or llm_configured() else "extractive"

    @property
    def chat_model(self) -> Any:
        with self._lock:
            if self._chat_model is None and self.mode == "local":
                from assistant.llm.local import LocalChatModel

                self._chat_model = LocalChatModel.from_settings(self.settings)
            elif self._chat_model is None:
                from assistant.llm.client import OpenAIChatModel

                self._chat_model = OpenAIChatModel.from_settings(self.settings)
            return self._chat_model

    @property
    def model_name(self) -> str | None:
        """The chat model's name in LLM and local mode (None in extractive mode)."""
        if self.mode == "extractive":
            return None
        if self.mode == "local" or self._chat_model is not None:
            return str(self.chat_model.name)
        return self.settings.llm_model

    def start_model(self) -> float:
        """Start the local model server now instead of at the first question (`serve` does);
        the seconds it took. Raises `LocalModelError` when it cannot start."""
        start = getattr(self.chat_model, "start", None) if self.mode == "local" else None
        return float(start()) if start else 0.0

    def close(self) -> None:
        """Stop the local model server, if one runs (it is stopped at exit anyway)."""
        close = getattr(self._chat_model, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -----------------------------------------------------------------------------
    def ingest(self, *, rebuild: bool = False, progress: bool | str = False) -> IngestSummary:
        """Build or refresh the index; unchanged documents are skipped.

        `progress=True` shows a tqdm bar on a terminal, `"always"` shows it anyway.

        Asks keep answering from the previous version meanwhile (no lock held here: the index's
        file lock orders ingests, and the next ask loads the new version).
        """
        from assistant.indexing.ingest import ingest
        from assistant.indexing.manifest import build_key, read_manifest

        summary = ingest(self.settings, lambda: self.encoder, self._store_for_ingest,
                         rebuild=rebuild, progress=progress)
        manifest = read_manifest(self.settings.index_dir)
        with self._lock:  # this process's own client wrote this version: it is current for it
            ours = manifest is not None and manifest["version"] == summary.version
            self._store_version = build_key(manifest) if ours else None
        return summary

    def add_document(self, name: str, path: str | Path) -> Any:
        """Add the file at `path` to the seeds folder as `name`, checked first (not ingested).

        Returns `documents.uploads.Stored` (its source name, and whether it was renamed because
        another file had the name); raises `BadInputError` with the reason if it cannot be read.
        """
        from assistant.documents.reader import mb_to_bytes
        from assistant.documents.uploads import store_upload

        s = self.settings
        return store_upload(s.seeds_dir, name, Path(path), max_pdf_pages=s.max_pdf_pages,
                            max_bytes=mb_to_bytes(min(s.max_upload_mb, s.max_file_mb)))

    def remove_document(self, source: str) -> Path:
        """Move a document out of the seeds folder (into `.removed/` there); not re-ingested."""
        from assistant.documents.uploads import remove_document

        return remove_document(self.settings.seeds_dir, source)

    def ask(self, question: str, *, history: list[dict[str, str]] | None = None) -> Answer:
        """Answer a question from the documents, with verified citations (or abstain)."""
        history = self._check_history(history)
        if self.mode in ("llm", "local"):
            *_, answer = self._ask_llm(question, history, stream=False)
            return answer
        return self._ask_extractive(question, history)

    def stream(self, question: str, history: list[dict[str, str]] | None = None
               ) -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated, then the final `Answer`.

        In LLM mode each sentence is yielded once it is grounded, with its verified markers, and
        unsupported sentences never are: the deltas joined are the final `Answer`'s text (unless
        the model fails midway and the offline answer replaces them).
        """
        history = self._check_history(history)
        if self.mode in ("llm", "local"):
            yield from self._ask_llm(question, history, stream=True)
            return
        answer = self._ask_extractive(question, history)
        yield answer.text
        yield answer

    def _ask_llm(self, question: str, history: list[dict[str, str]] | None, *, stream: bool
                 ) -> Iterator[str | Answer]:
        from assistant.answering.llm_answer import LLMAnswerer

        t0 = time.perf_counter()
        question = self._check_question(question)
        history = self._check_history(history)
        engine = self._ensure_engine()
        model = self.chat_model
        if hasattr(model, "last_start_seconds"):
            model.last_start_seconds = 0.0
        answerer = LLMAnswerer(engine, self.encoder, model, self._reader, self._ask_extractive,
                               self.settings)
        for item in answerer.run(question, history, stream=stream, t0=t0):
            if isinstance(item, Answer):
                item.citations = with_pages(item.citations, self._reader)
                item.related = with_pages(item.related, self._reader)
                item.trace.setdefault("index_version", engine.manifest["version"])
                item.sources = item.sources or engine.titles(item.citations or item.related)
                if self.mode == "local":  # the local server's start-up, paid by this ask
                    item.mode = "local" if item.mode == "llm" else item.mode
                    if started := getattr(model, "last_start_seconds", 0.0):
                        item.timings_ms["local_start"] = started * 1000
            yield item

    def _ask_extractive(self, question: str, history: list[dict[str, str]] | None) -> Answer:
        t0 = time.perf_counter()
        question = self._check_question(question)
        history = self._check_history(history)
        engine = self._ensure_engine()
        t1 = time.perf_counter()
        search_text = _with_history(question, history)
        retrieval = engine.retriever.retrieve(question, search_text=search_text)
        t2 = time.perf_counter()
        from assistant.answering.answer_types import asks_to_override

        instruction = asks_to_override(question)
        picks, decision, ranked = ([], None, []) if instruction else engine.answerer.answer(
            question, retrieval.question_tokens, retrieval.evidence)
        citations = [Citation(p.evidence.source, p.start, p.end, p.text) for p in picks]
        verified = with_pages(verify(citations, self._reader), self._reader)
        t3 = time.perf_counter()
        timings = {"load": (t1 - t0) * 1000, "retrieve": (t2 - t1) * 1000,
                   **{f"retrieve.{k}": v for k, v in retrieval.timings_ms.items()},
                   "answer": (t3 - t2) * 1000}
        confidence = decision.confidence if decision else 0.0
        trace = {"confidence": round(confidence, 4), "threshold": engine.answerer.threshold,
                 "search_text": search_text,
                 "chunk_spans": [engine.chunk_span(p) for p, _ in retrieval.chunks],
                 "evidence": [(c.evidence.source, c.evidence.start, c.evidence.end,
                               round(c.rank, 4)) for c in ranked[:5]],
                 "index_version": engine.manifest["version"]}
        if decision is not None:
            trace["answerability"] = decision.to_trace()
        if ranked:  # what would be quoted at any threshold (the eval's risk-coverage curve)
            trace["candidate"] = " ".join(e.text for e in (ranked[0].evidence, *ranked[0].extra))
        if not verified:
            if citations:
                log.warning("Every citation failed verification; the index may be stale.")
            timings["total"] = (time.perf_counter() - t0) * 1000
            notice = None
            if instruction:
                notice = ("That reads as an instruction, not a question; answers come only "
                          "from the documents.")
            elif citations:
                notice = "The index is out of date with the documents; run `assistant ingest`."
            related = [] if instruction else self._related(ranked)
            return Answer(_abstain_text(), True, "extractive", [], timings, question,
                          notice=notice, trace=trace, related=related,
                          sources=engine.titles(related))
        text = " ".join(f"{c.quote} [{i}]" for i, c in enumerate(verified, 1))
        timings["total"] = (time.perf_counter() - t0) * 1000
        return Answer(text, False, "extractive", verified, timings, question, trace=trace,
                      sources=engine.titles(verified))

    def _related(self, ranked: list[Any]) -> list[Citation]:
        """The closest passages to an abstained question, verified: related, not an answer.

        Only candidates whose relevance (the LLM mode's gate: do the passages bear on the
        question at all) clears `related_threshold`; at most `related_k`, one per sentence.
        """
        from assistant.answering.answerability import relevance_of

        k, floor = self.settings.related_k, self.settings.related_threshold
        out, seen = [], set()
        for c in ranked:
            if len(out) >= k:
                break
            e = c.evidence
            if (e.source, e.start) in seen or relevance_of(c) < floor:
                continue
            seen.add((e.source, e.start))
            out.append(Citation(e.source, e.start, e.end, e.text))
        return verify(out, self._reader)

    def status(self) -> dict[str, Any]:
        """What is indexed: documents, chunks, model, build time."""
        from assistant.indexing.manifest import read_manifest

        manifest = read_manifest(self.settings.index_dir)
        if manifest is None:
            return {"indexed": False, "index_dir": str(self.settings.index_dir)}
        embedding = manifest.get("embedding")
        return {"indexed": True, "index_dir": str(self.settings.index_dir),
                "documents": len(manifest["documents"]),
                "chunks": sum(d["chunks"] for d in manifest["documents"].values()),
                "embedding_model": embedding.get("model_id") if isinstance(embedding, dict)
                else None,
                "built_at": manifest.get("built_at"),
                "build_seconds": manifest.get("build_seconds"),
                "version": manifest["version"],
                "chroma": self.settings.chroma_url or "embedded",
                "skipped": _count(manifest.get("skipped")),
                "duplicates": _count(manifest.get("duplicates"))}

    def source_text(self, source: str) -> str | None:
        """The text of a document the published index holds; None for any other path.

        The chat UI renders sources through this, so a citation forged in the browser's chat state
        can show nothing that ingest did not index (not `.env`, not a skipped file).
        """
        from assistant.indexing.manifest import read_manifest

        try:
            manifest = read_manifest(self.settings.index_dir)
        except AssistantError:
            return None
        if manifest is None or source not in manifest["documents"]:
            return None
        return self._reader.text(source)

    # -- internals ------------------------------------------------------------------------------
    def _check_question(self, question: Any) -> str:
        if not isinstance(question, str):
            raise BadInputError(f"The question must be text, not {type(question).__name__}.",
                                "Send the question as a string.")
        check_text(question, "question")
        # Zero-width and other invisible characters count as blank: "\u200b\u200b" is empty.
        question = _EDGE_BLANK.sub("", question)
        if not question:
            raise BadInputError("The question is empty.", "Ask a question in words, e.g. "
                                "assistant ask \"Who visited Minsk?\"")
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise BadInputError(f"The question is {len(question)} characters long; the limit is "
                                f"{limit}.", "Shorten it, or raise ASSISTANT_MAX_QUESTION_CHARS.")
        return question

    def _check_history(self, history: Any) -> list[dict[str, str]] | None:
        s = self.settings
        return check_history(history, max_messages=s.max_history_messages,
                             max_chars=s.max_history_chars)

    def _warm_up_in_parallel(self) -> None:
        """Load the embedding model (checksum + ONNX session, mostly native code that releases the
        GIL) in a thread while this one imports chromadb and opens the store: the two largest
        parts of a cold start overlap instead of adding up."""
        if self._encoder is not None or self._store is not None:
            return
        import numpy  # noqa: F401  (imported once here, before both threads need it)

        errors: list[BaseException] = []

        def load() -> None:
            try:
                self.encoder  # noqa: B018
            except BaseException as exc:  # re-raised below, in the caller's thread
                errors.append(exc)

        worker = threading.Thread(target=load, name="assistant-model-load", daemon=True)
        worker.start()
        try:
            self.store  # noqa: B018
        finally:
            worker.join()
        if errors:
            raise errors[0]

    def _ensure_engine(self) -> Any:
        from assistant.indexing.manifest import build_key, read_manifest
        from assistant.indexing.sidecar import load_current

        with self._lock:
            manifest = read_manifest(self.settings.index_dir)
            if manifest is None:
                log.info("No index yet in %s: building it.", self.settings.index_dir)
                self.ingest()
                manifest = read_manifest(self.settings.index_dir)
            if manifest is None:
                raise IndexMissingError(f"There is no index in {self.settings.index_dir}.",
                                        "Build it with: assistant ingest")
            if self._engine is None or self._engine_version != build_key(manifest):
                self._reopen_store_if_stale(build_key(manifest))
                self._warm_up_in_parallel()
                if self._store_version is None:
                    self._store_version = build_key(manifest)
                self._engine = _Engine(self, *load_current(self.settings))
                self._engine_version = build_key(self._engine.manifest)
            return self._engine

    def _store_for_ingest(self) -> Any:
        """The store an ingest writes through, called under the index's ingest lock: a fresh
        client, which sees what earlier ingests of other processes wrote."""
        with self._lock:
            if self._store is not None:
                self._reopen_store_if_stale(object())  # a key no version has: always reopen
            return self.store

    def _reopen_store_if_stale(self, key: Any) -> None:
        """An embedded Chroma client does not see what another process's ingest wrote after it
        was opened: a new version gets a fresh client. A replaced one is closed once it has been
        retired for `RETIRED_STORE_SECONDS`, so asks still running on it finish (closing it at
        the next switch raced with asks when an ingest switched twice in a few milliseconds)."""
        store = self._store
        if store is None or self._store_version == key or not hasattr(store, "reopen"):
            return
        fresh = store.reopen()
        if fresh is store:  # a Chroma server sees every write
            self._store_version = key
            return
        log.info("Index version changed: reopening the embedded Chroma store.")
        now = time.monotonic()
        keep = []
        for retired_at, old in self._retired_stores:
            if now - retired_at >= RETIRED_STORE_SECONDS and hasattr(old, "close"):
                old.close()
            else:
                keep.append((retired_at, old))
        self._retired_stores = [*keep, (now, store)]
        self._store, self._store_version = fresh, key


RETIRED_STORE_SECONDS = 60.0  # far longer than any ask runs on a store it picked up


class _Engine:
    """The loaded index of one version: retriever and answerer."""

    def __init__(self, owner: Assistant, manifest: dict[str, Any], side: Any) -> None:
        from assistant.answering.extractive import ExtractiveAnswerer
        from assistant.answering.retrieve import HybridRetriever
        from assistant.indexing.lexical import LexicalIndex
        from assistant.indexing.manifest import bind_store

        s = owner.settings
        self.manifest = manifest
        self.side = side
        lexical = side.lexical
        if lexical is None:
            lexical = LexicalIndex.load(side.folder / "lexical")
        self.retriever = HybridRetriever(side, lexical, bind_store(owner.store, manifest),
                                         owner.encoder, s.top_k, s.candidate_k, s.rrf_k)
        self.answerer = ExtractiveAnswerer(self.retriever, s.abstain_threshold,
                                           s.max_answer_sentences)

    def titles(self, citations: list[Citation]) -> dict[str, str]:
        """Each cited source's title (from the manifest of this version)."""
        return {c.source: self.side.title(c.source) for c in citations}

    def chunk_span(self, pos: int) -> tuple[str, int, int]:
        side = self.side
        s0, s1 = int(side.chunk_s0[pos]), int(side.chunk_s1[pos]) - 1
        return (side.docs[side.chunk_doc[pos]]["source"], int(side.sent_start[s0]),
                int(side.sent_end[s1]))


def _count(value: Any) -> int:
    return len(value) if isinstance(value, (list, dict)) else 0


def _abstain_text() -> str:
    from assistant.answering.extractive import ABSTAIN_TEXT

    return ABSTAIN_TEXT


# Whitespace and invisible format characters (zero-width spaces and joiners, BOM, word joiner,
# bidi marks) at either end of a question; a question of nothing else is empty.
_BLANK = r"[\s\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
_EDGE_BLANK = re.compile(rf"^{_BLANK}+|{_BLANK}+$")


_PRONOUN = re.compile(r"\b(he|she|it|they|him|her|his|hers|its|them|their|theirs|this|that|"
                      r"these|those|there)\b", re.I)


def _with_history(question: str, history: list[dict[str, str]] | None) -> str | None:
    """Offline follow-ups: a question with a pronoun also searches with the names of the last turn.

    The names in the previous answer (or, if it has none, in the previous question) are added to
    the search text, so "When did he arrive?" still retrieves the sentences about whoever "he" was;
    the retriever weighs these added words below the question's own.
    """
    if not history or not _PRONOUN.search(question):
        return None
    for role in ("assistant", "user"):
        turns = [h.get("content", "") for h in history if h.get("role") == role]
        if turns:
            names = _names(turns[-1])
            if names:
                return " ".join([*names, question])
    return None


def _names(text: str) -> list[str]:
    """Capitalised word runs of a text, without sentence-initial common words or markers."""
    from assistant.indexing.lexical import STOPWORDS

    text = re.sub(r"\[\d+\]", "", text)
    found = []
    for m in re.finditer(r"(?<![\w’'])[A-Z][\w’'\-]+(?:\s+[A-Z][\w’'\-]+)*", text):
        run = [w for w in m.group().split() if w.lower() not in STOPWORDS]
        if run:
            found.append(" ".join(run))
    return list(dict.fromkeys(found))
