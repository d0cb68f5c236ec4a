"""The training loop: schedule, early stopping, learning curve, the converged rule."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dpbench.data import Split, TaskData
from dpbench.harness.suite import TrainConfig
from dpbench.harness.train import CE_LOSS_FLOOR, Schedule, converged, train


def _task(val_noise: bool, n: int = 64, seed: int = 0) -> TaskData:
    """``y = 2x`` to learn on train; val targets either the same rule or pure noise (a
    validation loss that cannot improve beyond predicting its mean)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 1, generator=g)
    train_split = Split(x, 2 * x)
    xv = torch.randn(n, 1, 1, generator=g)
    val_split = Split(xv, torch.randn(n, 1, 1, generator=g) if val_noise else 2 * xv)
    return TaskData(name="synthetic", params={}, kind="forecast", loss="mse", train=train_split,
                    val=val_split, test=val_split, input_size=1, output_size=1, output_steps=1, metadata={})


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 1)

    def forward(self, x):  # [B, 1, 1] -> [B, 1, 1]
        return self.lin(x)


# ---- the converged rule on synthetic curves -------------------------------------------

def test_a_flat_tail_is_converged():
    steps = list(range(100, 1100, 100))
    val = [1.0 / s for s in steps[:5]] + [1.0 / 500] * 5  # falls, then flat for the last half
    assert converged(steps, val)


def test_a_curve_still_falling_at_the_cap_is_not_converged():
    steps = list(range(100, 1100, 100))
    val = [math.exp(-s / 300) for s in steps]  # falls by ~50 % over the last 20 %
    assert not converged(steps, val)


def test_an_improvement_just_under_or_over_the_tolerance():
    steps = [100, 200, 300, 400, 500]
    assert converged(steps, [1.0, 0.5, 0.5, 0.5, 0.4960])   # 0.8 % better over the last 20 %
    assert not converged(steps, [1.0, 0.5, 0.5, 0.5, 0.4900])  # 2 % better


def test_early_stopping_counts_as_converged_and_too_short_curves_do_not():
    assert converged([100], [1.0], stopped_early=True)
    assert not converged([100], [1.0])
    assert not converged([], [])


def test_a_late_rise_after_the_best_is_converged():
    """The best-validation checkpoint is kept, so a late rise is no reason to train longer."""
    assert converged([100, 200, 300, 400, 500], [1.0, 0.3, 0.3, 0.35, 0.4])


def test_a_loss_vanishing_below_the_floor_is_converged():
    """A solved recall task: cross-entropy halves every validation, far below 10⁻³ nats."""
    steps = list(range(100, 1100, 100))
    val = [1e-2 * 0.5 ** i for i in range(10)]
    assert not converged(steps, val)  # relative to itself it always improves
    assert converged(steps, val, floor=CE_LOSS_FLOOR)
    # above the floor the rule is unchanged
    assert not converged(steps, [math.exp(-s / 300) for s in steps], floor=CE_LOSS_FLOOR)


class _Confidence(nn.Module):
    """Right answers from the start, with one learnable confidence ``s``: logits s·[−x, x].
    On inputs away from 0 the cross-entropy ≈ exp(−2s|x|) keeps shrinking geometrically as
    Adam grows ``s``, so without a floor every validation is a > 1 % improvement."""

    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.tensor(0.1))

    def forward(self, x):  # [B, 1, 1] -> [B, 1, 2]
        return self.s * torch.cat([-x, x], dim=-1)


@pytest.mark.parametrize("floor", [CE_LOSS_FLOOR, 0.0])
def test_early_stopping_stops_a_solved_classification_task_only_with_the_floor(monkeypatch, floor):
    import dpbench.harness.train as train_module

    monkeypatch.setattr(train_module, "CE_LOSS_FLOOR", floor)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1, 1, generator=g)
    x = torch.sign(x) * (1 + x.abs())  # |x| >= 1
    split = Split(x, (x[..., 0] > 0).long())  # [B, 1] class labels
    task = TaskData(name="sign", params={}, kind="recall", loss="ce", train=split, val=split, test=split,
                    input_size=1, output_size=2, output_steps=1, metadata={})
    cfg = TrainConfig(steps=1500, eval_every=50, patience=5, min_delta=0.01, lr=0.05, batch_size=64, clip=0)
    result = train(_Confidence(), task, cfg, seed=0, device="cpu")
    if floor:
        assert result.best_val_loss < CE_LOSS_FLOOR
        assert result.stopped_early and result.converged and result.steps < 1000
    else:  # the same solved task runs to the cap and is called unconverged
        assert result.steps == 1500 and not result.stopped_early and not result.converged


