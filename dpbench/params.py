"""Parsing ``name:key=value,...`` strings (CLI and suite files) into names and parameters.

Values are typed by the default they replace (int, float, bool, str). A value in square
brackets is a sweep: ``copy:lag=[10,50,100]`` expands to three datasets. Every error is a
:class:`UsageError` whose message names the bad value and the valid choices.
"""
from __future__ import annotations

import itertools
import math
import re
from typing import Any, Mapping


class UsageError(ValueError):
    """Bad user input: the CLI prints the message on one line and exits with code 2."""


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside square brackets."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise UsageError(f"unbalanced ']' in {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise UsageError(f"unbalanced '[' in {text!r}")
    parts.append("".join(current))
    return parts


def split_list(text: str) -> list[str]:
    """``"lstm,copy:lag=[1,2],gru"`` → ``["lstm", "copy:lag=[1,2]", "gru"]``.

    A comma starts a new item only when the text after it does not look like ``key=``
    of the current item's parameters.
    """
    items: list[str] = []
    for part in _split_top(text):
        part = part.strip()
        if not part:
            continue
        if items and ":" in items[-1] and "=" in part.split(":")[0] and ":" not in part:
            items[-1] += "," + part
        else:
            items.append(part)
    return items


def coerce(key: str, raw: Any, default: Any, where: str) -> Any:
    """Convert ``raw`` (a string or a TOML scalar) to the type of ``default``."""
    kind = type(default)
    if default is None or isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise UsageError(f"{where}: {key}={raw!r} is not a finite number")
        return raw
    text = str(raw).strip()
    try:
        if kind is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
            return int(text)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        raise UsageError(
            f"{where}: {key}={text!r} is not a valid {kind.__name__}"
        ) from None
    return text


POSITIONAL = ""


def parse_item(text: str) -> tuple[str, dict[str, Any]]:
    """``"lorenz:noise=0.05,observe=0"`` → ``("lorenz", {"noise": "0.05", "observe": "0"})``.

    A first value without ``key=`` (``"dysts:Lorenz"``) is kept under :data:`POSITIONAL`
    for the spec's positional parameter (see :func:`typed_params`).

    Values stay raw (strings, or lists of strings for sweeps); :func:`typed_params` types them.
    """
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    if not name:
        raise UsageError(f"missing name in {text!r}")
    params: dict[str, Any] = {}
    if rest.strip():
        for i, pair in enumerate(_split_top(rest)):
            key, eq, value = pair.partition("=")
            key = key.strip()
            if not eq and i == 0 and key:  # "dysts:Lorenz": the dataset's positional parameter
                key, value = POSITIONAL, pair
            elif not eq or not key:
                raise UsageError(f"{name}: expected key=value, got {pair.strip()!r}")
            if key in params:
                raise UsageError(f"{name}: parameter {key!r} given twice")
            value = value.strip()
            if value.startswith("[") and value.endswith("]"):
                inner = [v.strip() for v in _split_top(value[1:-1]) if v.strip()]
                if not inner:
                    raise UsageError(f"{name}: empty sweep for {key!r}")
                params[key] = inner
            else:
                params[key] = value
    return name, params


def typed_params(
    name: str, raw: Mapping[str, Any], defaults: Mapping[str, Any], kind: str,
    positional: str | None = None,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Type ``raw`` against ``defaults``; unknown keys are an error naming the valid ones.

    ``positional`` names the parameter a bare first value sets (``dysts:Lorenz`` →
    ``system=Lorenz``). Returns one dict, or a list of dicts when any value is a sweep
    (the product of sweeps).
    """
    where = f"{kind} {name!r}"
    if POSITIONAL in raw:
        raw = dict(raw)
        value = raw.pop(POSITIONAL)
        if positional is None:
            raise UsageError(f"{where}: expected key=value, got {value!r}")
        if positional in raw:
            raise UsageError(f"{where}: parameter {positional!r} given twice")
        raw[positional] = value
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        valid = ", ".join(sorted(defaults)) or "(none)"
        raise UsageError(f"{where}: unknown parameter {unknown[0]!r}; valid: {valid}")
    axes: list[list[tuple[str, Any]]] = []
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        axes.append([(key, coerce(key, v, defaults[key], where)) for v in values])
    combos = [dict(c) for c in itertools.product(*axes)] if axes else [{}]
    if any(isinstance(v, list) for v in raw.values()):
        return combos
    return combos[0]


def format_params(params: Mapping[str, Any]) -> str:
    """Stable ``key=value,...`` text (sorted keys) used in result records."""
    return ",".join(f"{k}={params[k]}" for k in sorted(params))


def natural_key(text: str) -> list:
    """Sort key that orders embedded numbers numerically (lag=5 before lag=10)."""
    return [(0, float(p), "") if p.replace(".", "", 1).isdigit() else (1, 0.0, p)
            for p in re.split(r"(\d+(?:\.\d+)?)", text) if p]
