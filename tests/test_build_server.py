"""`assistant build-server`: llama-server built from a pinned source distribution, for CPUs the
bundled binary cannot run on (assistant/llm/build_server.py).

The real build takes ~15 minutes, so CI runs it once in `.ci/run` (its binary then serves every
local-mode test and the local-mode eval gate). These tests run the same code against stand-in
`cmake` and `c++` executables on PATH, so each step's inputs and every failure are exact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from assistant.errors import LocalModelError
from assistant.interfaces.cli import main
from assistant.llm import build_server, local

FAKE_CMAKE = """#!/bin/sh
# configure: record the flags; build: write the binary (or fail when FAKE_CMAKE_FAIL is set)
if [ "$1" = "--build" ]; then
  [ -n "$FAKE_CMAKE_FAIL" ] && { echo "ggml.c:12: error: unknown type name 'foo'"; exit 2; }
  mkdir -p "$2/bin" && printf '#!/bin/sh\\necho llama-server\\n' > "$2/bin/llama-server"
  chmod +x "$2/bin/llama-server"
else
  test -f "$2/CMakeLists.txt" || { echo "CMake Error: no CMakeLists.txt in $2"; exit 1; }
  echo "$@" > "$FAKE_CMAKE_ARGS"
fi
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with only the stand-in cmake and c++; returns the file cmake writes its flags to."""
    bin_dir = tmp_path / "tools"
    bin_dir.mkdir()
    _executable(bin_dir / "cmake", FAKE_CMAKE)
    _executable(bin_dir / "c++", "#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("FAKE_CMAKE_ARGS", str(tmp_path / "cmake-args.txt"))
    monkeypatch.delenv("FAKE_CMAKE_FAIL", raising=False)
    return tmp_path / "cmake-args.txt"


@pytest.fixture
def sdist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A source distribution with the published layout, pinned as the one to trust."""
    path = tmp_path / build_server.SDIST_FILE
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((f"{build_server.VENDORED}CMakeLists.txt", b"project(llama.cpp)\n"),
                           ("llama_cpp_python-0.3.36/setup.cfg", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(build_server, "SDIST_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def test_build_puts_a_portable_binary_in_the_cache_and_local_mode_finds_it(
        tools, sdist, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    lines: list[str] = []
    binary = build_server.build(cache_dir=cache, sdist=sdist, jobs=2, log=lines.append)
    assert binary == build_server.built_binary(cache) and os.access(binary, os.X_OK)
    flags = tools.read_text().split()
    assert "-DGGML_NATIVE=OFF" in flags and "-DBUILD_SHARED_LIBS=OFF" in flags
    if build_server.platform.machine() == "x86_64":
        assert "-DGGML_AVX2=ON" in flags and binary.parent.name.endswith("x86-64-v3")
    record = json.loads((binary.parent / "build.json").read_text())
    assert record["sha256"] == build_server.SDIST_SHA256 and record["cmake_flags"] == [
        f for f in flags if f.startswith("-D")]
    assert [p.name for p in binary.parent.iterdir() if p.name.startswith("build-")] == []
    # local mode prefers it to the bundled binary; a llama-server on PATH still comes first
    assert local.find_binary(None, cache)[0] == binary
    _executable(tmp_path / "tools" / "llama-server", "#!/bin/sh\n")
    assert local.find_binary(None, cache)[0] == tmp_path / "tools" / "llama-server"
    # a second build is a no-op unless forced
    assert build_server.build(cache_dir=cache, sdist=sdist, log=lines.append) == binary
    assert lines[-1].startswith("Already built")


def test_build_refuses_a_source_that_is_not_the_pinned_one(tools, sdist, tmp_path, monkeypatch):
    monkeypatch.setattr(build_server, "SDIST_SHA256", "0" * 64)
    with pytest.raises(LocalModelError) as err:
        build_server.build(cache_dir=tmp_path / "cache", sdist=sdist, log=lambda _: None)
    assert "is not llama_cpp_python-0.3.36.tar.gz as published" in err.value.message
    assert not build_server.built_binary(tmp_path / "cache").exists()
    assert not tools.exists()  # nothing was configured


def test_a_failed_compile_names_its_first_error_and_leaves_no_binary(
        tools, sdist, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CMAKE_FAIL", "1")
    cache = tmp_path / "cache"
    with pytest.raises(LocalModelError) as err:
        build_server.build(cache_dir=cache, sdist=sdist, log=lambda _: None)
    assert "failed at `cmake --build`: ggml.c:12: error: unknown type name" in err.value.message
    assert str(build_server.built_binary(cache).parent / "build.log") in err.value.hint
    assert not build_server.built_binary(cache).exists()
    assert [p.name for p in build_server.built_binary(cache).parent.iterdir()] == ["build.log"]


def test_build_server_cli_without_cmake_is_one_sentence_and_a_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cmake, no compiler
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["build-server"])
    err = capsys.readouterr().err
    assert code == LocalModelError.exit_code
    assert err.splitlines() == [
        "error: Building llama-server needs cmake, which is not on PATH.",
        "hint: Install cmake and a C/C++ compiler (Debian: apt-get install cmake g++), "
        "then run this again."]


def test_build_server_cli_reports_a_damaged_source(tools, tmp_path, monkeypatch, capsys):
    bad = tmp_path / build_server.SDIST_FILE
    bad.write_bytes(b"not a tarball")
    monkeypatch.setattr(build_server, "SDIST_SHA256", hashlib.sha256(b"not a tarball").hexdigest())
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["build-server", "--sdist", str(bad)]) == LocalModelError.exit_code
    err = capsys.readouterr().err
    assert err.startswith(f"error: Cannot unpack {bad}") and "Traceback" not in err


def test_a_failed_download_says_so_and_names_the_way_around_it(tmp_path):
    def pip_offline(cmd, **_):  # pip's own last line, as it prints it with no index reachable
        assert cmd[1:4] == ["-m", "pip", "download"] and cmd[-1] == "llama-cpp-python==0.3.36"
        return subprocess.CompletedProcess(cmd, 1, b"ERROR: No matching distribution found for "
                                                   b"llama-cpp-python==0.3.36\n")

    with pytest.raises(LocalModelError) as err:
        build_server.download_sdist(tmp_path, pip_offline)
    assert err.value.message == ("pip could not download llama-cpp-python 0.3.36's source: ERROR: "
                                 "No matching distribution found for llama-cpp-python==0.3.36.")
    assert "--sdist PATH" in err.value.hint


def test_a_cache_folder_that_cannot_be_written_is_one_sentence(tools, sdist, tmp_path):
    cache = tmp_path / "read-only"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        if os.access(cache, os.W_OK):  # root ignores the mode bits
            (cache / "llama-server").write_text("a file where the folder should be")
        with pytest.raises(LocalModelError) as err:
            build_server.build(cache_dir=cache, sdist=sdist, log=lambda _: None)
    finally:
        cache.chmod(0o700)
    assert err.value.message.startswith(f"Cannot build into {cache / 'llama-server'}")
    assert "ASSISTANT_CACHE_DIR" in err.value.hint
