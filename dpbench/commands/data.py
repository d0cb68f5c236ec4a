"""``dpbench data``: describe, export and plot a dataset's raw series.

* ``dpbench data describe NAME`` — parameters (defaults, docs) and metadata;
* ``dpbench data export NAME[:params] --split train|val|test|all --out FILE.csv [--seed N]`` —
  the generated raw data before windowing and normalisation. Forecast datasets: one row
  per sample (``split, t``, the series' columns, then per-sample metadata arrays such as
  ``regimes`` or ``rho``). Recall datasets: one row per sequence step (``split, seq,
  step``, inputs ``x0..``, targets ``y..`` on the answer steps, empty elsewhere, and
  ``scored`` from the mask);
* ``dpbench data plot NAME[:params] --out FILE.png [--seed N]`` — a trajectory / attractor
  (or space–time, or recall example) figure.
"""
from __future__ import annotations

import argparse
import csv
import json
from typing import TYPE_CHECKING, Any

from dpbench.params import UsageError, parse_item, typed_params

if TYPE_CHECKING:  # numpy and the registry are imported by the handlers (fast --help)
    import numpy as np

    from dpbench.data import RecallSplits, Trajectory
    from dpbench.specs import DatasetSpec


def resolve_item(text: str, seed: int) -> tuple[DatasetSpec, dict[str, Any], int]:
    """``NAME[:params]`` → (spec, full typed params, data seed); sweeps are refused."""
    from dpbench.data import dataset_defaults
    from dpbench.plugins import get_registry

    name, raw = parse_item(text)
    spec = get_registry().dataset(name)
    defaults = dataset_defaults(spec)
    typed = typed_params(name, raw, defaults, "dataset", spec.positional)
    if isinstance(typed, list):
        raise UsageError(f"dataset {name!r}: sweeps ([...]) are not allowed here; give one value")
    full = {**defaults, **typed}
    own_seed = int(full.get("seed", -1))
    return spec, full, seed if own_seed < 0 else own_seed


def _fmt(value: Any) -> str:
    if type(value).__name__ == "ndarray":
        return f"array{list(value.shape)}"
    return json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)


def describe(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from dpbench.data import dataset_defaults, dataset_param_docs
    from dpbench.plugins import get_registry

    spec = get_registry().dataset(args.name)
    print(f"{spec.name} ({spec.kind}, plugin {spec.plugin}): {spec.description}")
    print(f"citation: {spec.citation}")
    if spec.extra:
        from dpbench.extras import install_hint

        print(f"needs: {install_hint(spec.extra)}")
    docs = dataset_param_docs(spec)
    rows = [[k, _fmt(v), docs.get(k, "")] for k, v in dataset_defaults(spec).items()]
    print()
    print(tabulate(rows, headers=["parameter", "default", "description"]))
    print()
    print(tabulate([[k, _fmt(v)] for k, v in spec.metadata.items()], headers=["metadata", "value"]))
    return 0


def _series_columns(traj: Trajectory) -> tuple[list[str], list[np.ndarray]]:
    """Per-sample metadata arrays ``[L]`` exported next to the series."""
    import numpy as np

    length = len(traj.values)
    names, arrays = [], []
    for key, value in traj.metadata.items():
        if isinstance(value, np.ndarray) and value.ndim == 1 and len(value) == length:
            names.append(key)
            arrays.append(value)
    return names, arrays


def export_forecast(traj: Trajectory, split: str, writer) -> int:
    from dpbench.data import SPLITS, split_bounds

    extra_names, extra = _series_columns(traj)
    writer.writerow(["split", "t", *traj.columns, *extra_names])
    rows = 0
    for name, (lo, hi) in zip(SPLITS, split_bounds(len(traj.values))):
        if split not in ("all", name):
            continue
        for t in range(lo, hi):
            writer.writerow([name, t, *(repr(float(v)) for v in traj.values[t]),
                             *(e[t].item() for e in extra)])
            rows += 1
    return rows


def export_recall(raw: RecallSplits, split: str, writer) -> int:
    import numpy as np

    from dpbench.data import SPLITS

    first = raw.train
    in_dim, steps = first.x.shape[-1], first.x.shape[1]
    out_steps = first.y.shape[1]
    y_dim = first.y.shape[2] if first.y.ndim == 3 else 1
    y_names = [f"y{j}" for j in range(y_dim)] if first.y.ndim == 3 else ["y"]
    writer.writerow(["split", "seq", "step", *(f"x{j}" for j in range(in_dim)), *y_names, "scored"])
    rows = 0
    for name in SPLITS:
        if split not in ("all", name):
            continue
        part = getattr(raw, name)
        x, y = part.x.numpy(), part.y.numpy().reshape(len(part), out_steps, y_dim)
        mask = part.mask.numpy() if part.mask is not None else np.ones((len(part), out_steps), bool)
        for i in range(len(part)):
            for t in range(steps):
                j = t - (steps - out_steps)
                target = [y[i, j, k].item() for k in range(y_dim)] if j >= 0 else [""] * y_dim
                scored = int(mask[i, j]) if j >= 0 else 0
                writer.writerow([name, i, t, *(float(v) for v in x[i, t]), *target, scored])
                rows += 1
    return rows


def export(args: argparse.Namespace) -> int:
    from dpbench.data import Trajectory, generate_raw

    spec, params, seed = resolve_item(args.item, args.seed)
    raw = generate_raw(spec, params, seed)
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        if isinstance(raw, Trajectory):
            rows = export_forecast(raw, args.split, writer)
        else:
            rows = export_recall(raw, args.split, writer)
    print(f"wrote {rows} rows of {spec.name} ({args.split}, seed {seed}) to {args.out}")
    return 0


def plot(args: argparse.Namespace) -> int:
    from dpbench.data import generate_raw
    from dpbench.datasets._plot import plot_raw

    spec, params, seed = resolve_item(args.item, args.seed)
    raw = generate_raw(spec, params, seed)
    plot_raw(spec, raw, args.out, title=f"{spec.name} (seed {seed})")
    print(f"wrote {args.out}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="describe, export or plot a dataset")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    d = data_sub.add_parser("describe", help="parameters (defaults, docs) and metadata of a dataset")
    d.add_argument("name")
    d.set_defaults(func=describe)
    e = data_sub.add_parser("export", help="write the raw generated data as CSV")
    e.add_argument("item", metavar="NAME[:params]")
    e.add_argument("--split", choices=["train", "val", "test", "all"], default="all")
    e.add_argument("--out", required=True, help="CSV file to write")
    e.add_argument("--seed", type=int, default=0, help="data seed (the dataset's seed= wins if >= 0)")
    e.set_defaults(func=export)
    g = data_sub.add_parser("plot", help="plot a trajectory / attractor (PNG)")
    g.add_argument("item", metavar="NAME[:params]")
    g.add_argument("--out", required=True, help="PNG file to write")
    g.add_argument("--seed", type=int, default=0, help="data seed (the dataset's seed= wins if >= 0)")
    g.set_defaults(func=plot)
