"""The index on disk: manifest, Chroma collection and the lexical sidecar; incremental ingest.

Layout under the index folder:
    manifest.json      written last, atomically: the version readers use
    .ingest.lock       held (flock) by the one ingest that may write this index at a time
    chroma/            Chroma's files (embedded mode; a Chroma server keeps its own)
    v<N>/              sidecar of version N: chunks.json, sentences.npy, lexical/

Chunk ids carry the document's content hash, so a new version only adds the chunks of added or
changed documents; the manifest switch makes them visible, and chunks no manifest needs are deleted
after it. A reader ignores any chunk id that is not in its version's sidecar, so it never mixes
versions. A rebuild writes into a fresh collection named in the manifest, so readers keep using
the old one until the switch.

Crash safety (`kill -9` at any point): nothing a reader uses is modified before the switch; the
sidecar is written to `v<N>.tmp` and renamed, the manifest replaced with `os.replace`. The next
ingest, under the lock, removes what an interrupted one left (`*.tmp`, unpublished `v<N>`, chunks
not in the manifest) and re-adds any chunk the manifest needs that Chroma lacks. The previous
version's sidecar and collection are kept until the next switch, for readers that loaded them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .documents import Document, check_seeds_dir, scan
from .errors import (
    BackendError,
    IndexBusyError,
    IndexIncompatibleError,
    IndexMissingError,
    SeedsError,
)
from .fileio import write_atomically
from .text import make_chunks, parse_document
from .types import IngestSummary

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
EMBED_BATCH_SENTENCES = 512  # sentences gathered across documents for one embedding call
LOCK = ".ingest.lock"
PENDING = ".pending-collection"  # the fresh collection a first build or rebuild is writing
DEFAULT_COLLECTION = "assistant-chunks"  # indexes written before the manifest named it
_FLUSH = 1000  # chunk records per write to Chroma


def _ref_doc_id(source: str, sha: str) -> str:
    return f"{source}@{sha[:16]}"


def _chunk_id(source: str, sha: str, i: int) -> str:
    return f"{hashlib.sha1(source.encode()).hexdigest()[:10]}-{sha[:16]}-{i}"


# -- manifest ------------------------------------------------------------------------------------
_manifest_cache: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _corrupt(path: Path) -> IndexIncompatibleError:
    return IndexIncompatibleError(
        f"The index manifest {path} is unreadable or corrupt.",
        "Rebuild the index with: assistant ingest --rebuild",
    )


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The published manifest, or None if there is none (cached while the file is unchanged)."""
    path = index_dir / MANIFEST
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError:
        raise _corrupt(path) from None
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _manifest_cache.get(path)
    if hit and hit[0] == stamp:
        return hit[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise _corrupt(path) from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("version"), int)
        and isinstance(data.get("documents"), dict)
    ):
        raise _corrupt(path)
    _manifest_cache[path] = (stamp, data)
    return data


def build_key(manifest: dict[str, Any]) -> Any:
    """What identifies one published build (versions restart if the index folder is wiped)."""
    return manifest.get("build_id") or manifest["version"]


def collection_of(manifest: dict[str, Any]) -> str:
    return str(manifest.get("collection") or DEFAULT_COLLECTION)


def expected_identity(settings: Settings) -> dict[str, Any]:
    from .embedding import DIMENSION, MODEL_ID, MODEL_SHA256
    from .lexical import TOKENIZER_VERSION

    return {
        "format": FORMAT,
        "tokenizer": TOKENIZER_VERSION,
        "embedding": {"model_id": MODEL_ID, "dimension": DIMENSION, "sha256": MODEL_SHA256},
        "chunking": settings.chunking_params(),
    }


def check_compatible(manifest: dict[str, Any], settings: Settings, index_dir: Path) -> None:
    want = expected_identity(settings)
    got = {k: manifest.get(k) for k in want}
    if got != want:
        diffs = [k for k in want if got[k] != want[k]]
        shown = got.get("embedding") if "embedding" in diffs else got.get(diffs[0])
        raise IndexIncompatibleError(
            f"The index in {index_dir} was built with other {' and '.join(diffs)} settings "
            f"({'an older version of the assistant' if shown is None else shown}).",
            "Rebuild it with: assistant ingest --rebuild",
        )


