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
* stdin ``{"time": trial_id, "seconds": s}`` → ``{"timed": trial_id, "infer": seq/s,
  "train": seq/s or null}``: one timing burst (:func:`burst_timer`);
* stdin ``{"end": true}`` → result files finalised, ``{"bye": run_dir}``.
"""
import json
import os
import sys
import time


def burst_timer(trial, registry):
    """A function ``burst(seconds) -> (infer, train)`` timing the trial's model: ``infer``
    = batched forward passes per second x batch, ``train`` = training steps (forward, loss,
    backward, clipping, optimiser step; lr 0, so the weights never change and no burst can
    diverge) per second x batch, ``None`` for closed-form models. Each figure is one timed
    block of as many calls as fill ``seconds / 2`` (the count is fixed at the first burst,
    so every burst of a trial times the same work).

    The timing loop is this file's, not the side's: both revisions are measured by the same
    code. The model is built as the trial builds it (same seed, budget and tuned values);
    the weights do not change how long a forward takes."""
    import torch
    from dpbench.data import prepare
    from dpbench.harness.budget import build_at_budget
    from dpbench.harness.train import make_optimizer, task_loss

    spec, (cfg, params) = registry.model(trial.model), trial.effective()
    task = prepare(registry.dataset(trial.dataset), trial.dataset_params, trial.seed)
    torch.manual_seed(trial.seed)
    model = build_at_budget(spec, task, params, cfg.param_budget, cfg.budget_tolerance).module.to(trial.device)
    bs = min(cfg.batch_size, len(task.train))
    x_inf = task.test.x[:bs]
    if len(x_inf) < bs:
        x_inf = x_inf.repeat((bs + len(x_inf) - 1) // len(x_inf), 1, 1)[:bs]
    x_inf = x_inf.to(trial.device)
    x_tr, y_tr = task.train.x[:bs].to(trial.device), task.train.y[:bs].to(trial.device)
    trains = not getattr(spec, "fitted", False)
    loss_fn = task_loss(task)
    opt = make_optimizer(cfg, model.parameters())
    for group in opt.param_groups:
        group["lr"] = 0.0
    sync = torch.cuda.synchronize if trial.device.startswith("cuda") else (lambda: None)

    def infer() -> None:
        with torch.no_grad():
            model(x_inf)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x_tr), y_tr).backward()
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()

    counts: dict = {}

    def rate(name, fn, seconds: float) -> float:
        if name not in counts:  # warm up, then double the count until a block fills `seconds`
            fn(), fn()
            n = 1
            while True:
                sync()
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                sync()
                if time.perf_counter() - t0 >= seconds or n >= 1 << 20:
                    break
                n *= 2
            counts[name] = n
        n = counts[name]
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return n * bs / (time.perf_counter() - t0)

    def burst(seconds: float):
        model.eval()
        i = rate("infer", infer, seconds / 2)
        if not trains:
            return i, None
        model.train()
        return i, rate("train", step, seconds / 2)

    return burst


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
    timers: dict = {}
    say({"hello": {"dpbench": os.path.dirname(dpbench.__file__), "trials": [[t.trial_id, t.label] for t in trials]}})
    for line in sys.stdin:
        msg = json.loads(line)
        if "run" in msg:
            trial = by_id[msg["run"]]
            results = run_trials([trial], registry, run_dir, writer, cfg.get("timeout"), quiet=True)
            res = results[0]
            say({"done": trial.trial_id, "status": res.status, "error": res.error})
        elif "time" in msg:
            try:
                if msg["time"] not in timers:
                    timers[msg["time"]] = burst_timer(by_id[msg["time"]], registry)
                infer, train = timers[msg["time"]](float(msg.get("seconds", 0.1)))
                say({"timed": msg["time"], "infer": infer, "train": train})
            except Exception as exc:  # a revision without the API used here: the trials' own timing stays
                say({"timed": msg["time"], "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:300]})
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
