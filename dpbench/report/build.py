"""Assemble ``report.md`` (tables + figures) for one run directory.

:func:`build_report` reads ``results.json`` (validated), draws the figures into
``RUN_DIR/figures/``, links the harness's ``diagnostics/*.png`` and writes Markdown whose
image links are relative to the folder of the Markdown file (so the same report can be
written into ``RUN_DIR/report.md`` or a ``results/README.md`` elsewhere).
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpbench.report import figures as F
from dpbench.report import tables as T
from dpbench.report import verdicts as V
from dpbench.results import TrialResult, atomic_write, load_results, trials_of


@dataclass
class Report:
    """What :func:`build_report` produced."""

    markdown: str
    terminal: str
    figures: list[Path] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)


def _forecast_groups(run_dir: Path, trials: list[TrialResult]) -> dict[tuple[str, str], dict[str, Path]]:
    """``{(dataset label, device): {model label: npz}}`` for the lowest seed that has
    rollouts (files are ``forecasts/<model>-<dataset>-<trial_id>.npz``)."""
    by_id = {t.trial_id: t for t in trials if t.status == "ok"}
    found: dict[tuple[str, str], dict[int, dict[str, Path]]] = defaultdict(lambda: defaultdict(dict))
    for npz in sorted((run_dir / "forecasts").glob("*.npz")):
        t = by_id.get(npz.stem.rsplit("-", 1)[-1])
        if t is not None:
            found[(T.label(t.dataset, t.dataset_params), t.device)][t.seed].setdefault(
                T.label(t.model, t.model_params), npz)
    return {d: by_seed[min(by_seed)] for d, by_seed in found.items()}


def _diagnostic_images(run_dir: Path) -> list[Path]:
    folder = run_dir / "diagnostics"
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def _diagnostic_caption(png: Path, by_id: dict[str, TrialResult]) -> str:
    """``model on dataset:params, seed s: name`` for ``<model>-<dataset>-<trial_id>-<name>.png``."""
    for trial_id, t in by_id.items():
        marker = f"-{trial_id}-"
        if marker in png.stem:
            name = png.stem.split(marker, 1)[1]
            return f"{T.label(t.model, t.model_params)} on {T.label(t.dataset, t.dataset_params)}, seed {t.seed}: {name}"
    return png.stem


class _Writer:
    """Collects Markdown and terminal text section by section."""

    def __init__(self, base: Path):
        self.base, self.md, self.term, self.sections = base, [], [], []

    def section(self, title: str, intro: str = "") -> None:
        self.sections.append(title)
        self.md += [f"\n## {title}\n", *([intro, ""] if intro else [])]
        self.term += [f"\n{title}", "-" * len(title)]

    def table(self, table: T.Table | None, caption: str = "") -> None:
        if table is None:
            return
        if caption:
            self.md.append(f"*{caption}*\n")
            self.term.append(caption)
        self.md += [T.render(table, "pipe"), ""]
        self.term.append(T.render(table, "simple"))

    def image(self, path: Path | None, alt: str) -> None:
        if path is not None:
            rel = Path(os.path.relpath(path, self.base)).as_posix()
            self.md += [f"![{alt}]({rel})", ""]
            self.term.append(f"figure: {path}")

    def text(self, line: str) -> None:
        self.md += [line, ""]


def build_report(run_dir: Path, markdown_dir: Path | None = None, title: str | None = None,
                 with_runs: tuple[Path, ...] = ()) -> Report:
    """Tables and figures of the run in ``run_dir``; links relative to ``markdown_dir``
    (default ``run_dir``). ``with_runs``: other runs (e.g. the same suite on another device)
    whose throughput joins the throughput table and a device-ratio table. Raises
    :class:`dpbench.params.UsageError` for a bad run."""
    run_dir = Path(run_dir)
    doc = load_results(run_dir)
    if run_dir.is_file():  # the results.json itself was given
        run_dir = run_dir.parent
    trials = trials_of(doc)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    w = _Writer(Path(markdown_dir or run_dir))
    figures: list[Path] = []
    env: dict[str, Any] = doc.get("environment") or {}
    ok = T.ok_trials(trials)
    w.md.append(f"# {title or 'dpbench report: ' + str(doc.get('run_id', run_dir.name))}\n")
    w.text(f"{len(ok)} of {len(trials)} trials ok · torch {env.get('torch', '?')} · "
           f"{env.get('cpu', '?')} ({env.get('cpu_count', '?')} cores, {env.get('torch_threads', '?')} threads) · "
           f"git {str(env.get('git_sha', '?'))[:10]}{' (dirty)' if env.get('git_dirty') else ''}")

    verdicts, verdict_figs = V.verdicts_markdown(trials, fig_dir, w.base, V.classical_models())
    if verdicts:
        w.sections.append("Verdicts")
        w.md += [verdicts, ""]
        w.term += ["", verdicts]
        figures += verdict_figs

    forecast = T.metric_table(trials, "forecast", "accuracy")
    recall = T.metric_table(trials, "recall", "accuracy")
    if forecast or recall:
        w.section("Accuracy", "Mean ± std over seeds; ★ marks the best model per dataset and device. "
                  "VPT: median valid prediction time of closed-loop rollouts in Lyapunov times (LT) "
                  "(bracketed: at another threshold ε). Steps, sequences seen and wall time are the "
                  "optimisation effort of the final trials (tuning excluded). Definitions: docs/reports.md. "
                  + T.UNCONVERGED_NOTE)
        w.table(forecast, "Forecasting (one-step: test split; rollouts: independent test trajectories "
                "where the dataset has them)")
        w.table(T.relative_table(trials), "Forecasting relative to ngrc and to persistence, VPT and one-step NRMSE "
                "(ratios of seed means; VPT above 1 and NRMSE below 1 beat the reference)")
        w.table(recall, "Recall (test split)")
        overhead = T.tuning_overhead(trials)
        if overhead and overhead[1] > 0:
            tuned, final = overhead
            w.text(f"Tuning overhead: {tuned:.0f} s of tuning trials and {final:.0f} s of final trials, "
                   f"(tuning + final) / final = {T.times((tuned + final) / final)}.")

    vpt = T.metric_table(trials, "forecast", "vpt")
    if vpt:
        w.section("Valid prediction time", "Per trial: the percentile-bootstrap 95 % interval of the median "
                  "VPT, the share of rollouts censored at the cap (never crossed ε), the cap and the number "
                  "of rollouts; mean ± std over seeds. A censored share near or above one half means the cap "
                  "binds: the median is then a lower bound.")
        w.table(vpt)

    long_term = _long_term_tables(trials)
    attractors = _attractor_figures(run_dir, trials, fig_dir)
    if long_term or attractors:
        w.section("Long-term statistics", "Long autonomous rollouts against a long trajectory of the true "
                  "system from other initial conditions: log-PSD distance, Wasserstein-1 of the marginals "
                  "and sliced W1 of the joint invariant measure (std units), the learned model's largest "
                  "Lyapunov exponent and its relative error, and `climate ok` (bounded, not a fixed point "
                  "or short cycle; mean over seeds = share of seeds). Lower distances are better. "
                  "Figures: the best models by sliced W1 and lstm, lowest seed.")
        for dlabel, table in long_term:
            w.table(table, f"Long-term statistics: {dlabel}")
        for path, dlabel in attractors:
            w.image(path, f"attractor {dlabel}")
        figures += [p for p, _ in attractors]

    recall_figs = F.plot_recall(trials, fig_dir)
    lag_table = T.max_lag_table(doc.get("derived") or [], trials)
    if recall_figs or lag_table:
        w.section("Long-dependency recall", "Accuracy against the swept lag; the table gives the largest "
                  "lag whose seed-mean accuracy is at least 90 %.")
        w.table(lag_table)
        for p in recall_figs:
            w.image(p, "accuracy vs lag")
        figures += recall_figs

    cost_trials = trials + [t for other in with_runs for t in trials_of(load_results(Path(other)))]
    cost = T.cost_table(cost_trials)
    if cost:
        w.section("Throughput and memory", "Median sequences/s over trials (training steps and batched "
                  "inference), speedup relative to lstm on the same device, peak memory of a training step (CPU: parameters "
                  "+ profiled peak of one step's allocations; CUDA: allocator peak over the trial).")
        w.table(cost)
        if with_runs:
            w.text("Throughput rows of other runs: " + ", ".join(f"`{Path(r).as_posix()}`" for r in with_runs)
                   + " (throughput is only comparable with each run's hardware in mind: see each run's "
                   "environment block).")
            w.table(T.device_ratio_table(cost_trials), "The same models on two devices (other / cpu)")
        path = F.plot_cost(trials, fig_dir)
        w.image(path, "throughput and memory")
        figures += [path] if path else []

    curves = F.plot_learning_curves(trials, fig_dir)
    if curves:
        w.section("Learning curves", "Validation (solid) and training (dashed) loss against step, every "
                  "seed; a curve ends where early stopping or the step cap ended the trial. " + T.UNCONVERGED_NOTE)
        for p in curves:
            w.image(p, "learning curves")
        figures += curves

    grad = F.plot_gradient_sensitivity(trials, fig_dir)
    if grad:
        w.section("Gradient sensitivity", "‖∂y_T/∂x_t‖ of the last output with respect to each input step "
                  "(mean over test windows and seeds): how far back the learning signal reaches (seed Fig. 6).")
        for p in grad:
            w.image(p, "gradient sensitivity")
        figures += grad

    groups = _forecast_groups(run_dir, trials)
    if groups:
        w.section("Forecasts", "The first closed-loop test rollout of each model (lowest seed) against the "
                  "true trajectory, in units of the training standard deviation.")
        for i, ((dataset, device), rollouts) in enumerate(sorted(groups.items())):
            dlabel = dataset + ("" if device == "cpu" else f" ({device})")
            paths = F.plot_forecasts(rollouts, fig_dir / f"forecast-{i}.png", f"Closed-loop forecast: {dlabel}",
                                     order=T.ranking([t for t in trials if t.device == device], dataset))
            for j, path in enumerate(paths):
                w.image(path, f"forecast {dlabel}" + (f", more models ({j})" if j else ""))
            figures += paths

    diag = _diagnostic_images(run_dir)
    if diag:
        w.section("Attention and memory maps", "Diagnostics saved by the harness (`--save-attention K`): "
                  "attention alignments (seed Fig. 5) and DNC read/write weightings over memory slots.")
        by_id = {t.trial_id: t for t in trials}
        for p in diag:
            w.text(f"**{_diagnostic_caption(p, by_id)}**")
            w.image(p, p.stem)

    own = T.model_metric_table(trials)
    if own:
        w.section("Model-specific metrics", "Metrics a model computes itself (its spec's `metrics`; registered "
                  "metrics of table `model`, defined in docs/reports.md), e.g. the hybrid's recovered physical "
                  "parameters: mean ± std over seeds; `better` is the registered direction "
                  "(`-`: descriptive, not gated).")
        w.table(own)

    budget = T.budget_table(trials)
    if budget:
        w.section("Outside the parameter budget", "`budget_ok = 0`: the width of these models cannot reach "
                  "the block's parameter budget (within its tolerance), so they are compared at their own size.")
        w.table(budget)

    failed = T.failure_table(trials)
    if failed:
        w.section("Trials that did not finish", "")
        w.table(failed)
    return Report("\n".join(w.md).rstrip() + "\n", "\n".join(w.term).strip() + "\n", figures, w.sections)


def _long_term_tables(trials: list[TrialResult]) -> list[tuple[str, T.Table]]:
    """One long-term statistics table per forecast dataset label."""
    by_dataset: dict[str, list[TrialResult]] = defaultdict(list)
    for t in T.ok_trials(trials):
        by_dataset[T.label(t.dataset, t.dataset_params)].append(t)
    out = []
    for dlabel in sorted(by_dataset):
        table = T.metric_table(by_dataset[dlabel], "forecast", "long_term")
        if table:
            out.append((dlabel, table))
    return out


ATTRACTOR_BEST = 2
ATTRACTOR_RANKING = "w1_sliced"


def _attractor_figures(run_dir: Path, trials: list[TrialResult], fig_dir: Path) -> list[tuple[Path, str]]:
    """Truth vs model attractor densities and power spectra per forecast dataset: the
    :data:`ATTRACTOR_BEST` models with the lowest mean sliced W1, and lstm."""
    out = []
    for i, ((dataset, device), rollouts) in enumerate(sorted(_forecast_groups(run_dir, trials).items())):
        dlabel = dataset + ("" if device == "cpu" else f" ({device})")
        means = {}
        for model in rollouts:
            vals = [t.metrics.get(ATTRACTOR_RANKING) for t in T.ok_trials(trials)
                    if T.label(t.model, t.model_params) == model and t.device == device
                    and T.label(t.dataset, t.dataset_params) == dataset]
            vals = [v for v in vals if v is not None]
            if vals:
                means[model] = sum(vals) / len(vals)
        chosen = sorted(means, key=means.get)[:ATTRACTOR_BEST]
        chosen += [m for m in rollouts if m == T.REFERENCE_MODEL and m not in chosen]
        path = F.plot_attractors({m: rollouts[m] for m in chosen}, fig_dir / f"attractor-{i}.png",
                                 f"Long-term statistics: {dlabel}")
        if path is not None:
            out.append((path, dlabel))
    return out


PUBLISHED_PREAMBLE = """The committed run of the `{suite}` suite (`{run_dir}`), generated, not edited by hand.
Regenerate it with

