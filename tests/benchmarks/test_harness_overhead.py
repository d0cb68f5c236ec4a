"""Harness overhead: the LSTM training throughput the harness reports
(``dpbench.harness.trial.execute`` → ``metrics["train_seq_per_s"]``) against a bare
training loop over the same ``nn.LSTM`` + linear head at the same shapes (batch 32,
window 16, Lorenz, the same hidden size, Adam, gradient clipping at 1.0 as the harness).

Both run in the same process and are *interleaved chunk by chunk*: the harness calls
``on_progress`` after each timed chunk of ``CHUNK`` steps, and there the bare loop runs
and times one chunk of its own. Background load therefore hits both alike, and each
harness chunk is paired with the bare chunk right after it (the first pair is warm-up,
as in the harness). Stored in ``extra_info`` and printed: ``ratio`` = reported metric /
median bare chunk, ``paired_ratio`` = median over pairs of harness/bare, and its 95 %
bootstrap interval ``paired_ci``. The claim checked is "no evidence that the harness
differs by more than 5 %": the test fails when the whole interval lies outside
[0.95, 1.05]. On a quiet machine the interval is narrow; on a contended one it widens
(two busy cores at load 8 gave a median ratio 0.91 and a paired ratio 1.08), so a failure
needs consistent evidence, not one noisy median.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from torch import nn

ROUNDS = 3
STEPS = 110
BATCH = 32
CHUNK = 10


def _trial():
    from dpbench.harness.suite import EvalConfig, TrainConfig, Trial

    train = TrainConfig(steps=STEPS, batch_size=BATCH, eval_every=STEPS, param_budget=5000, timing_chunk=CHUNK)
    evals = EvalConfig(rollout_steps=10, rollout_starts=1, timing_repeats=1)
    return Trial("lstm", {}, "lorenz", {"length": 1000, "window": 16}, 0, "cpu", train, evals)


class BareLoop:
    """A plain training loop: same model shapes, loss, optimiser and clipping."""

    def __init__(self, task, hidden: int):
        torch.manual_seed(0)
        self.lstm = nn.LSTM(task.input_size, hidden, batch_first=True)
        self.head = nn.Linear(hidden, task.output_size)
        self.params = [*self.lstm.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=3e-3)
        self.x, self.y = task.train.x[:BATCH], task.train.y[:BATCH]

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        h, _ = self.lstm(self.x)
        loss = nn.functional.mse_loss(self.head(h[:, -1:]), self.y)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()

    def chunk(self) -> float:
        """Sequences/s of ``CHUNK`` steps."""
        t0 = time.perf_counter()
        for _ in range(CHUNK):
            self.step()
        return CHUNK * BATCH / (time.perf_counter() - t0)


def test_harness_training_throughput_matches_a_bare_loop(benchmark, registry):
    from dpbench.data import prepare
    from dpbench.harness.budget import build_at_budget
    from dpbench.harness.trial import execute

    trial = _trial()
    task = prepare(registry.dataset("lorenz"), trial.dataset_params, 0)
    hidden = build_at_budget(registry.model("lstm"), task, {}, 5000, 0.1).hparams["hidden"]
    reported, pairs, bare_all = [], [], []

    def one_round() -> None:
        bare, chunks = BareLoop(task, hidden), []
        result = execute(trial, registry, on_progress=lambda step, loss, best: chunks.append(bare.chunk()))
        harness = result.samples["train_seq_per_s"]  # first (warm-up) chunk already dropped
        reported.append(result.metrics["train_seq_per_s"])
        bare_all.extend(chunks[1:])
        pairs.extend(h / b for h, b in zip(harness, chunks[1:]))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ratio = statistics.median(reported) / statistics.median(bare_all)
    paired = statistics.median(pairs)
    lo, hi = bootstrap_median_ci(pairs)
    benchmark.extra_info.update(harness_seq_per_s=statistics.median(reported), bare_seq_per_s=statistics.median(bare_all),
                                ratio=ratio, paired_ratio=paired, paired_ci=[lo, hi])
    print(f"\nharness {statistics.median(reported):.0f} seq/s, bare loop {statistics.median(bare_all):.0f} seq/s; "
          f"ratio {ratio:.3f}, paired ratio {paired:.3f} (95 % CI {lo:.3f}..{hi:.3f}) over {len(pairs)} chunk pairs")
    assert hi >= 0.95 and lo <= 1.05, f"harness/bare throughput ratio {lo:.3f}..{hi:.3f} lies outside 0.95..1.05"


def bootstrap_median_ci(values: list[float], level: float = 0.95, draws: int = 4000) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (fixed seed: deterministic)."""
    rng = np.random.default_rng(0)
    arr = np.asarray(values, dtype=float)
    medians = np.median(rng.choice(arr, size=(draws, len(arr)), replace=True), axis=1)
    return float(np.quantile(medians, (1 - level) / 2)), float(np.quantile(medians, (1 + level) / 2))
