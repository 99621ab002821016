"""The versioned sidecar: chunks, sentence offsets, vectors and the lexical index of a version.

`v<N>/` holds `chunks.json` (per document: chunks and sentences with offsets), `sentences.npy`
(sentence vectors) and `lexical/` (BM25). A version's files never change once written: it is
written to `v<N>.tmp` and renamed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.errors import IndexIncompatibleError, IndexMissingError
from assistant.indexing.manifest import build_key, check_compatible, read_manifest


@dataclass
class DocEntry:
    """A document's share of the sidecar: its chunks and sentences (offsets into its text)."""

    source: str
    sha256: str
    title: str
    chars: int
    chunks: list[dict[str, Any]]  # {"id", "start", "end", "section", "s0", "s1"} (s0/s1 local)
    sentences: list[list[Any]]  # [start, end, text]


def write_sidecar(
    folder: Path,
    entries: list[DocEntry],
    vectors: list[np.ndarray],
) -> None:
    from assistant.indexing.lexical import LexicalIndex

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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_doc(d: Any) -> None:
    """Raise ValueError unless `d` is a well-formed document entry of chunks.json."""
    if not (
        isinstance(d, dict)
        and all(isinstance(d.get(k), str) for k in ("source", "sha256", "title"))
        and _is_int(d.get("chars"))
        and isinstance(d.get("chunks"), list)
        and isinstance(d.get("sentences"), list)
    ):
        raise ValueError("a document entry of the wrong shape")
    chars, n = d["chars"], len(d["sentences"])
    for s in d["sentences"]:
        if not (
            isinstance(s, list) and len(s) == 3 and _is_int(s[0]) and _is_int(s[1])
            and isinstance(s[2], str) and 0 <= s[0] <= s[1] <= chars
        ):  # fmt: skip
            raise ValueError(f"a sentence of {d['source']} with bad offsets")
    for ch in d["chunks"]:
        if not (
            isinstance(ch, dict) and isinstance(ch.get("id"), str)
            and isinstance(ch.get("section", ""), str)
            and all(_is_int(ch.get(k)) for k in ("start", "end", "s0", "s1"))
            and 0 <= ch["start"] <= ch["end"] <= chars and 0 <= ch["s0"] <= ch["s1"] <= n
        ):  # fmt: skip
            raise ValueError(f"a chunk of {d['source']} with bad offsets")


def load_sidecar(folder: Path, lexical: bool = False) -> Sidecar:
    """A version's sidecar, checked: offsets are integers in range, one vector of the model's
    dimension per sentence, a BM25 matrix with one row per chunk; anything else raises
    `IndexIncompatibleError` (which `assistant ingest` repairs by writing a new version)."""
    from assistant.indexing.embedding import DIMENSION

    try:
        with (folder / "chunks.json").open(encoding="utf-8") as fh:
            docs = json.load(fh)["docs"]
        if not isinstance(docs, list):
            raise ValueError("no list of documents")
        for d in docs:
            _check_doc(d)
        # Mapped, not read: a query touches only the candidate sentences' rows, so memory does not
        # grow with the corpus (a version's files never change once written; see the top).
        vecs = np.load(folder / "sentences.npy", mmap_mode="r")
        n_sentences = sum(len(d["sentences"]) for d in docs)
        if vecs.dtype != np.float32 or vecs.shape != (n_sentences, DIMENSION):
            raise ValueError(f"sentence vectors of shape {vecs.shape}, not {n_sentences} rows")
        lex = None
        if lexical:
            from assistant.indexing.lexical import LexicalIndex

            lex = LexicalIndex.load(folder / "lexical")
            lex.check(sum(len(d["chunks"]) for d in docs))
    except (OSError, ValueError, KeyError, TypeError, EOFError, IndexError):
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
            side = load_sidecar(settings.index_dir / f"v{manifest['version']}", lexical=True)
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