# ---- early stopping --------------------------------------------------------------------

def test_early_stopping_stops_a_model_whose_val_loss_stalls():
    torch.manual_seed(0)
    cfg = TrainConfig(steps=2000, eval_every=10, patience=3, min_delta=0.01, lr=1e-2, batch_size=16)
    result = train(_Linear(), _task(val_noise=True), cfg, seed=0, device="cpu")
    assert result.stopped_early and result.converged
    assert result.steps < 500  # nowhere near the 2000-step cap
    assert len(result.curve_step) == len(result.curve_val_loss) == len(result.curve_train_loss)
    assert result.curve_step[-1] == result.steps and result.sequences_seen == result.steps * 16


def test_without_patience_the_cap_is_run():
    torch.manual_seed(0)
    cfg = TrainConfig(steps=120, eval_every=10, patience=0, lr=1e-2, batch_size=16)
    result = train(_Linear(), _task(val_noise=True), cfg, seed=0, device="cpu")
    assert result.steps == 120 and not result.stopped_early


def test_a_model_that_keeps_improving_is_not_stopped():
    torch.manual_seed(0)
    cfg = TrainConfig(steps=200, eval_every=10, patience=3, min_delta=0.0, lr=3e-3, batch_size=16, clip=0)
    result = train(_Linear(), _task(val_noise=False), cfg, seed=0, device="cpu")
    assert result.steps == 200 and not result.stopped_early
    assert result.curve_val_loss[-1] < result.curve_val_loss[0]
    assert not result.converged  # still falling at the cap at this small lr


# ---- schedules ---------------------------------------------------------------------------

def _lrs(cfg: TrainConfig) -> list[float]:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=cfg.lr)
    sched = Schedule(cfg, opt)
    out = []
    for _ in range(cfg.steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_with_warm_up_ramps_then_decays_to_zero():
    lrs = _lrs(TrainConfig(steps=100, lr=0.1, schedule="cosine", warmup=0.1))
    assert lrs[0] < 0.02 and max(lrs) == pytest.approx(0.1, rel=0.05)
    assert lrs.index(max(lrs)) <= 11
    assert lrs[-1] < 0.001 and all(a >= b for a, b in zip(lrs[11:], lrs[12:]))


def test_constant_schedule_keeps_the_lr():
    assert set(_lrs(TrainConfig(steps=20, lr=0.05))) == {0.05}


def test_plateau_halves_the_lr_when_val_loss_stalls():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = Schedule(TrainConfig(steps=100, lr=0.1, schedule="plateau", patience=2), opt)
    for v in [1.0, 0.5, 0.5, 0.5, 0.5]:
        sched.validated(v)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


# ---- the report marks unconverged trials -------------------------------------------------

def test_every_table_marks_a_model_with_an_unconverged_seed():
    from dpbench.report import tables as T
    from dpbench.results import TrialResult

    def trial(model, seed, conv):
        return TrialResult(f"{model}{seed}", model, {}, "henon", {}, seed, "cpu", metrics={
            "nrmse_1step": 0.1, "converged": conv, "steps_run": 100.0, "sequences_seen": 3200.0,
            "wall_time_s": 1.0, "train_seq_per_s": 10.0, "infer_seq_per_s": 100.0})

    trials = [trial("lstm", 0, 1.0), trial("lstm", 1, 0.0), trial("gru", 0, 1.0), trial("gru", 1, 1.0)]
    headers, rows = T.accuracy_table(trials, ["nrmse_1step"])
    models = {r[1] for r in rows}
    assert models == {"lstm †", "gru"} and "steps" in headers and "sequences seen" in headers
    _, cost_rows = T.cost_table(trials)
    assert {r[0] for r in cost_rows} == {"lstm †", "gru"}
