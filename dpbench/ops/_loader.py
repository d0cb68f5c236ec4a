"""Finding, building and loading the fused DNC extension; the fallback chain.

Order (first that works wins, once per process):

1. **prebuilt** — ``$DPBENCH_EXT_PATH`` (a shared library), else
   ``dpbench/ops/_prebuilt/libdpbench_dnc.so`` (where ``cmake --install`` puts it); skipped
   with ``DPBENCH_NO_PREBUILT=1``;
2. **JIT** — ``torch.utils.cpp_extension.load`` + ninja from ``csrc/dnc`` into
   ``$DPBENCH_EXT_CACHE`` (default ``$XDG_CACHE_HOME/dpbench/ext`` or ``~/.cache/dpbench/ext``),
   one folder per key = hash(sources, flags) + torch version + device arch (CPU model/flags
   hash, since the JIT build uses ``-march=native``, or ``-march=$DPBENCH_EXT_MARCH``; CUDA
   compute capabilities). Disabled by ``DPBENCH_NO_JIT=1``;
3. **reference** — :mod:`dpbench.ops.dnc_reference`, with a one-line warning naming the reason
   (and the build log when a build failed).

Concurrency: builds run under an exclusive ``fcntl.flock`` on ``<key>.lock``; the kernel drops
the lock when its holder dies, so an interrupted build never leaves a stale lock. Under the lock,
leftovers of an interrupted build (torch's own ``lock`` baton file, a half-built temp folder) are
removed before building. A build goes to ``<key>.tmp-<pid>`` and is renamed into place only when
complete, so a reader never sees a partial library.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import sys
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Optional

import torch

LIB_NAME = "dpbench_dnc"
LDFLAGS = ["-fopenmp"]
CUDA_FLAGS = ["-O3"]
PREBUILT = Path(__file__).resolve().parent / "_prebuilt" / f"lib{LIB_NAME}.so"


def cflags() -> list[str]:
    """JIT C++ flags. ``-march=$DPBENCH_EXT_MARCH`` (default ``native``; e.g. ``x86-64-v3`` for
    AVX2 only on an AVX-512 machine, to measure what an AVX2 CPU's instruction set gives).
    With ``native``, 512-bit vectors where the CPU has them (the link-row loops work in 64-byte
    chunks; measured 5-10% on the backward on a Xeon with AVX-512). The cache key hashes them."""
    march = os.environ.get("DPBENCH_EXT_MARCH", "native")
    extra = ["-mprefer-vector-width=512"] if march == "native" else []
    return ["-O3", "-fopenmp", f"-march={march}", *extra]


class FusedStatus(NamedTuple):
    """Whether the fused op can run on a device type, where it came from, and why (one line)."""

    available: bool
    source: str      # "prebuilt" | "jit" | "none"
    reason: str


def source_dir() -> Path:
    """``$DPBENCH_CSRC``, else the repository's ``csrc/dnc`` (source checkout, editable
    install), else the copy a wheel ships in ``dpbench/ops/_csrc/dnc`` (see ``setup.py``)."""
    env = os.environ.get("DPBENCH_CSRC")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    checkout = here.parents[2] / "csrc" / "dnc"
    return checkout if checkout.is_dir() else here.parent / "_csrc" / "dnc"


def cache_root() -> Path:
    env = os.environ.get("DPBENCH_EXT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dpbench" / "ext"


def with_cuda() -> bool:
    """Build the CUDA kernels too: torch has CUDA and a GPU is visible."""
    return torch.version.cuda is not None and torch.cuda.is_available()


def sources(cuda: bool) -> list[Path]:
    src = source_dir()
    files = [src / "bindings.cpp", src / "dnc_cpu.cpp"]
    if cuda:
        files += [src / "bindings_cuda.cpp", src / "dnc_cuda.cu"]
    return files


def build_key(cuda: bool) -> str:
    """Hash of the sources and headers this build compiles and the flags, plus torch version
    and device arch (so editing the CUDA files does not rebuild a CPU-only library)."""
    h = hashlib.sha256()
    headers = ("*.h", "*.inc") + (("*.cuh",) if cuda else ())
    files = set(sources(cuda)) | {p for pat in headers for p in source_dir().glob(pat)}
    for path in sorted(f for f in files if f.is_file()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    h.update(repr((cflags(), LDFLAGS, CUDA_FLAGS, cuda)).encode())
    arch = f"{platform.machine()}-{_cpu_tag()}"
    if cuda:
        caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
        arch += "-cuda" + "_".join(f"sm{a}{b}" for a, b in caps)
    torch_tag = torch.__version__.replace("+", "_")
    return f"{LIB_NAME}-{h.hexdigest()[:16]}-torch{torch_tag}-{arch}"


def _cpu_tag() -> str:
    """Short hash of the CPU model and feature flags (``-march=native`` code is CPU-specific)."""
    text = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            text = "".join(sorted({ln for ln in f if ln.startswith(("model name", "flags"))}))
    except OSError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:8]


class _FileLock:
    """Exclusive ``flock`` on ``path``; records the holder's PID for the waiting message."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: Optional[int] = None

    def __enter__(self) -> "_FileLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            print(f"dpbench: waiting for another process (pid {holder}) building the DNC "
                  f"kernels ({self.path})", file=sys.stderr, flush=True)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc) -> None:
        assert self.fd is not None
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _library_in(folder: Path) -> Optional[Path]:
    found = sorted(folder.glob(f"{LIB_NAME}*.so")) if folder.is_dir() else []
    return found[0] if found else None