def _write_json_atomic(path: Path, data: Any) -> None:
    write_atomically(path, json.dumps(data, ensure_ascii=False).encode("utf-8"))


# -- the ingest lock -----------------------------------------------------------------------------
@contextlib.contextmanager
def ingest_lock(index_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the index's ingest lock; wait up to `timeout` seconds for another ingest to end.

    An advisory `flock` on `.ingest.lock`: the kernel releases it when its holder exits, even
    after `kill -9`, so a crash never leaves the index locked.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    path = index_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(path)
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"Another ingest ({holder}) is writing the index in {index_dir}.",
                        "Wait for it to finish and run the command again, or raise "
                        "ASSISTANT_INGEST_LOCK_TIMEOUT (seconds to wait).",
                    ) from None
                if not waited:
                    log.warning("Waiting for another ingest (%s) of %s to end.", holder, index_dir)
                    waited = True
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _lock_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"


# -- documents -----------------------------------------------------------------------------------
@dataclass
class DocEntry:
    """A document's share of the sidecar: its chunks and sentences (offsets into its text)."""

    source: str
    sha256: str
    title: str
    chars: int
    chunks: list[dict[str, Any]]  # {"id", "start", "end", "section", "s0", "s1"} (s0/s1 local)
    sentences: list[list[Any]]  # [start, end, text]


def _parse(doc: Document, settings: Settings) -> DocEntry:
    parsed = parse_document(doc.text)
    chunks = make_chunks(parsed.sentences, settings.chunk_sentences, settings.chunk_max_chars)
    sentences: list[list[Any]] = []
    chunk_rows = []
    for i, ch in enumerate(chunks):
        s0 = len(sentences)
        sentences.extend([s.start, s.end, s.text] for s in ch.sentences)
        chunk_rows.append(
            {
                "id": _chunk_id(doc.source, doc.sha256, i),
                "start": ch.start,
                "end": ch.end,
                "section": ch.section,
                "s0": s0,
                "s1": len(sentences),
            }
        )
    title = doc.title or parsed.title or Path(doc.source).stem
    return DocEntry(doc.source, doc.sha256, title, len(doc.text), chunk_rows, sentences)


def _moved(entry: DocEntry, source: str) -> DocEntry:
    """The entry of the same text under another path (a renamed file): new ids, same vectors."""
    chunks = [{**ch, "id": _chunk_id(source, entry.sha256, i)} for i, ch in enumerate(entry.chunks)]
    title = Path(source).stem if entry.title == Path(entry.source).stem else entry.title
    return DocEntry(source, entry.sha256, title, entry.chars, chunks, entry.sentences)


def _records(doc: Document, entry: DocEntry, sent_vecs: np.ndarray) -> list[dict[str, Any]]:
    """Chroma records of a document's chunks; a chunk's vector is its sentences' mean."""
    records = []
    for ch in entry.chunks:
        v = sent_vecs[ch["s0"] : ch["s1"]].mean(axis=0)
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        records.append(
            {
                "id": ch["id"],
                "text": doc.text[ch["start"] : ch["end"]],
                "vector": v.tolist(),
                "ref_doc_id": _ref_doc_id(doc.source, doc.sha256),
                "metadata": {
                    "source": doc.source,
                    "start": ch["start"],
                    "end": ch["end"],
                    "section": ch["section"],
                    "title": entry.title,
                    "doc_sha256": doc.sha256,
                },
            }
        )
    return records


