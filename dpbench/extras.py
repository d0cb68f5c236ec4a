"""Optional extras (``pip install 'dpbench[NAME]'``): which are declared, and which packages
of one are missing in this environment.

Read from the installed distribution's own metadata (``Requires-Dist: ...; extra == "NAME"``),
so pyproject.toml stays the one place an extra is declared. Cheap: no package is imported.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import metadata

_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@lru_cache(maxsize=None)
def declared_extras(dist: str = "dpbench") -> dict[str, tuple[str, ...]]:
    """``{extra: (requirement names...)}`` from the metadata of distribution ``dist``
    (empty when it is not installed, e.g. run from a bare source tree)."""
    try:
        requires = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return {}
    out: dict[str, list[str]] = {}
    for req in requires:
        marker = _EXTRA_MARKER.search(req)
        name = _REQ_NAME.match(req)
        if marker and name:
            out.setdefault(marker.group(1), []).append(name.group(1))
    return {k: tuple(v) for k, v in out.items()}


def missing_packages(extra: str, dist: str = "dpbench") -> list[str]:
    """The requirement names of ``extra`` that are not installed (``[]``: all present, or the
    extra is unknown to the metadata)."""
    missing = []
    for name in declared_extras(dist).get(extra, ()):
        try:
            metadata.distribution(_canonical(name))
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def install_hint(extra: str) -> str:
    return f"pip install 'dpbench[{extra}]'"
