"""``dpbench doctor``: which DNC access implementation is active per device, and why.

``dpbench doctor --selftest [--device cuda]`` builds (or loads) the fused kernels, checks them
against the reference (forward and gradients, float64 and float32, N up to 257, usage ties,
gradcheck) and times reference vs fused at B=16, N=256 — one command for a GPU session (< 5 min).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time


def _tools() -> dict:
    return {t: shutil.which(t) or "-" for t in ("c++", "ninja", "cmake", "nvcc")}


def report(args: argparse.Namespace) -> int:
    import torch

    from dpbench.ops import _loader

    print(f"python {platform.python_version()}, torch {torch.__version__} "
          f"(CUDA {torch.version.cuda or 'none'}), {torch.get_num_threads()} threads, "
          f"load {os.getloadavg()[0]:.1f}")
    print("tools: " + ", ".join(f"{k}={v}" for k, v in _tools().items()))
    for path in filter(None, (os.environ.get("DPBENCH_EXT_PATH"), str(_loader.PREBUILT))):
        print(f"prebuilt: {path} ({'present' if os.path.isfile(path) else 'absent'})")
    print(f"JIT cache: {_loader.cache_root()}  sources: {_loader.source_dir()}")
    devices = ["cpu", "cuda"]
    for dev in devices:
        if dev == "cuda" and not torch.cuda.is_available():
            print("cuda: reference (no CUDA device visible to torch)")
            continue
        s = _loader.fused_status(dev)
        print(f"{dev}: {'fused' if s.available else 'reference'} ({s.source}: {s.reason})")
    if args.selftest:
        return selftest(args.device)
    return 0


def selftest(device: str) -> int:
    """Build, check against the reference, time; returns 0 when every check passes."""
    import torch

    from dpbench.ops import _loader
    from dpbench.ops.dnc_bench import Config, measure
    from dpbench.ops.dnc_check import compare_with_reference, within_tolerance

    if device == "cuda" and not torch.cuda.is_available():
        print("selftest: no CUDA device visible to torch", file=sys.stderr)
        return 1
    start = time.perf_counter()
    status = _loader.fused_status(device)
    print(f"selftest[{device}] build/load: {status.source} — {status.reason}")
    if not status.available:
        return 1
    failures = 0
    for shape in [(1, 1, 3, 1), (2, 7, 4, 2), (3, 64, 8, 3), (2, 257, 5, 2), (16, 256, 32, 4)]:
        for dtype in (torch.float64, torch.float32):
            bad = within_tolerance(compare_with_reference(shape, dtype, device, seed=7), dtype,
                                   slots=shape[1])
            failures += bool(bad)
            print(f"selftest[{device}] B,N,W,R={shape} {str(dtype)[6:]}: "
                  f"{'ok' if not bad else 'FAIL ' + '; '.join(bad[:3])}")
    failures += _check_ties_and_gradcheck(device)
    for cfg in (Config(16, 256), Config(16, 64)):
        for row in measure(cfg, ("reference", "fused"), device, repeats=3, memory=False):
            print(f"selftest[{device}] time B={cfg.batch} N={cfg.slots} T={cfg.steps} "
                  f"{row.impl:9s} {row.mode:7s} {row.median_ms or float('nan'):9.1f} ms "
                  f"saved {row.saved_mb or 0:7.1f} MB {row.error}")
    verdict = "PASS" if failures == 0 else f"FAIL ({failures} checks)"
    print(f"selftest[{device}]: {verdict} in {time.perf_counter() - start:.0f} s")
    return int(failures > 0)


def _check_ties_and_gradcheck(device: str) -> int:
    import torch

    from dpbench.ops import DNCInterface, DNCState, dnc_access_step
    from dpbench.ops.dnc_check import leaves, random_interface, rollout

    states, _, gen = rollout(2, 5, 3, 2, steps=3, seed=3)
    x = random_interface(2, 3, 2, gen)
    tied = torch.tensor([[0.3, 0.1, 0.1, 0.7, 0.1]] * 2, dtype=torch.float64)
    cases = {"ties": (states[-1]._replace(usage=tied), x._replace(free_gates=x.free_gates * 0))}
    to = lambda s, i: (DNCState(*[t.to(device) for t in s]),  # noqa: E731
                       DNCInterface(*[t.to(device) for t in i]))
    s, i = to(*cases["ties"])
    ok_ties = torch.allclose(dnc_access_step(s, i, impl="fused")[0].write_weights,
                             dnc_access_step(s, i)[0].write_weights, rtol=1e-12, atol=0)
    s, i = leaves(*to(states[-1], x))
    n = len(s)
    fn = lambda *a: dnc_access_step(DNCState(*a[:n]), DNCInterface(*a[n:]), impl="fused")  # noqa
    ok_grad = torch.autograd.gradcheck(lambda *a: (*fn(*a)[0], fn(*a)[1]), (*s, *i),
                                       eps=1e-6, atol=1e-7, raise_exception=False)
    print(f"selftest[{device}] usage ties: {'ok' if ok_ties else 'FAIL'}; "
          f"gradcheck float64: {'ok' if ok_grad else 'FAIL'}")
    return int(not ok_ties) + int(not ok_grad)


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="which fused kernels are active per device, and why")
    p.add_argument("--selftest", action="store_true",
                   help="build, check against the reference and time the kernels (< 5 min)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="device for --selftest (default cpu)")
    p.set_defaults(func=report)
