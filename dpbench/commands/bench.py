"""``dpbench bench dnc``: the DNC access step — reference eager, torch.compile(reference) and the
fused kernels — timed side by side (forward and forward+backward over T steps) with
speedup and memory ratios. Engine: :mod:`dpbench.ops.dnc_bench`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from dpbench.params import UsageError

GOALS = {"train_speedup_vs_reference": 5.0, "train_speedup_vs_compiled": 1.5,
         "peak_memory_ratio_max": 1 / 3}


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"expected comma-separated integers, got {text!r}") from None


def _ratios(rows) -> list[dict]:
    """Speedups and memory ratios against reference / compiled of the same config and mode."""
    from dpbench.ops.dnc_bench import GRAPH

    by_key = {(json.dumps(r.config, sort_keys=True), r.impl, r.mode): r for r in rows}
    out = []
    for r in rows:
        key = json.dumps(r.config, sort_keys=True)
        base = "reference" + (GRAPH if r.impl.endswith(GRAPH) else "")   # graph vs graph
        ref, comp = by_key.get((key, base, r.mode)), by_key.get((key, "compiled", r.mode))
        d = asdict(r)
        d["speedup_vs_reference"] = (ref.median_ms / r.median_ms
                                     if ref and ref.median_ms and r.median_ms else None)
        d["speedup_vs_compiled"] = (comp.median_ms / r.median_ms
                                    if comp and comp.median_ms and r.median_ms else None)
        d["peak_ratio_vs_reference"] = (r.peak_mb / ref.peak_mb
                                        if ref and ref.peak_mb and r.peak_mb else None)
        d["saved_ratio_vs_reference"] = (r.saved_mb / ref.saved_mb
                                         if ref and ref.saved_mb and r.saved_mb else None)
        out.append(d)
    return out


def _fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def bench_dnc(args: argparse.Namespace) -> int:
    import torch
    from tabulate import tabulate

    from dpbench.ops import _loader
    from dpbench.ops.dnc_bench import (GRAPH, IMPLS, Config, bandwidth_floor,
                                       copy_bandwidth, link_stream_floor, measure,
                                       stream_floor_row)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device visible to torch")
    impls = [i for i in args.impls.split(",") if i]
    if bad := [i for i in impls if i not in IMPLS]:
        raise UsageError(f"unknown impl {bad[0]!r}; choose from {', '.join(IMPLS)}")
    status = _loader.fused_status(args.device)
    if args.device != "cuda" and (graphs := [i for i in impls if i.endswith(GRAPH)]):
        raise UsageError(f"impl {graphs[0]!r} needs --device cuda (CUDA graphs)")
    if not status.available and (fused := [i for i in impls if i.startswith("fused")]):
        print(f"dpbench bench: fused unavailable on {args.device} ({status.reason}); skipped")
        impls = [i for i in impls if i not in fused]
    rows, interrupted = [], False
    try:   # Ctrl-C (or a time limit's SIGINT) keeps the configs measured so far
        for b in _ints(args.batch):
            for n in _ints(args.slots):
                cfg = Config(b, n, args.word, args.heads, args.steps)
                rows += measure(cfg, impls, args.device, args.repeats,
                                memory=not args.no_memory,
                                log=lambda msg: print(f"dpbench bench: {msg}", file=sys.stderr,
                                                      flush=True))
    except KeyboardInterrupt:
        interrupted = True
        print("dpbench bench: interrupted; reporting the configs measured so far",
              file=sys.stderr)
    table = _ratios(rows)
    result = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "load_average": os.getloadavg(), "fused": status._asdict(), "goals": GOALS,
              "interrupted": interrupted, "rows": table}
    configs = [Config(b, n, args.word, args.heads, args.steps)
               for b in _ints(args.batch) for n in _ints(args.slots)]
    if args.device == "cpu" and any(r.impl == "fused" for r in rows):
        result["cpu"] = {"link_stream_floor": [
            stream_floor_row(c, link_stream_floor(c, args.repeats), rows) for c in configs]}
    if args.device == "cuda":
        bandwidth = copy_bandwidth("cuda")
        result["gpu"] = {"name": torch.cuda.get_device_name(),
                         "copy_bandwidth_bytes_per_s": bandwidth,
                         "link_traffic": [bandwidth_floor(c, bandwidth, rows) for c in configs]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"DNC access step, T={args.steps}, W={args.word}, R={args.heads}, device={args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, fused: {status.source}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(tabulate([[f"B={d['config']['batch']} N={d['config']['slots']}", d["impl"], d["mode"],
                     _fmt(d["median_ms"], ".1f"), _fmt(d["speedup_vs_reference"]),
                     _fmt(d["speedup_vs_compiled"]), _fmt(d["saved_mb"], ".1f"),
                     _fmt(d["peak_mb"], ".1f"), _fmt(d["peak_ratio_vs_reference"]),
                     d["error"][:60]] for d in table],
                   headers=["config", "impl", "mode", "median ms", "× vs ref", "× vs compiled",
                            "saved MB", "peak MB", "peak/ref", "error"]))
    if "cpu" in result:
        print("\nlink stream floor (the sequence's link matrices streamed by ATen copy_/add_ "
              "alone, same run):")
        print(tabulate([[f"B={t['batch']} N={t['slots']}",
                         _fmt(t["floor"] and t["floor"]["forward_ms"], ".1f"),
                         _fmt(t["fused_forward_ms"], ".1f"), _fmt(t["fused_forward_over_floor"]),
                         _fmt(t["floor"] and t["floor"]["train_ms"], ".1f"),
                         _fmt(t["fused_train_ms"], ".1f"), _fmt(t["fused_train_over_floor"])]
                        for t in result["cpu"]["link_stream_floor"]],
                       headers=["config", "fwd floor ms", "fused fwd ms", "× floor",
                                "train floor ms", "fused train ms", "× floor"]))
    if "gpu" in result:
        gpu = result["gpu"]
        print(f"\n{gpu['name']}: measured copy bandwidth {gpu['copy_bandwidth_bytes_per_s'] / 1e12:.2f} "
              "TB/s (read + write); link-matrix floor of the whole sequence (float32):")
        print(tabulate([[f"B={t['batch']} N={t['slots']}", t["forward_min_bytes"],
                         t["forward_min_bytes"] + t["backward_min_bytes"],
                         _fmt(t["floor_forward_ms"], ".3f"), _fmt(t["fused_forward_ms"], ".3f"),
                         _fmt(t["fused_forward_over_floor"], ".1f"),
                         _fmt(t["fused_graph_forward_over_floor"], ".1f"),
                         _fmt(t["floor_train_ms"], ".3f"), _fmt(t["fused_train_ms"], ".3f"),
                         _fmt(t["fused_train_over_floor"], ".1f"),
                         _fmt(t["fused_graph_train_over_floor"], ".1f")]
                        for t in gpu["link_traffic"]],
                       headers=["config", "fwd bytes/step", "train bytes/step", "fwd floor ms",
                                "fused fwd ms", "× floor", "graph × floor", "train floor ms",
                                "fused train ms", "× floor", "graph × floor"]))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="micro-benchmarks of dpbench's fused kernels")
    kinds = p.add_subparsers(dest="kernel", metavar="KERNEL")
    d = kinds.add_parser("dnc", help="DNC access step: reference, torch.compile(reference), fused")
    d.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.add_argument("--batch", default="1,16", help="batch sizes (default 1,16)")
    d.add_argument("--slots", default="64,256", help="memory slots N (default 64,256)")
    d.add_argument("--word", type=int, default=32, help="word size W (default 32)")
    d.add_argument("--heads", type=int, default=4, help="read heads R (default 4)")
    d.add_argument("--steps", type=int, default=64, help="sequence length T (default 64)")
    d.add_argument("--repeats", type=int, default=5, help="timed runs per cell (default 5)")
    d.add_argument("--impls", default="reference,fused,compiled",
                   help="comma-separated subset of reference, compiled, fused; "
                        "reference+ckpt, fused+ckpt: chunks of ≈√T steps recomputed in the "
                        "backward (torch.utils.checkpoint: less memory, one more forward); "
                        "(CUDA) reference+graph, fused+graph: the whole sequence replayed from a "
                        "CUDA graph, i.e. device time without the host's per-op overhead")
    d.add_argument("--threads", type=int, default=0,
                   help="torch.set_num_threads for the timings (default: torch's default)")
    d.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory subprocesses (saved-tensor bytes are still counted)")
    d.set_defaults(func=bench_dnc)
    from dpbench.commands import bench_learn, bench_twin

    bench_learn.add_parser(kinds)
    bench_twin.add_parser(kinds)
    p.set_defaults(func=lambda args: p.print_help() or 0)
