"""`assistant serve`: loopback by default, and a clear message when the `ui` extra is missing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant.interfaces.cli import build_parser


def test_serve_binds_loopback_port_7860_by_default() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    args = build_parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--port", "8000", "--seeds", "docs", "--index", "idx"]
    )
    assert (args.host, args.port, args.seeds, args.index) == ("0.0.0.0", 8000, "docs", "idx")


def test_serve_without_gradio_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['gradio'] = None; from assistant.interfaces.cli import main; "
        f"sys.exit(main(['serve', '--seeds', {str(tmp_path)!r}, '--index', "
        f"{str(tmp_path / 'index')!r}]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ASSISTANT_MODE": "extractive"},
    )
    assert out.returncode == 2
    assert "needs the gradio package" in out.stderr
    assert "pip install 'assistant[ui]'" in out.stderr and "Traceback" not in out.stderr


def test_serve_rejects_a_malformed_auth_setting(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "serve", "--seeds", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ASSISTANT_UI_AUTH": "no-colon"},
    )
    assert out.returncode == 2 and "ASSISTANT_UI_AUTH must be user:password" in out.stderr


def test_serve_refuses_a_port_out_of_range_as_a_usage_error(capsys: Any) -> None:
    for port in ("99999", "0", "-1", "http"):
        with pytest.raises(SystemExit) as err:
            build_parser().parse_args(["serve", "--port", port])
        assert err.value.code == 2
        assert f"{port!r} is not a port number (1-65535)" in capsys.readouterr().err


def test_serve_on_a_port_in_use_says_so_and_exits_9(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A note.\n", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "assistant", "serve", "--port", str(port),
             "--seeds", str(tmp_path), "--index", str(tmp_path / "index")],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "ASSISTANT_MODE": "extractive"},
        )
    assert out.returncode == 9, out.stderr
    assert f"error: Port {port} is already in use on 127.0.0.1." in out.stderr
    assert "hint: Stop the program that uses it, or pass another --port." in out.stderr
    assert "Traceback" not in out.stderr