```bash
dpbench run --suite {suite} --out {run_dir} --force
dpbench report {run_dir} --published --out {out}
```

{regenerate}`dpbench compare` checks a run against it (see [docs/ci.md]({ci_doc})); on another machine
its throughput verdicts are inconclusive (exit 3) unless `--normalize`. The CI gate is
`dpbench abtest`, which runs base and head side by side on one machine instead.
"""

#: How the protocol-v2 results are made (README "Protocol"): the standard suite (the
#: baseline), the default suite at budget scales 1 and 5 and their verdict stability.
REGENERATE = """The protocol-v2 results (tuning on validation, reduce-on-plateau, early stopping; README "Protocol"):

```bash
dpbench run --suite standard --out results/standard-cpu --force                 # <= 90 min target, 5 seeds
dpbench report results/standard-cpu --published --out results/README.md
dpbench run --out results/default-cpu --force                                   # the default suite, <= 20 min target
dpbench report results/default-cpu --published --out results/default-cpu/README.md
dpbench run --budget-scale 5 --out results/default-k5 --force                   # every step and tuning budget x5
dpbench stability results/default-cpu results/default-k5 --markdown             # Spearman rho, flipped verdicts
```

"""


def write_report(run_dir: Path, out: Path | None = None, title: str | None = None,
                 published: bool = False, with_runs: tuple[Path, ...] = ()) -> tuple[Path, Report]:
    """Build the report and write it to ``out`` (default ``RUN_DIR/report.md``).

    ``published`` adds :data:`PUBLISHED_PREAMBLE` (how to regenerate) under the title, for
    ``results/README.md``."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    load_results(run_dir)  # a missing or malformed run fails here, before anything is created
    out = Path(out) if out else run_dir / "report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = build_report(run_dir, out.parent, title, with_runs)
    if published:
        suite = (load_results(run_dir).get("config") or {}).get("suite", {}).get("name", "default")
        head, _, rest = report.markdown.partition("\n")
        ci_doc = Path(os.path.relpath(Path("docs/ci.md").resolve(), out.parent.resolve())).as_posix()
        preamble = PUBLISHED_PREAMBLE.format(suite=suite, run_dir=run_dir.as_posix(), out=out.as_posix(),
                                             regenerate=REGENERATE, ci_doc=ci_doc)
        report.markdown = f"{head}\n\n{preamble}{rest}"
    atomic_write(out, report.markdown)
    return out, report