class _Progress:
    """A minimal progress bar on stderr, shown only on a terminal."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.n = total, label, 0
        self.enabled = enabled and total > 0 and sys.stderr.isatty()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.enabled:
            width = 30
            done = int(width * self.n / self.total)
            sys.stderr.write(
                f"\r{self.label} [{'#' * done}{'.' * (width - done)}] {self.n}/{self.total}"
            )
            if self.n >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


# -- ingest --------------------------------------------------------------------------------------
def ingest(
    settings: Settings,
    encoder_factory: Any,
    store_factory: Any,
    rebuild: bool = False,
    progress: bool = True,
) -> IngestSummary:
    """Build or refresh the index for the seeds folder; returns what changed.

    Only one ingest per index folder runs at a time (`ingest_lock`); a second one waits up to
    `settings.ingest_lock_timeout` seconds, then raises `IndexBusyError`.
    """
    t0 = time.perf_counter()
    check_seeds_dir(settings.seeds_dir)  # before creating anything
    try:
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        with ingest_lock(settings.index_dir, settings.ingest_lock_timeout):
            return _ingest(settings, encoder_factory, store_factory, rebuild, progress, t0)
    except OSError as exc:  # a full disk, permissions, a file where the folder should be
        where = f" ({exc.filename})" if exc.filename else ""
        raise BackendError(
            f"Cannot write the index in {settings.index_dir}: {exc.strerror or exc}{where}.",
            "Check free disk space and permissions, or set ASSISTANT_INDEX_DIR to another "
            "folder; the published index was left as it is.",
        ) from None


def _previous(settings: Settings, rebuild: bool) -> dict[str, Any] | None:
    """The published manifest an ingest builds on; a rebuild tolerates a corrupt one."""
    index_dir = settings.index_dir
    try:
        old = read_manifest(index_dir)
    except IndexIncompatibleError:
        if rebuild:
            return None
        raise
    if old is not None and not rebuild:
        try:
            check_compatible(old, settings, index_dir)
        except IndexIncompatibleError:
            raise IndexIncompatibleError(
                f"The index in {index_dir} was built with another embedding model or other "
                "chunking parameters, so it cannot be updated in place.",
                "Rebuild it with: assistant ingest --rebuild",
            ) from None
    return old


def _sidecar_versions(index_dir: Path) -> list[int]:
    return [
        int(p.name[1:])
        for p in index_dir.iterdir()
        if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit()
    ]


def _remove_leftovers(index_dir: Path, published: int) -> None:
    """What an interrupted ingest left: temporary files and unpublished sidecars."""
    for p in index_dir.iterdir():
        if p.name.endswith(".tmp") or (
            p.name.startswith("v") and p.name[1:].isdigit() and int(p.name[1:]) > published
        ):
            log.info("Removing %s, left by an interrupted ingest.", p.name)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def _drop_pending(index_dir: Path, store: Any, old: dict[str, Any] | None) -> None:
    """Drop the fresh collection of an interrupted first build or rebuild, if unpublished."""
    try:
        name = (index_dir / PENDING).read_text(encoding="utf-8").strip()
    except OSError:
        return
    published = {collection_of(old), old.get("previous_collection")} if old else set()
    if name and name not in published and hasattr(store, "drop"):
        log.info("Dropping collection %s, left by an interrupted ingest.", name)
        store.drop(name)
    (index_dir / PENDING).unlink(missing_ok=True)


def _prune_sidecars(index_dir: Path, current: int) -> None:
    """Keep the current sidecar and the newest older one (readers may still have it loaded)."""
    versions = _sidecar_versions(index_dir)
    previous = max((v for v in versions if v < current), default=None)
    for v in versions:
        if v not in (current, previous):
            shutil.rmtree(index_dir / f"v{v}", ignore_errors=True)


def _ingest(
    settings: Settings,
    encoder_factory: Any,
    store_factory: Any,
    rebuild: bool,
    progress: bool,
    t0: float,
) -> IngestSummary:
    index_dir = settings.index_dir
    log.info("ingest: scanning %s", settings.seeds_dir)
    found = scan(settings.seeds_dir, settings.max_file_mb)
    if not found.docs:
        raise SeedsError(
            f"No readable .txt, .md or .html document found in {settings.seeds_dir}"
            + (f" ({len(found.skipped)} skipped)." if found.skipped else "."),
            "Add UTF-8 .txt, .md or .html files to the seeds folder; the index was left as it is.",
        )
    old = _previous(settings, rebuild)
    published = old["version"] if old else 0
    _remove_leftovers(index_dir, published)
    version = max([published, *_sidecar_versions(index_dir)]) + 1

    old_docs: dict[str, dict[str, Any]] = {} if rebuild or old is None else old["documents"]
    old_side: Sidecar | None = None
    if old_docs and old is not None:
        try:
            old_side = _load_sidecar(index_dir / f"v{old['version']}")
        except IndexIncompatibleError as exc:
            log.warning("%s Re-embedding every document.", exc.message)

    # A first build or a rebuild writes into a fresh collection with a unique name (so index
    # folders sharing a Chroma server never collide): readers keep the old one until the switch.
    old_collection = collection_of(old) if old else None
    base_store = store_factory()
    _drop_pending(index_dir, base_store, old)
    fresh = rebuild or old is None
    name = f"{settings.chroma_collection}-{uuid.uuid4().hex[:8]}" if fresh else str(old_collection)
    if fresh:
        (index_dir / PENDING).write_text(name, encoding="utf-8")
    store = base_store.view(name) if hasattr(base_store, "view") else base_store
    store.collection(create=True)
    present = store.all_ids() if hasattr(store, "all_ids") else set()

    current = {d.source: d for d in found.docs}
    unchanged = [s for s, d in current.items() if old_docs.get(s, {}).get("sha256") == d.sha256]
    added = [s for s in current if s not in old_docs]
    updated = [s for s in current if s in old_docs and s not in unchanged]
    removed = [s for s in old_docs if s not in current]

    entries: dict[str, DocEntry] = {}
    vectors: dict[str, np.ndarray] = {}
    if old_side is not None:
        for s in current:
            src = s if s in unchanged else old_side.source_of_sha(current[s].sha256)
            if src is not None:
                entry, vectors[s] = old_side.entry(src)
                entries[s] = entry if src == s else _moved(entry, s)
    todo = [current[s] for s in sorted(current) if s not in entries]

    pending: list[dict[str, Any]] = []

    def flush(force: bool = False) -> None:
        if pending and (force or len(pending) >= _FLUSH):
            log.info("ingest: adding %d chunk(s) to Chroma", len(pending))
            _add_chunks(store, pending)
            pending.clear()

    # Chunks the new version needs that Chroma lacks (an interrupted ingest, a lost collection).
    for s, entry in entries.items():
        if any(ch["id"] not in present for ch in entry.chunks):
            missing = [ch for ch in entry.chunks if ch["id"] not in present]
            part = DocEntry(entry.source, entry.sha256, entry.title, entry.chars, missing, [])
            pending.extend(_records(current[s], part, vectors[s]))
            flush()
    if (
        old is not None
        and not (rebuild or todo or pending or added or updated or removed)
        and old.get("skipped", []) == list(found.skipped)
        and old.get("duplicates", {}) == found.duplicates
    ):
        log.info("ingest: nothing changed, version %d stays", published)
        _cleanup(store, base_store, {ch["id"] for e in entries.values() for ch in e.chunks},
                 None, name, None)  # fmt: skip
        _prune_sidecars(index_dir, published)
        return IngestSummary(
            unchanged=len(unchanged),
            skipped=tuple(found.skipped),
            chunks=sum(len(e.chunks) for e in entries.values()),
            seconds=time.perf_counter() - t0,
            reasons=tuple(found.skipped.items()),
            duplicates=tuple(sorted(found.duplicates.items())),
            version=published,
        )
    if todo:
        log.info("ingest: embedding %d document(s)", len(todo))
        encoder = encoder_factory()
        from .llama_adapter import embed_texts

        bar = _Progress(len(todo), "Embedding", progress)
        batch: list[tuple[Document, DocEntry]] = []

        def embed_batch() -> None:
            # One model call over the sentences of several documents: sorting them by length
            # across documents pads less than one call per document.
            texts = [s[2] for _, e in batch for s in e.sentences]
            vecs = np.zeros((0, 384), dtype=np.float32)
            if texts:
                vecs = np.asarray(embed_texts(encoder, texts), dtype=np.float32)
            pos = 0
            for doc, entry in batch:
                sent_vecs = vecs[pos : pos + len(entry.sentences)]
                pos += len(entry.sentences)
                entries[doc.source], vectors[doc.source] = entry, sent_vecs
                pending.extend(_records(doc, entry, sent_vecs))
                flush()
                bar.update()
            batch.clear()

        for doc in todo:
            batch.append((doc, _parse(doc, settings)))
            if sum(len(e.sentences) for _, e in batch) >= EMBED_BATCH_SENTENCES:
                embed_batch()
        if batch:
            embed_batch()
    flush(force=True)

    order = sorted(entries)
    log.info("ingest: writing sidecar v%d", version)
    _write_sidecar(
        index_dir / f"v{version}",
        [entries[s] for s in order],
        [vectors[s] for s in order],
    )
    seconds = time.perf_counter() - t0
    keep_collection = old_collection if old_collection not in (None, name) else None
    manifest = {
        **expected_identity(settings),
        "version": version,
        "build_id": uuid.uuid4().hex,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(seconds, 3),
        "collection": name,
        "previous_collection": keep_collection,
        "documents": {
            s: {
                "sha256": entries[s].sha256,
                "chars": entries[s].chars,
                "chunks": len(entries[s].chunks),
                "title": entries[s].title,
            }
            for s in order
        },
        "skipped": list(found.skipped),
        "duplicates": found.duplicates,
    }
    log.info("ingest: switching to version %d", version)
    _write_json_atomic(index_dir / MANIFEST, manifest)
    (index_dir / PENDING).unlink(missing_ok=True)

    log.info("ingest: cleaning up")
    live = {ch["id"] for e in entries.values() for ch in e.chunks}
    _cleanup(store, base_store, live, old, name, keep_collection)
    _prune_sidecars(index_dir, version)
    log.info("ingest: done, version %d", version)
    return IngestSummary(
        added=len(added),
        updated=len(updated),
        removed=len(removed),
        unchanged=len(unchanged),
        skipped=tuple(found.skipped),
        chunks=sum(len(e.chunks) for e in entries.values()),
        seconds=seconds,
        reasons=tuple(found.skipped.items()),
        duplicates=tuple(sorted(found.duplicates.items())),
        version=version,
    )


def _add_chunks(store: Any, records: list[dict[str, Any]]) -> None:
    from .errors import AssistantError
    from .llama_adapter import add_chunks

    try:
        add_chunks(store.collection(create=True), records)
    except AssistantError:
        raise
    except Exception as exc:  # chromadb and its transport raise many types
        if hasattr(store, "failure"):
            raise store.failure("adding chunks", exc) from None
        raise


def _cleanup(
    store: Any,
    base_store: Any,
    live: set[str],
    old: dict[str, Any] | None,
    name: str,
    keep: str | None,
) -> None:
    """After the switch: delete chunks and collections no reader needs any more.

    A failure here is not an ingest failure (the new version is published); the next ingest
    retries.
    """
    try:
        if hasattr(store, "all_ids"):
            stale = sorted(store.all_ids() - live)
            if stale:
                log.info("ingest: removing %d stale chunk(s)", len(stale))
                store.delete_ids(stale)
        older = (old or {}).get("previous_collection")
        if older and older not in (name, keep) and hasattr(base_store, "drop"):
            base_store.drop(older)
    except BackendError as exc:
        log.warning("%s Stale chunks stay until the next ingest removes them.", exc.message)


def _write_sidecar(
    folder: Path,
    entries: list[DocEntry],
    vectors: list[np.ndarray],
) -> None:
    from .lexical import LexicalIndex

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    docs = [
        {
            "source": e.source,
            "sha256": e.sha256,
            "title": e.title,
            "chars": e.chars,
            "chunks": e.chunks,
            "sentences": e.sentences,
        }
        for e in entries
    ]
    with (tmp / "chunks.json").open("w", encoding="utf-8") as fh:
        json.dump({"docs": docs}, fh, ensure_ascii=False)
    mat = np.concatenate(vectors) if vectors else np.zeros((0, 384), dtype=np.float32)
    np.save(tmp / "sentences.npy", mat.astype(np.float32))
    chunk_texts, sent_texts = [], []
    for e in entries:
        for ch in e.chunks:
            sents = e.sentences[ch["s0"] : ch["s1"]]
            chunk_texts.append(" ".join([ch["section"], e.title] + [s[2] for s in sents]))
        sent_texts.extend(s[2] for s in e.sentences)
    LexicalIndex.build(chunk_texts, sent_texts).save(tmp / "lexical")
    os.replace(tmp, folder)


# -- the read side -------------------------------------------------------------------------------
@dataclass
class Sidecar:
    """Everything the query path needs besides Chroma, in flat arrays."""

    folder: Path
    docs: list[dict[str, Any]]
    chunk_ids: list[str]
    chunk_doc: np.ndarray  # chunk -> doc position
    chunk_s0: np.ndarray  # chunk -> first global sentence
    chunk_s1: np.ndarray
    sent_doc: np.ndarray  # sentence -> doc position
    sent_start: np.ndarray
    sent_end: np.ndarray
    sent_text: list[str]
    sent_vecs: np.ndarray
    doc_sent_base: list[int]
    lexical: Any = None  # the version's LexicalIndex, loaded with it

    def __post_init__(self) -> None:
        self._pos = {d["source"]: i for i, d in enumerate(self.docs)}
        self._by_sha = {d["sha256"]: d["source"] for d in reversed(self.docs)}

    def source_of_sha(self, sha256: str) -> str | None:
        return self._by_sha.get(sha256)

    def title(self, source: str) -> str:
        i = self._pos.get(source)
        return self.docs[i]["title"] if i is not None else Path(source).stem

    def entry(self, source: str) -> tuple[DocEntry, np.ndarray]:
        i = self._pos[source]
        d = self.docs[i]
        base = self.doc_sent_base[i]
        vecs = self.sent_vecs[base : base + len(d["sentences"])]
        return DocEntry(
            d["source"], d["sha256"], d["title"], d["chars"], d["chunks"], d["sentences"]
        ), np.asarray(vecs)


def _load_sidecar(folder: Path, lexical: bool = False) -> Sidecar:
    try:
        with (folder / "chunks.json").open(encoding="utf-8") as fh:
            docs = json.load(fh)["docs"]
        # Mapped, not read: a query touches only the candidate sentences' rows, so memory does not
        # grow with the corpus (a version's files never change once written; see the top).
        vecs = np.load(folder / "sentences.npy", mmap_mode="r")
        lex = None
        if lexical:
            from .lexical import LexicalIndex

            lex = LexicalIndex.load(folder / "lexical")
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        raise IndexIncompatibleError(
            f"The index files in {folder} are missing or corrupt.",
            "Rebuild the index with: assistant ingest --rebuild",
        ) from None
    chunk_ids, chunk_doc, s0s, s1s = [], [], [], []
    sent_doc, starts, ends, texts, bases = [], [], [], [], []
    base = 0
    for di, d in enumerate(docs):
        bases.append(base)
        for ch in d["chunks"]:
            chunk_ids.append(ch["id"])
            chunk_doc.append(di)
            s0s.append(base + ch["s0"])
            s1s.append(base + ch["s1"])
        for s in d["sentences"]:
            sent_doc.append(di)
            starts.append(s[0])
            ends.append(s[1])
            texts.append(s[2])
        base += len(d["sentences"])
    return Sidecar(
        folder,
        docs,
        chunk_ids,
        np.array(chunk_doc, dtype=np.int32),
        np.array(s0s, dtype=np.int32),
        np.array(s1s, dtype=np.int32),
        np.array(sent_doc, dtype=np.int32),
        np.array(starts, dtype=np.int64),
        np.array(ends, dtype=np.int64),
        texts,
        vecs,
        bases,
        lex,
    )


def load_current(settings: Settings) -> tuple[dict[str, Any], Sidecar]:
    """The manifest and sidecar (with its lexical index) readers should use.

    Raises if missing or incompatible. If the sidecar vanishes while loading because two newer
    versions were published meanwhile, loads the newest instead.
    """
    for _ in range(3):
        manifest = read_manifest(settings.index_dir)
        if manifest is None:
            raise IndexMissingError(
                f"There is no index in {settings.index_dir}.", "Build it with: assistant ingest"
            )
        check_compatible(manifest, settings, settings.index_dir)
        try:
            side = _load_sidecar(settings.index_dir / f"v{manifest['version']}", lexical=True)
        except IndexIncompatibleError:
            newer = read_manifest(settings.index_dir)
            if newer is None or build_key(newer) == build_key(manifest):
                raise
            continue
        return manifest, side
    raise IndexIncompatibleError(
        f"The index in {settings.index_dir} changed three times while loading.",
        "Try again once the ingest has finished.",
    )


def bind_store(store: Any, manifest: dict[str, Any]) -> Any:
    """The store as seen by readers of this manifest (its collection)."""
    return store.view(collection_of(manifest)) if hasattr(store, "view") else store
