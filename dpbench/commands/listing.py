"""``dpbench list`` and ``dpbench plugins``: what the registry holds."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def _jsonable(value):
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)


def _needs(extra: str | None) -> str:
    """The extra a spec needs, as ``pip install`` spells it (empty when none)."""
    return f"dpbench[{extra}]" if extra else ""


def listing(args: argparse.Namespace) -> int:
    from dpbench.data import dataset_defaults, dataset_param_docs
    from dpbench.plugins import get_registry

    reg = get_registry()
    models = [
        {"name": s.name, "family": s.family, "plugin": s.plugin, "description": s.description,
         "citation": s.citation, "defaults": dict(s.defaults), "width": s.width,
         "tasks": list(s.tasks), "diagnostics": list(s.diagnostics), "extra": s.extra}
        for s in reg.models.values()
    ]
    datasets = [
        {"name": s.name, "kind": s.kind, "plugin": s.plugin, "description": s.description,
         "citation": s.citation, "defaults": dataset_defaults(s), "params": dataset_param_docs(s),
         "metadata": {k: _jsonable(v) for k, v in s.metadata.items()}, "extra": s.extra}
        for s in reg.datasets.values()
    ]
    metrics = [
        {"name": s.name, "title": s.title, "plugin": s.plugin, "description": s.description,
         "citation": s.citation, "higher_is_better": s.higher_is_better, "tasks": list(s.tasks),
         "needs": list(s.needs), "gate": s.gate, "tolerance": s.tolerance, "table": s.table, "scope": s.scope}
        for s in sorted(reg.metrics.values(), key=lambda s: (s.table, s.order, s.name))
    ]
    if args.json:
        print(json.dumps({"models": models, "datasets": datasets, "metrics": metrics}, indent=2, default=str))
        return 0
    from tabulate import tabulate

    print(tabulate([[m["name"], m["family"], m["plugin"], _needs(m["extra"]), m["description"]] for m in models],
                   headers=["model", "family", "plugin", "needs", "description"]))
    print()
    print(tabulate([[d["name"], d["kind"], d["plugin"], _needs(d["extra"]), d["description"]] for d in datasets],
                   headers=["dataset", "kind", "plugin", "needs", "description"]))
    if any(x["extra"] for x in models + datasets):
        print("\nneeds: install the extra first, e.g. pip install 'dpbench[real]'")
    print()
    direction = {True: "higher", False: "lower", None: "-"}
    print(tabulate([[m["name"], ",".join(m["tasks"]), direction[m["higher_is_better"]], m["gate"], m["plugin"],
                     m["description"]] for m in metrics],
                   headers=["metric", "tasks", "better", "gate", "plugin", "description"]))
    return 0


def plugins(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from dpbench.plugins import get_registry

    reg = get_registry()
    rows = [asdict(p) for p in reg.plugins]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(tabulate(
        [[p["name"], p["version"], "builtin" if p["builtin"] else "entry point",
          ", ".join(p["hooks"]), p["error"] or "ok"] for p in rows],
        headers=["plugin", "version", "source", "hooks", "status"],
    ))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list registered models, datasets and metrics")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=listing)
    p = sub.add_parser("plugins", help="list loaded plugins, their versions, hooks and errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=plugins)
