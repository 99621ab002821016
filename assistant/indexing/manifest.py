"""The index's manifest: the one file that says which version readers use, and what built it.

`manifest.json` is written last and atomically; it names the sidecar version, the Chroma
collection, the model and chunking identity and every document's hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import IndexIncompatibleError, IndexMissingError
from assistant.fileio import write_atomically

FORMAT = 1
MANIFEST = "manifest.json"
PENDING = ".pending-collection"  # the fresh collection a first build or rebuild is writing
LEDGER = ".collections.json"  # every Chroma collection this index folder made and still keeps
DEFAULT_COLLECTION = "assistant-chunks"  # indexes written before the manifest named it

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
    except NotADirectoryError:
        raise IndexMissingError(
            f"The index folder {index_dir} is not a folder.",
            "Pass an index folder with --index DIR or ASSISTANT_INDEX_DIR.",
        ) from None
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
    if not _well_formed(data):
        raise _corrupt(path)
    _manifest_cache[path] = (stamp, data)
    return data


def _well_formed(data: Any) -> bool:
    """The fields readers rely on have their types: a version, and per document a hash and a
    chunk count (anything else, like `built_at`, is read with a default)."""
    if not (isinstance(data, dict) and type(data.get("version")) is int):
        return False
    docs = data.get("documents")
    return isinstance(docs, dict) and all(
        isinstance(d, dict) and isinstance(d.get("sha256"), str)
        and type(d.get("chunks")) is int and d["chunks"] >= 0
        for d in docs.values()
    )  # fmt: skip


def build_key(manifest: dict[str, Any]) -> Any:
    """What identifies one published build (versions restart if the index folder is wiped)."""
    return manifest.get("build_id") or manifest["version"]


def collection_of(manifest: dict[str, Any]) -> str:
    return str(manifest.get("collection") or DEFAULT_COLLECTION)


def expected_identity(settings: Settings) -> dict[str, Any]:
    from assistant.documents.splitter import SPLITTER_VERSION
    from assistant.indexing.embedding import DIMENSION, MODEL_ID, MODEL_SHA256
    from assistant.indexing.lexical import TOKENIZER_VERSION

    return {
        "format": FORMAT,
        "tokenizer": TOKENIZER_VERSION,
        "splitter": SPLITTER_VERSION,
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


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomically(path, json.dumps(data, ensure_ascii=False).encode("utf-8"))


def bind_store(store: Any, manifest: dict[str, Any]) -> Any:
    """The store as seen by readers of this manifest (its collection)."""
    return store.view(collection_of(manifest)) if hasattr(store, "view") else store
