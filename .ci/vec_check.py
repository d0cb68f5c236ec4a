"""No CPU kernel loop may depend on AVX-512 masking to vectorise (issue 19).

Compiles csrc/dnc/dnc_cpu.cpp twice with GCC's vectoriser report (``-fopt-info-vec-missed``),
for AVX2 (``-march=x86-64-v3``) and for AVX-512 (``-march=x86-64-v4
-mprefer-vector-width=512``, the native build's vector width), and fails when a loop is left
``not vectorized: control flow in loop`` under AVX2 but not under AVX-512: a branch inside a
loop that only masked FP instructions can if-convert (under ``-ftrapping-math``), as the link
backward's diagonal select was — the AVX2 build's backward ran scalar, ~4x slower. Needs only
the compiler (no AVX-512 CPU); skips (exit 0) when ``c++`` is not GCC.

    python .ci/vec_check.py [path/to/dnc_cpu.cpp]   # default: this checkout's
"""
from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "csrc" / "dnc" / "dnc_cpu.cpp"
TARGETS = {"avx2": ["-march=x86-64-v3"],
           "avx512": ["-march=x86-64-v4", "-mprefer-vector-width=512"]}
CONTROL_FLOW = re.compile(r"^(\S+?):(\d+):\d+: missed: +not vectorized: control flow in loop")


def scalar_loops(source: Path, flags: list[str], report: Path) -> set[str]:
    """``file:line`` of every loop GCC reports as not vectorised for control flow."""
    from torch.utils.cpp_extension import include_paths

    includes = [f"-isystem{p}" for p in [*include_paths(), sysconfig.get_paths()["include"]]]
    cmd = ["c++", "-std=c++20", "-O3", "-fopenmp", "-fPIC", *flags, *includes,
           f"-fopt-info-vec-missed={report}", "-c", str(source), "-o", "/dev/null"]
    subprocess.run(cmd, check=True)
    found = set()
    for line in report.read_text().splitlines():
        m = CONTROL_FLOW.match(line)
        if m and "csrc/dnc" in m.group(1):
            found.add(f"{Path(m.group(1)).name}:{m.group(2)}")
    return found


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    macros = subprocess.run(["c++", "-dM", "-E", "-x", "c++", "/dev/null"], capture_output=True,
                            text=True).stdout
    if "__GNUC__" not in macros or "__clang__" in macros:
        print("vec_check: c++ is not GCC; skipped")
        return 0
    try:
        import torch  # noqa: F401  (its headers)
    except ImportError:
        print("vec_check: torch is not installed; skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        loops = {name: scalar_loops(source, flags, Path(tmp) / f"{name}.txt")
                 for name, flags in TARGETS.items()}
    only_avx2 = sorted(loops["avx2"] - loops["avx512"])
    if only_avx2:
        print("vec_check: loops scalar under AVX2 only (control flow that needs AVX-512 "
              "masking): " + ", ".join(only_avx2))
        return 1
    print(f"vec_check: ok ({len(loops['avx2'])} loops not vectorised for control flow under "
          "both ISAs, none under AVX2 only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
