"""Per-model tuning on the validation split with Optuna (TPE sampler, median or
successive-halving pruner), one study per (block, model, dataset, device).

Protocol:

* A block's ``[block.tune]`` declares a search space and a budget (Optuna trials per
  study). Each study trains its model ``budget`` times on data seed ``tune.seed`` with
  values drawn by a TPE sampler (Bergstra et al. 2011, *Algorithms for hyper-parameter
  optimization*) and minimises the best validation loss. The test split is sealed in
  every tuning trial (:meth:`dpbench.data.TaskData.seal_test`): reading it raises.
* Each tuning trial reports its validation loss after every validation; the pruner
  (``median``: stop a trial whose loss is worse than the median of earlier trials at the
  same step; ``halving``: asynchronous successive halving, Li et al. 2020) stops the
  hopeless ones early.
* Tuning trials run through the run's executor: each wave asks up to ``width`` trials per
  study (``--jobs``), so trials of a study run in parallel.
* A study lives in ``RUN_DIR/tuning/<study>.db`` (Optuna's SQLite storage). ``--resume``
  reopens it: completed, pruned and failed trials are kept; a trial left running by a
  killed session is marked failed (``user_attrs["interrupted"]``) and not counted.
* The final trials, one per seed, run on the chosen values (the best completed trial's
  parameters), recorded as ``Trial.tuned`` and the ``tuned_<key>`` metrics. A study none of
  whose trials completed is recorded as ``diverged`` for every seed, with the values tried.
"""
from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from dpbench.harness.suite import Block, Suite, Trial, TuneConfig, space_for
from dpbench.harness.train import Pruned
from dpbench.params import format_params
from dpbench.results import TrialResult

TUNING_DIR = "tuning"
#: Optuna's logger is chatty (one INFO line per trial); the runner prints its own progress
_QUIET = False


def _optuna():
    global _QUIET
    import optuna

    if not _QUIET:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        _QUIET = True
    return optuna


_STORAGES: dict[str, Any] = {}


def storage(url: str):
    """Optuna's RDB storage on ``url``, one per process (opening one checks the schema,
    ~1 s); SQLite waits up to 120 s for a lock held by a parallel worker."""
    if url not in _STORAGES:
        optuna = _optuna()
        _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    return _STORAGES[url]


