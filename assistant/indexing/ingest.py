"""Incremental ingest: read the seeds, split, embed what changed, publish a new index version.

Layout under the index folder:
    manifest.json      written last, atomically: the version readers use (`manifest.py`)
    .ingest.lock       held (flock) by the one ingest writing this index (`lock.py`)
    chroma/            Chroma's files (embedded mode; a Chroma server keeps its own)
    v<N>/              sidecar of version N: chunks.json, sentences.npy, lexical/ (`sidecar.py`)

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

import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.documents.reader import Document, Scan, check_seeds_dir, scan
from assistant.documents.splitter import make_chunks, parse_document
from assistant.errors import BackendError, IndexIncompatibleError, SeedsError
from assistant.indexing.lock import ingest_lock
from assistant.indexing.manifest import (
    LEDGER,
    MANIFEST,
    PENDING,
    check_compatible,
    collection_of,
    expected_identity,
    read_manifest,
    write_json_atomic,
)
from assistant.indexing.sidecar import DocEntry, Sidecar, load_sidecar, write_sidecar
from assistant.types import IngestSummary

log = logging.getLogger(__name__)

EMBED_BATCH_SENTENCES = 512  # sentences gathered across documents for one embedding call
_FLUSH = 1000  # chunk records per write to Chroma


def _ref_doc_id(source: str, sha: str) -> str:
    return f"{source}@{sha[:16]}"


def _chunk_id(source: str, sha: str, i: int) -> str:
    return f"{hashlib.sha1(source.encode()).hexdigest()[:10]}-{sha[:16]}-{i}"


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


def _progress(total: int, enabled: bool | str) -> Any:
    """A tqdm bar on stderr (rate and ETA) over the documents to embed, shown on a terminal;
    `enabled="always"` shows it anyway (the UI follows tqdm bars to draw its own)."""
    from tqdm import tqdm

    shown = enabled == "always" or (bool(enabled) and sys.stderr.isatty())
    return tqdm(total=total, desc="Embedding", unit="doc", disable=not shown or total == 0,
                file=sys.stderr, dynamic_ncols=True, leave=False)  # fmt: skip


# -- ingest --------------------------------------------------------------------------------------
def ingest(
    settings: Settings,
    encoder_factory: Any,
    store_factory: Any,
    rebuild: bool = False,
    progress: bool | str = True,
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
            if (index_dir / MANIFEST).is_dir():  # nothing could replace it: clear the way
                shutil.rmtree(index_dir / MANIFEST)
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
    except UnicodeDecodeError:  # not a name this assistant wrote: nothing to drop
        name = ""
    published = {collection_of(old), old.get("previous_collection")} if old else set()
    if name and name not in published and hasattr(store, "drop"):
        log.info("Dropping collection %s, left by an interrupted ingest.", name)
        store.drop(name)
    (index_dir / PENDING).unlink(missing_ok=True)


def _ledger(index_dir: Path) -> list[str]:
    try:
        names = json.loads((index_dir / LEDGER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _remember_collection(index_dir: Path, name: str) -> None:
    """Note a collection this index folder made, so it can be dropped even if the manifest that
    named it is lost (a server is shared: only names noted here are ever dropped there)."""
    write_json_atomic(index_dir / LEDGER, sorted({*_ledger(index_dir), name}))


def _drop_orphans(index_dir: Path, base_store: Any, keep: set[str]) -> None:
    """Drop collections no manifest names any more: in the embedded store every one but `keep`
    (the store belongs to this index folder), on a server those the ledger lists."""
    if not hasattr(base_store, "drop"):
        return
    names = set(_ledger(index_dir))
    if getattr(base_store, "embedded", False) and hasattr(base_store, "collection_names"):
        names |= set(base_store.collection_names())
    for name in sorted(names - keep):
        log.info("ingest: dropping collection %s, which no manifest names.", name)
        base_store.drop(name)
    if names - keep or set(_ledger(index_dir)) != keep:
        write_json_atomic(index_dir / LEDGER, sorted(keep))


def _prune_sidecars(index_dir: Path, current: int) -> None:
    """Keep the current sidecar and the newest older one (readers may still have it loaded)."""
    versions = _sidecar_versions(index_dir)
    previous = max((v for v in versions if v < current), default=None)
    for v in versions:
        if v not in (current, previous):
            shutil.rmtree(index_dir / f"v{v}", ignore_errors=True)


@dataclass
class _Plan:
    """What an ingest found and how it differs from the published version."""

    found: Scan
    old: dict[str, Any] | None
    version: int
    current: dict[str, Document]
    unchanged: list[str]
    added: list[str]
    updated: list[str]
    removed: list[str]


def _plan(settings: Settings, rebuild: bool) -> _Plan:
    """Scan the seeds, read the published manifest, clear leftovers, diff the documents."""
    index_dir = settings.index_dir
    log.info("ingest: scanning %s", settings.seeds_dir)
    found = scan(settings.seeds_dir, settings.max_file_mb, settings.max_pdf_pages)
    if not found.docs:
        raise SeedsError(
            f"No readable .txt, .md, .html, .pdf or .docx document found in {settings.seeds_dir}"
            + (f" ({len(found.skipped)} skipped)." if found.skipped else "."),
            "Add UTF-8 .txt, .md or .html files, PDFs with a text layer or .docx files to the "
            "seeds folder; the index was left as it is.",
        )
    old = _previous(settings, rebuild)
    published = old["version"] if old else 0
    _remove_leftovers(index_dir, published)
    version = max([published, *_sidecar_versions(index_dir)]) + 1
    old_docs: dict[str, dict[str, Any]] = {} if rebuild or old is None else old["documents"]
    current = {d.source: d for d in found.docs}
    unchanged = [s for s, d in current.items() if old_docs.get(s, {}).get("sha256") == d.sha256]
    return _Plan(
        found=found,
        old=old,
        version=version,
        current=current,
        unchanged=unchanged,
        added=[s for s in current if s not in old_docs],
        updated=[s for s in current if s in old_docs and s not in unchanged],
        removed=[s for s in old_docs if s not in current],
    )


@dataclass
class _Target:
    """The collection this ingest writes: the published one, or a fresh one (build, rebuild)."""

    base_store: Any
    store: Any
    name: str
    old_collection: str | None
    present: set[str]


def _open_target(settings: Settings, store_factory: Any, old: dict[str, Any] | None,
                 rebuild: bool) -> _Target:  # fmt: skip
    """The collection to write; a rebuild starts a damaged embedded Chroma store afresh."""
    try:
        return _open_target_once(settings, store_factory, old, rebuild)
    except BackendError:
        chroma_dir = settings.index_dir / "chroma"
        if not rebuild or settings.chroma_url or not os.path.lexists(chroma_dir):
            raise
        # The embedded store belongs to this index folder alone and a rebuild re-embeds
        # everything, so nothing in it is needed: a truncated chroma.sqlite3 must not stop the
        # one command the error messages recommend.
        log.warning("The Chroma store in %s cannot be used; the rebuild starts it afresh.",
                    chroma_dir)  # fmt: skip
        if chroma_dir.is_dir() and not chroma_dir.is_symlink():
            shutil.rmtree(chroma_dir)
        else:  # a file (or a link) where the folder should be
            chroma_dir.unlink()
        return _open_target_once(settings, store_factory, old, rebuild)


def _open_target_once(settings: Settings, store_factory: Any, old: dict[str, Any] | None,
                      rebuild: bool) -> _Target:  # fmt: skip
    # A first build or a rebuild writes into a fresh collection with a unique name (so index
    # folders sharing a Chroma server never collide): readers keep the old one until the switch.
    index_dir = settings.index_dir
    old_collection = collection_of(old) if old else None
    base_store = store_factory()
    _drop_pending(index_dir, base_store, old)
    fresh = rebuild or old is None
    name = f"{settings.chroma_collection}-{uuid.uuid4().hex[:8]}" if fresh else str(old_collection)
    if fresh:
        (index_dir / PENDING).write_text(name, encoding="utf-8")
        _remember_collection(index_dir, name)
    store = base_store.view(name) if hasattr(base_store, "view") else base_store
    store.collection(create=True)
    present = store.all_ids() if hasattr(store, "all_ids") else set()
    return _Target(base_store, store, name, old_collection, present)


def _reuse(
    plan: _Plan, settings: Settings, rebuild: bool
) -> tuple[dict[str, DocEntry], dict[str, np.ndarray], bool]:
    """Entries and vectors of documents whose text the previous sidecar already holds, and
    whether that sidecar is whole (chunks, vectors and BM25 files all check out).

    A sidecar whose BM25 files are damaged still gives its chunks and vectors; one whose
    chunks or vectors are damaged gives nothing, and every document is embedded again.
    """
    entries: dict[str, DocEntry] = {}
    vectors: dict[str, np.ndarray] = {}
    old = plan.old
    if rebuild or old is None:
        return entries, vectors, False
    folder = settings.index_dir / f"v{old['version']}"
    try:
        old_side: Sidecar = load_sidecar(folder, lexical=True)
        intact = True
    except IndexIncompatibleError as exc:
        log.warning("%s Writing a new version.", exc.message)
        intact = False
        try:
            old_side = load_sidecar(folder)
        except IndexIncompatibleError:
            log.warning("Re-embedding every document.")
            return entries, vectors, False
    for s in plan.current:
        src = s if s in plan.unchanged else old_side.source_of_sha(plan.current[s].sha256)
        if src is not None:
            entry, vectors[s] = old_side.entry(src)
            entries[s] = entry if src == s else _moved(entry, s)
    return entries, vectors, intact


@dataclass
class _ChunkWriter:
    """Buffers chunk records and adds them to Chroma `_FLUSH` at a time."""

    store: Any
    pending: list[dict[str, Any]] = field(default_factory=list)

    def add(self, records: list[dict[str, Any]]) -> None:
        self.pending.extend(records)
        self.flush(force=False)

    def flush(self, force: bool = True) -> None:
        if self.pending and (force or len(self.pending) >= _FLUSH):
            log.info("ingest: adding %d chunk(s) to Chroma", len(self.pending))
            _add_chunks(self.store, self.pending)
            self.pending.clear()


def _embed_new(
    todo: list[Document],
    settings: Settings,
    encoder_factory: Any,
    writer: _ChunkWriter,
    entries: dict[str, DocEntry],
    vectors: dict[str, np.ndarray],
    progress: bool | str,
) -> None:
    """Split and embed the documents the previous version lacks, and add their chunks."""
    log.info("ingest: embedding %d document(s)", len(todo))
    encoder = encoder_factory()
    from assistant.indexing.llama_adapter import embed_texts

    bar = _progress(len(todo), progress)
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
            writer.add(_records(doc, entry, sent_vecs))
            bar.update()
        batch.clear()

    with bar:
        for doc in todo:
            batch.append((doc, _parse(doc, settings)))
            if sum(len(e.sentences) for _, e in batch) >= EMBED_BATCH_SENTENCES:
                embed_batch()
        if batch:
            embed_batch()


def _summary(plan: _Plan, entries: dict[str, DocEntry], seconds: float, version: int,
             changed: bool) -> IngestSummary:  # fmt: skip
    return IngestSummary(
        added=len(plan.added) if changed else 0,
        updated=len(plan.updated) if changed else 0,
        removed=len(plan.removed) if changed else 0,
        unchanged=len(plan.unchanged),
        skipped=tuple(plan.found.skipped),
        chunks=sum(len(e.chunks) for e in entries.values()),
        seconds=seconds,
        reasons=tuple(plan.found.skipped.items()),
        duplicates=tuple(sorted(plan.found.duplicates.items())),
        version=version,
    )


def _extraction(doc: Document) -> dict[str, str]:
    """What made a PDF's or DOCX's text, and the file's own hash (its text is not the file)."""
    if not doc.extractor:
        return {}
    from assistant.fileio import file_sha256

    try:
        return {"extractor": doc.extractor, "file_sha256": file_sha256(doc.path)}
    except OSError:
        return {"extractor": doc.extractor}


