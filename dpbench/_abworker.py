"""One side of ``dpbench abtest``: runs the trials it is told to, one at a time.

This file is not imported by the side it drives: :mod:`dpbench.abtest` passes its *source*
to ``python -c`` in the side's git worktree (``cwd`` and ``PYTHONPATH`` = that worktree), so
``import dpbench`` below is that revision's code. It uses only the harness API that both
sides share (suite loading, trial expansion, the runner's ``run_trials`` and ``RunWriter``).

Protocol (JSON lines; the real stdout is kept for it, ``print`` in model code goes to stderr):

* argv[1] = JSON ``{"suite", "models", "datasets", "seeds", "steps", "out", "threads",
  "timeout", "calibrate", "resume"}`` (``calibrate`` false skips the calibration workload;
  ``resume`` true appends to the side's existing run directory: a fresh worker per trial); the worker answers ``{"hello": {"dpbench": path, "trials": [[id, label], ...]}}``
  or ``{"error": "one line"}`` and exits 2;
* stdin ``{"run": trial_id}`` → ``{"done": trial_id, "status": ..., "error": ...}``;
* stdin ``{"end": true}`` → result files finalised, ``{"bye": run_dir}``.
"""
import json
import os
import sys


def main() -> int:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def say(obj) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    cfg = json.loads(sys.argv[1])
    try:
        import torch

        if cfg.get("threads"):
            torch.set_num_threads(int(cfg["threads"]))
        import dpbench
        from dpbench.calibration import calibrate
        from dpbench.environment import environment
        from dpbench.harness.runner import new_run_dir, run_trials
        from dpbench.harness.suite import expand_trials, load_suite, override
        try:  # the metric registry's derived metrics (older revisions: harness.summary)
            from dpbench.metrics import derived_metrics as _derived

            def derived_metrics(trials):
                return _derived(trials, get_registry())
        except ImportError:
            from dpbench.harness.summary import derived_metrics
        from dpbench.plugins import get_registry
        from dpbench.results import RunWriter

        registry = get_registry()
        suite = override(load_suite(cfg["suite"]), cfg.get("models"), cfg.get("datasets"), cfg.get("seeds"),
                         None, cfg.get("steps"))
        trials, _ = expand_trials(suite, registry, torch.cuda.is_available())
        if not trials:
            raise ValueError("the suite selects no trials")
        config = {"suite": suite.to_dict(), "options": {"abtest": cfg}, "trials": [t.trial_id for t in trials]}
        if cfg.get("resume"):  # a later worker of the same side: append to its run directory
            from pathlib import Path

            run_dir = Path(cfg["out"])
            writer = RunWriter(run_dir, run_dir.name, config, json.loads((run_dir / "results.json").read_text())
                               .get("environment") or environment())
        else:
            run_dir = new_run_dir(cfg["out"], force=True)
            (run_dir / "config.json").write_text(json.dumps(config, indent=1, default=str))
            writer = RunWriter(run_dir, run_dir.name, config, environment())
            writer.calibration = calibrate() if cfg.get("calibrate", True) else None
            writer.write()
    except Exception as exc:  # the side cannot run this suite at all
        say({"error": " ".join(f"{type(exc).__name__}: {exc}".split())[:400]})
        return 2
    by_id = {t.trial_id: t for t in trials}
    say({"hello": {"dpbench": os.path.dirname(dpbench.__file__), "trials": [[t.trial_id, t.label] for t in trials]}})
    for line in sys.stdin:
        msg = json.loads(line)
        if "run" in msg:
            trial = by_id[msg["run"]]
            results = run_trials([trial], registry, run_dir, writer, cfg.get("timeout"), quiet=True)
            res = results[0]
            say({"done": trial.trial_id, "status": res.status, "error": res.error})
        elif msg.get("end"):
            break
    writer.derived = derived_metrics(writer.trials)
    if hasattr(os, "getloadavg"):
        writer.environment["load_end"] = [round(x, 2) for x in os.getloadavg()]
    writer.write()
    say({"bye": str(run_dir)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
