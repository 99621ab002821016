import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SEED


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cli")
    seeds = base / "seeds"
    seeds.mkdir()
    (seeds / SEED.name).write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    out = run("ingest", "--seeds", str(seeds), "--index", str(base / "index"))
    assert out.returncode == 0, out.stderr
    assert "added 1" in out.stdout
    return seeds, base / "index"


def test_ask_json_shape(dirs: tuple[Path, Path]) -> None:
    seeds, index = dirs
    out = run(
        "ask",
        "--json",
        "--seeds",
        str(seeds),
        "--index",
        str(index),
        "Which country replaced China as the top U.S. trade partner?",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"answer", "abstained", "mode", "citations", "timings_ms"}
    assert data["mode"] == "extractive" and data["abstained"] is False
    c = data["citations"][0]
    text = SEED.read_text(encoding="utf-8")
    assert text[c["start"] : c["end"]] == c["quote"] and "Mexico" in c["quote"]


def test_ask_human_output_shows_markers_and_offsets(dirs: tuple[Path, Path]) -> None:
    seeds, index = dirs
    out = run("ask", "--seeds", str(seeds), "--index", str(index), "Where did Li arrive?")
    assert out.returncode == 0
    assert "[1]" in out.stdout and f"{SEED.name} [" in out.stdout


def test_ask_env_settings_are_used(dirs: tuple[Path, Path]) -> None:
    seeds, index = dirs
    out = run(
        "ask",
        "--json",
        "What is the recipe for banana bread?",
        env={"ASSISTANT_SEEDS_DIR": str(seeds), "ASSISTANT_INDEX_DIR": str(index)},
    )
    assert json.loads(out.stdout)["abstained"] is True


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["ask", "  "], 2, "question is empty"),
        (["ask", "x" * 2500], 2, "limit is 2000"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_sentence_and_a_hint(
    dirs: tuple[Path, Path], args: list[str], code: int, needle: str
) -> None:
    seeds, index = dirs
    extra = ["--seeds", str(seeds), "--index", str(index)] if args[0] == "ask" else []
    out = run(*args[:1], *extra, *args[1:])
    assert out.returncode == code
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_seeds_and_incompatible_index_exit_codes(
    tmp_path: Path, dirs: tuple[Path, Path]
) -> None:
    out = run("ingest", "--seeds", str(tmp_path / "none"), "--index", str(tmp_path / "i"))
    assert out.returncode == 3 and "hint:" in out.stderr and "Traceback" not in out.stderr
    seeds, index = dirs
    out = run(
        "ask",
        "--seeds",
        str(seeds),
        "--index",
        str(index),
        "Who?",
        env={"ASSISTANT_CHUNK_SENTENCES": "7"},
    )
    assert out.returncode == 4 and "assistant ingest --rebuild" in out.stderr


def test_bad_setting_value_is_a_usage_error(dirs: tuple[Path, Path]) -> None:
    out = run("ask", "Who?", env={"ASSISTANT_TOP_K": "many"})
    assert out.returncode == 2 and "ASSISTANT_TOP_K" in out.stderr


def test_ask_does_not_import_gradio_or_torch(dirs: tuple[Path, Path]) -> None:
    seeds, index = dirs
    code = (
        "import sys; from assistant.interfaces.cli import main; "
        f"main(['ask', '--seeds', {str(seeds)!r}, '--index', {str(index)!r}, 'Who?']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('gradio', 'torch', 'llama_index', 'openai')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"