def _publish(settings: Settings, plan: _Plan, target: _Target, entries: dict[str, DocEntry],
             vectors: dict[str, np.ndarray], t0: float) -> tuple[float, str | None]:  # fmt: skip
    """Write the sidecar, then switch the manifest to the new version (the commit point)."""
    index_dir, version = settings.index_dir, plan.version
    order = sorted(entries)
    log.info("ingest: writing sidecar v%d", version)
    write_sidecar(
        index_dir / f"v{version}", [entries[s] for s in order], [vectors[s] for s in order]
    )
    seconds = time.perf_counter() - t0
    old_collection, name = target.old_collection, target.name
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
                **_extraction(plan.current[s]),
            }
            for s in order
        },
        "skipped": list(plan.found.skipped),
        "duplicates": plan.found.duplicates,
    }
    log.info("ingest: switching to version %d", version)
    write_json_atomic(index_dir / MANIFEST, manifest)
    (index_dir / PENDING).unlink(missing_ok=True)
    return seconds, keep_collection


def _ingest(
    settings: Settings,
    encoder_factory: Any,
    store_factory: Any,
    rebuild: bool,
    progress: bool | str,
    t0: float,
) -> IngestSummary:
    index_dir = settings.index_dir
    plan = _plan(settings, rebuild)
    old = plan.old
    target = _open_target(settings, store_factory, old, rebuild)
    entries, vectors, intact = _reuse(plan, settings, rebuild)
    todo = [plan.current[s] for s in sorted(plan.current) if s not in entries]
    writer = _ChunkWriter(target.store)

    # Chunks the new version needs that Chroma lacks (an interrupted ingest, a lost collection).
    for s, entry in entries.items():
        missing = [ch for ch in entry.chunks if ch["id"] not in target.present]
        if missing:
            part = DocEntry(entry.source, entry.sha256, entry.title, entry.chars, missing, [])
            writer.add(_records(plan.current[s], part, vectors[s]))
    if (
        old is not None
        and intact
        and not (rebuild or todo or writer.pending or plan.added or plan.updated or plan.removed)
        and old.get("skipped", []) == list(plan.found.skipped)
        and old.get("duplicates", {}) == plan.found.duplicates
    ):
        log.info("ingest: nothing changed, version %d stays", old["version"])
        live = {ch["id"] for e in entries.values() for ch in e.chunks}
        _cleanup(target.store, target.base_store, live, None, target.name,
                 old.get("previous_collection"), index_dir)  # fmt: skip
        _prune_sidecars(index_dir, old["version"])
        return _summary(plan, entries, time.perf_counter() - t0, old["version"], changed=False)
    if todo:
        _embed_new(todo, settings, encoder_factory, writer, entries, vectors, progress)
    writer.flush()
    seconds, keep_collection = _publish(settings, plan, target, entries, vectors, t0)

    log.info("ingest: cleaning up")
    live = {ch["id"] for e in entries.values() for ch in e.chunks}
    _cleanup(target.store, target.base_store, live, old, target.name, keep_collection, index_dir)
    _prune_sidecars(index_dir, plan.version)
    log.info("ingest: done, version %d", plan.version)
    return _summary(plan, entries, seconds, plan.version, changed=True)


def _add_chunks(store: Any, records: list[dict[str, Any]]) -> None:
    from assistant.errors import AssistantError
    from assistant.indexing.llama_adapter import add_chunks

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
    index_dir: Path,
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
        _drop_orphans(index_dir, base_store, {n for n in (name, keep) if n})
    except BackendError as exc:
        log.warning("%s Stale chunks stay until the next ingest removes them.", exc.message)
    except OSError as exc:
        log.warning("Cannot update %s (%s); the next ingest tries again.", LEDGER, exc)
