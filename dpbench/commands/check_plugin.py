"""``dpbench check-plugin NAME``: run the conformance kit (:mod:`dpbench.testing`) on a
model, a dataset, or every spec a plugin registers.

NAME is a model or dataset name, optionally with parameters (``copy:lag=3`` — for a
model they are hyper-parameters, for a dataset its parameters; default: the small
settings of :func:`dpbench.testing.small_params`), or a plugin: its name as ``dpbench
plugins`` shows it (e.g. ``dpbench-example``, ``dpbench.models.recurrent``), its
distribution or its package name (``dpbench_example``; ``-`` and ``_`` alike).

Exit codes: 0 every check passed; 1 some check failed (each failure is printed with what
was expected and what was found); 2 unknown name or bad parameters.
"""
from __future__ import annotations

import argparse
import sys

from typing import TYPE_CHECKING

from dpbench.params import UsageError, parse_item, typed_params
from dpbench.specs import DatasetSpec, ModelSpec

if TYPE_CHECKING:
    from dpbench.plugins import Registry


def _targets(reg: Registry, text: str) -> list[tuple[ModelSpec | DatasetSpec, dict | None]]:
    """The specs NAME designates, each with its (typed) parameters or ``None``."""
    name, params = parse_item(text)
    found: list[tuple[ModelSpec | DatasetSpec, dict | None]] = []
    for table in (reg.models, reg.datasets):
        if name in table:
            found.append((table[name], dict(params) if params else None))
    if not found:
        plugins = {p.name for p in reg.plugins if p.answers_to(name)}
        broken = [p for p in reg.failures if p.name in plugins]
        if broken:
            raise UsageError(f"check-plugin: plugin {broken[0].name!r} failed to load: {broken[0].error}")
        found = [(s, None) for table in (reg.models, reg.datasets) for s in table.values() if s.plugin in plugins]
        if found and params:
            raise UsageError(f"check-plugin: parameters apply to one model or dataset, not to plugin {name!r}")
    if not found:
        raise UsageError(
            f"check-plugin: {name!r} is no model, dataset or plugin; models: {', '.join(sorted(reg.models))}; "
            f"datasets: {', '.join(sorted(reg.datasets))}; plugins: {', '.join(p.name for p in reg.plugins)}")
    return found


def _single_values(spec: ModelSpec | DatasetSpec, params: dict) -> dict:
    """Parameters typed against the spec's defaults; sweeps are refused."""
    from dpbench.data import dataset_defaults

    kind = "model" if isinstance(spec, ModelSpec) else "dataset"
    defaults = dict(spec.defaults) if kind == "model" else dataset_defaults(spec)
    typed = typed_params(spec.name, params, defaults, kind, getattr(spec, "positional", None))
    if isinstance(typed, list):
        raise UsageError(f"check-plugin: give single values for {kind} {spec.name!r}, not a sweep")
    return typed


def check_plugin(args: argparse.Namespace) -> int:
    from dpbench.plugins import get_registry
    from dpbench.testing import check_dataset_spec, check_model_spec

    reg = get_registry()
    failed = 0
    for spec, params in _targets(reg, args.name):
        kind = "model" if isinstance(spec, ModelSpec) else "dataset"
        typed = _single_values(spec, params) if params else None
        try:
            if kind == "model":
                check_model_spec(spec, hparams=typed)
            else:
                check_dataset_spec(spec, params=typed)
        except AssertionError as exc:
            failed += 1
            print(f"FAIL {exc}", file=sys.stdout)
            continue
        print(f"ok   {kind} {spec.name!r} (plugin {spec.plugin})")
    return 1 if failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser("check-plugin", help="run the plugin conformance checks on a model, dataset or plugin",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="model or dataset name (optionally NAME:key=value,...) or plugin name")
    p.set_defaults(func=check_plugin)