def jit_build(cuda: bool) -> Path:
    """Build (or find cached) and return the library path; raises with the log's location."""
    from torch.utils.cpp_extension import load

    key = build_key(cuda)
    root = cache_root()
    final = root / key
    if _library_in(final):
        return _library_in(final)
    with _FileLock(root / f"{key}.lock"):
        if _library_in(final):                 # built by another process while we waited
            return _library_in(final)
        for stale in root.glob(f"{key}.tmp-*"):  # interrupted builds (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f"{key}.tmp-{os.getpid()}"
        tmp.mkdir(parents=True)
        log = root / f"{key}.log"
        print(f"dpbench: building fused DNC kernels (first use, ~1 min) into {final}",
              file=sys.stderr, flush=True)
        try:
            load(name=LIB_NAME, sources=[str(s) for s in sources(cuda)], extra_cflags=cflags(),
                 extra_ldflags=LDFLAGS, extra_cuda_cflags=CUDA_FLAGS, build_directory=str(tmp),
                 is_python_module=False, with_cuda=cuda, verbose=False)
        except Exception as err:  # noqa: BLE001 - any build failure means: fall back
            log.write_text(f"{type(err).__name__}: {err}\n")
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"build failed, log: {log}") from err
        (tmp / "lock").unlink(missing_ok=True)
        os.replace(tmp, final)
        return _library_in(final)


def _has_kernel(device_type: str) -> bool:
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    try:
        return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(
            "dpbench::dnc_access", key)
    except RuntimeError:        # the op is not registered: library not loaded yet
        return False


@lru_cache(maxsize=None)
def load() -> FusedStatus:
    """Run the fallback chain once per process; returns where the library came from."""
    from dpbench.ops import dnc_ops

    reasons = []
    env = os.environ.get("DPBENCH_EXT_PATH")
    candidates = ([Path(env)] if env else []) + [PREBUILT]
    if os.environ.get("DPBENCH_NO_PREBUILT") == "1":
        candidates, reasons = [], ["prebuilt skipped (DPBENCH_NO_PREBUILT=1)"]
    for path in candidates:
        if not path.is_file():
            reasons.append(f"no prebuilt at {path}")
            continue
        try:
            torch.ops.load_library(str(path))
        except (OSError, RuntimeError) as err:
            reasons.append(f"prebuilt {path} failed to load: {str(err).splitlines()[0]}")
            continue
        dnc_ops.register()
        return FusedStatus(True, "prebuilt", f"loaded {path}")
    if os.environ.get("DPBENCH_NO_JIT") == "1":
        return FusedStatus(False, "none", "; ".join(reasons + ["JIT disabled (DPBENCH_NO_JIT=1)"]))
    errors = []
    for cuda in ([True, False] if with_cuda() else [False]):   # CUDA failed → CPU-only
        try:
            path = jit_build(cuda)
            if not _has_kernel("cpu"):
                torch.ops.load_library(str(path))
            break
        except Exception as err:  # noqa: BLE001 - fall back, say why
            errors.append(f"JIT build {'with' if cuda else 'without'} CUDA failed: "
                          f"{str(err).splitlines()[0]}")
    else:
        return FusedStatus(False, "none", "; ".join(errors))
    dnc_ops.register()
    return FusedStatus(True, "jit", "; ".join([f"JIT-built {path}"] + errors))


_STATUS: dict[str, FusedStatus] = {}


def fused_status(device_type: str) -> FusedStatus:
    """Availability of the fused kernels for ``device_type`` (``"cpu"``/``"cuda"``).

    Memoised in a plain dict, so ``torch.compile`` traces a lookup once it is resolved.
    """
    if device_type not in _STATUS:
        _STATUS[device_type] = _resolve(device_type)
    return _STATUS[device_type]


@torch.compiler.disable
def _resolve(device_type: str) -> FusedStatus:
    status = load()
    if not status.available:
        return status
    if not _has_kernel(device_type):
        why = ("torch has no CUDA" if device_type == "cuda" and torch.version.cuda is None
               else f"library has no {device_type} kernels ({status.reason})")
        return FusedStatus(False, status.source, why)
    return status
