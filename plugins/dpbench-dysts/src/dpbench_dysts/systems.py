"""The dysts catalogue of chaotic flows: names and per-system facts, read from the JSON
database the ``dysts`` package ships (Gilpin 2021, "Chaos as an interpretable benchmark
for forecasting and data-driven modelling", NeurIPS Datasets and Benchmarks).

Reading the catalogue imports no dysts code (its ``dysts.flows`` module pulls in gluonts
and, optionally, numba); only generating a trajectory does.
"""
from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

#: Delay-differential systems: they need a DDE integrator and are not offered.
UNSUPPORTED_REASON = "delay-differential equation (needs a history, not an initial state)"


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, Any]]:
    """``{system name: dysts metadata}`` for every continuous-time chaotic system."""
    text = (resources.files("dysts") / "data" / "chaotic_attractors.json").read_text()
    return json.loads(text)


def supported() -> list[str]:
    """Names of the systems this plugin integrates (all but the delay equations)."""
    return sorted(n for n, m in catalogue().items() if not m.get("delay"))


def lookup(name: str) -> dict[str, Any]:
    """The metadata of system ``name``; ``ValueError`` suggests the closest names."""
    table = catalogue()
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"dysts has no system {name!r}{hint}; {len(supported())} systems: "
                         f"{', '.join(supported()[:8])}, ... (python -m dpbench_dysts.survey --list)")
    meta = table[name]
    if meta.get("delay"):
        raise ValueError(f"dysts system {name!r} is a {UNSUPPORTED_REASON}; not supported")
    return meta


def system_facts(name: str) -> dict[str, Any]:
    """The facts a trajectory carries as metadata (JSON-able): parameters, largest
    Lyapunov exponent (dysts' estimate, per time unit), spectrum, period, dimensions,
    the source paper."""
    m = lookup(name)
    facts = {
        "system": name,
        "parameters": m.get("parameters", {}),
        "lyapunov_exponent": float(m["maximum_lyapunov_estimated"]),
        "lyapunov_spectrum": m.get("lyapunov_spectrum_estimated"),
        "period": float(m["period"]),
        "kaplan_yorke_dimension": m.get("kaplan_yorke_dimension"),
        "correlation_dimension": m.get("correlation_dimension"),
        "nonautonomous": bool(m.get("nonautonomous", False)),
        "equations": m.get("citation", ""),
        "description": m.get("description", ""),
    }
    return {k: v for k, v in facts.items() if v is not None}
