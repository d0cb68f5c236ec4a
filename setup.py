"""Build hook: ships the fused kernels' sources with the package.

``csrc/`` lives at the top of the repository (next to ``CMakeLists.txt``); a wheel or a
non-editable install would otherwise lose it, and the just-in-time build
(``dpbench/ops/_loader.py``) would fall back to the reference. ``build_py`` copies it to
``dpbench/ops/_csrc/`` inside the built package, where the loader looks when the
repository's ``csrc/`` is not there. Everything else is declared in ``pyproject.toml``.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

KERNEL_SUFFIXES = {".cpp", ".cu", ".h", ".cuh", ".inc"}


class BuildPyWithKernelSources(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "csrc"
        target = Path(self.build_lib) / "dpbench" / "ops" / "_csrc"
        for path in sorted(source.rglob("*")) if source.is_dir() else []:
            if path.is_file() and path.suffix in KERNEL_SUFFIXES:
                out = target / path.relative_to(source)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)


setup(cmdclass={"build_py": BuildPyWithKernelSources})