def make_pruner(name: str, steps: int, eval_every: int):
    """``median``, ``halving`` or ``none`` for a study whose trials run ``steps`` steps."""
    optuna = _optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max(eval_every, steps // 4))
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(eval_every, steps // 8), reduction_factor=3)
    return optuna.pruners.NopPruner()


def objective_reporter(ref: dict[str, Any]) -> Callable[[int, float], None] | None:
    """The worker side of a tuning trial: report ``(step, val_loss)`` to its Optuna trial and
    raise :class:`~dpbench.harness.train.Pruned` when the pruner says so (None: no pruner)."""
    if ref["pruner"] == "none":
        return None
    optuna = _optuna()
    study = optuna.load_study(study_name=ref["study"], storage=storage(ref["storage"]),
                              pruner=make_pruner(ref["pruner"], ref["steps"], ref["eval_every"]))
    trial = optuna.trial.Trial(study, ref["trial_id"])

    def on_eval(step: int, val: float) -> None:
        trial.report(val, step)
        if trial.should_prune():
            raise Pruned(f"pruned at step {step} (val loss {val:.4g})")
    return on_eval


def study_key(t: Trial) -> tuple:
    return (t.block, t.model, format_params(t.model_params), t.dataset, format_params(t.dataset_params), t.device)


def study_name(t: Trial, settings: tuple = ()) -> str:
    """A readable, file-safe, unique name: ``block-model-dataset-device-<hash>``. The hash
    covers the study's ``settings`` too (search space, tuning steps, pruner, training
    config), so a run resumed under another tuning setup opens a new study instead of
    mixing its trials with the old ones."""
    readable = re.sub(r"[^A-Za-z0-9_.=-]+", "_", f"{t.block}-{t.model}-{t.dataset}-{t.device}")[:80]
    digest = hashlib.sha1(repr((study_key(t), *settings)).encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def suggest(trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw one value per key of ``space`` from the Optuna ``trial``."""
    out: dict[str, Any] = {}
    for key, r in space.items():
        if "choices" in r:
            out[key] = trial.suggest_categorical(key, r["choices"])
        elif isinstance(r["low"], int) and isinstance(r["high"], int):
            out[key] = trial.suggest_int(key, r["low"], r["high"], log=r["log"])
        else:
            out[key] = trial.suggest_float(key, float(r["low"]), float(r["high"]), log=r["log"])
    return out


@dataclass
class Study:
    """One Optuna study and the final trials (one per seed) waiting for its choice."""

    name: str
    url: str
    tune: TuneConfig
    space: dict[str, dict[str, Any]]
    template: Trial
    finals: list[Trial]
    study: Any = None
    asked: dict[int, Any] = field(default_factory=dict)

    def open(self) -> "Study":
        optuna = _optuna()
        cfg = self.template.train
        seed = int(hashlib.sha1(self.name.encode()).hexdigest()[:8], 16)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, self.tune.budget // 3))
        self.study = optuna.create_study(
            study_name=self.name, storage=storage(self.url), load_if_exists=True, direction="minimize",
            sampler=sampler, pruner=make_pruner(self.tune.pruner, cfg.steps, cfg.eval_every))
        for ft in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            # left running by a session that was killed: not part of the budget
            self.study._storage.set_trial_user_attr(ft._trial_id, "interrupted", True)
            self.study.tell(ft.number, state=optuna.trial.TrialState.FAIL)
        return self

    def finished(self) -> list:
        """Trials that count against the budget: completed, pruned, or failed on their own."""
        states = _optuna().trial.TrialState
        return [t for t in self.study.get_trials(deepcopy=False)
                if t.state in (states.COMPLETE, states.PRUNED)
                or (t.state == states.FAIL and not t.user_attrs.get("interrupted"))]

    def remaining(self) -> int:
        return max(0, self.tune.budget - len(self.finished()) - len(self.asked))

    def ask(self) -> Trial:
        """A new Optuna trial as a dpbench tuning :class:`Trial` (test split sealed)."""
        ot = self.study.ask()
        self.asked[ot.number] = ot
        values = suggest(ot, self.space)
        cfg = self.template.train
        ref = {"storage": self.url, "study": self.name, "trial_id": ot._trial_id, "number": ot.number,
               "pruner": self.tune.pruner, "steps": cfg.steps, "eval_every": cfg.eval_every}
        return replace(self.template, tuned=values, tuning=ref)

    def tell(self, trial: Trial, result: TrialResult) -> None:
        states = _optuna().trial.TrialState
        ot = self.asked.pop(trial.tuning["number"])
        for key in ("steps_run", "wall_time_s", "sequences_seen", "converged"):
            if key in result.metrics:
                ot.set_user_attr(key, float(result.metrics[key]))
        ot.set_user_attr("status", result.status)
        if result.status == "ok":
            self.study.tell(ot, result.metrics["best_val_loss"])
        elif result.status == "pruned":
            self.study.tell(ot, state=states.PRUNED)
        else:
            ot.set_user_attr("error", result.error or "")
            self.study.tell(ot, state=states.FAIL)

    def chosen(self) -> dict[str, Any] | None:
        """The best completed trial's values, or None when no trial completed."""
        states = _optuna().trial.TrialState
        done = [t for t in self.study.get_trials(deepcopy=False) if t.state == states.COMPLETE]
        return dict(min(done, key=lambda t: t.value).params) if done else None

    def summary(self) -> dict[str, float]:
        """Tuning effort as metrics of every final trial: trials used, their wall time,
        steps and sequences (the overhead figure: ``tuning_wall_s`` against ``wall_time_s``)."""
        done = self.finished()
        total = lambda k: float(sum(t.user_attrs.get(k, 0.0) for t in done))  # noqa: E731
        return {"tuning_trials": float(len(done)), "tuning_wall_s": total("wall_time_s"),
                "tuning_steps": total("steps_run"), "tuning_sequences": total("sequences_seen")}

    def failure(self) -> tuple[str, str]:
        """Why no trial completed: ``diverged`` when every trial diverged (or was pruned),
        else the first other status (``failed``, ``timeout``, ``oom``), and the first error."""
        done = self.finished()
        statuses = [t.user_attrs.get("status", "failed") for t in done]
        other = [st for st in statuses if st not in ("diverged", "pruned")]
        status = other[0] if other else "diverged"
        error = next((t.user_attrs.get("error") for t in done if t.user_attrs.get("status") == status
                      and t.user_attrs.get("error")), status)
        return status, error

    def tried(self) -> list[str]:
        return [f"{format_params(t.params)} ({t.user_attrs.get('status', t.state.name.lower())})"
                for t in self.finished()]


def plan_studies(trials: list[Trial], suite: Suite, run_dir: Path, registry) -> tuple[list[Trial], list[Study]]:
    """Split ``trials`` into those of untuned blocks (returned as they are) and studies
    (the tuned blocks' trials grouped per study, opened or resumed from ``run_dir``)."""
    blocks: dict[str, Block] = {b.name: b for b in suite.blocks}
    plain: list[Trial] = []
    groups: dict[tuple, list[Trial]] = defaultdict(list)
    for t in trials:
        block = blocks.get(t.block)
        if block is None or not block.tune.enabled or registry.model(t.model).fitted:  # closed-form fits: nothing to tune
            plain.append(t)
            continue
        groups[study_key(t)].append(t)
    studies = []
    folder = Path(run_dir) / TUNING_DIR
    for members in groups.values():
        first = members[0]
        tune = blocks[first.block].tune
        space = space_for(tune.space, registry.model(first.model).defaults, first.model_params)
        if not space:
            plain.extend(members)
            continue
        folder.mkdir(exist_ok=True)
        template = replace(first, seed=tune.seed,
                           train=replace(first.train, steps=tune.steps or first.train.steps))
        name = study_name(first, (sorted(space.items()), tune.pruner, tune.seed, template.train))
        studies.append(Study(name, f"sqlite:///{(folder / f'{name}.db').resolve()}", tune, space,
                             template, members).open())
    return plain, studies


def run_studies(studies: list[Study], executor, registry, timeout: float | None, width: int,
                on_start: Callable[[Trial], None], on_step: Callable[[int, float], None],
                on_done: Callable[[Trial, TrialResult], None]) -> None:
    """Run every study to its budget in waves of up to ``width`` trials per study."""
    by_name = {s.name: s for s in studies}
    while True:
        wave = [s.ask() for s in studies for _ in range(min(max(width, 1), s.remaining()))]
        if not wave:
            return
        for trial, result, _ in executor.run(wave, registry, timeout, on_start, on_step):
            by_name[trial.tuning["study"]].tell(trial, result)
            on_done(trial, result)


def final_trials(studies: Iterable[Study]) -> tuple[list[Trial], list[TrialResult], dict[str, dict[str, float]]]:
    """Per study: the final trials on the chosen values, or (nothing completed) a
    ``diverged`` result per seed naming the values tried; and the tuning metrics to add
    to each final trial's result, by trial id."""
    trials: list[Trial] = []
    failed: list[TrialResult] = []
    extra: dict[str, dict[str, float]] = {}
    for s in studies:
        chosen, summary = s.chosen(), s.summary()
        if chosen is None:
            status, error = s.failure()
            tried = s.tried()
            message = f"tuning: none of {len(tried)} trials completed ({error}); tried " + "; ".join(tried)
            for t in s.finals:
                failed.append(t.result(status, message[:500], metrics=dict(summary),
                                       info={"tried": tried, "study": s.name}))
            continue
        for t in s.finals:
            final = replace(t, tuned=chosen)
            trials.append(final)
            extra[final.trial_id] = summary
    return trials, failed, extra
