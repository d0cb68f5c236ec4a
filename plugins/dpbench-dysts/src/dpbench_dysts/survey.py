"""``python -m dpbench_dysts.survey``: which dysts systems integrate, how fast, how accurately.

* ``--list``: the supported system names, one per line.
* default: generate every supported system (or ``--systems A,B``) at ``--length`` samples
  and print one line per system: ok with seconds, or the failure.
* ``--accuracy``: also integrate at rtol = atol = 1e-12 and report, in Lyapunov times, how
  long the default (1e-9) trajectory stays within 1 % of the attractor's std of it
  (chaos amplifies any integration error like e^{λt}, so this is the horizon over which
  the generated data is the system's, not the solver's).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from dpbench_dysts.generate import generate, initial_state, integrate_system, sampling_step
from dpbench_dysts.plugin import DYSTS
from dpbench_dysts.systems import supported, system_facts


def faithful_lyapunov_times(name: str, length: int = 600, reference_rtol: float = 1e-12) -> float:
    """Lyapunov times until the default-tolerance trajectory leaves 1 % of std of a
    ``reference_rtol`` one started from the same state (no transient)."""
    facts = system_facts(name)
    dt = sampling_step(facts, "period", float(DYSTS.defaults["points"]))
    t = np.arange(length) * dt
    x0 = initial_state(name, 0)
    fast = integrate_system(name, x0, t, 0.0)
    exact = integrate_system(name, x0, t, 0.0, rtol=reference_rtol)
    err = np.abs(fast - exact).max(axis=1) / exact.std(axis=0).max()
    bad = np.nonzero(err > 0.01)[0]
    steps = bad[0] if len(bad) else length
    return float(steps * dt * facts["lyapunov_exponent"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dpbench_dysts.survey", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="print the supported systems and exit")
    p.add_argument("--systems", help="comma-separated subset (default: all supported)")
    p.add_argument("--length", type=int, default=1000, help="samples per system")
    p.add_argument("--accuracy", action="store_true", help="also measure the faithful horizon")
    args = p.parse_args(argv)
    names = args.systems.split(",") if args.systems else supported()
    if args.list:
        print("\n".join(names))
        return 0
    failed = 0
    for name in names:
        start = time.perf_counter()
        try:
            generate({**DYSTS.defaults, "system": name, "length": args.length}, 0)
            line = f"ok     {name:28s} {time.perf_counter() - start:6.2f} s"
            if args.accuracy:
                line += f"  faithful for {faithful_lyapunov_times(name):.1f} Lyapunov times"
        except Exception as exc:
            failed += 1
            line = f"FAILED {name:28s} {type(exc).__name__}: {exc}"
        print(line, flush=True)
    print(f"{len(names) - failed} ok, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
