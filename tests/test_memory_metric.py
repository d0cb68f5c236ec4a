"""``peak_memory_mb`` on CPU: the profiled peak of one training step (issue 21).

It must tell models apart by what their step allocates, and not move with the process's
own memory (earlier allocations, the libraries, the RSS high-water mark).
"""
from __future__ import annotations

import torch

from dpbench.data import prepare
from dpbench.harness.suite import TrainConfig
from dpbench.harness.timing import allocation_peak_bytes, training_step_memory_mb

CFG = TrainConfig(batch_size=8)


def lorenz_task(registry):
    return prepare(registry.dataset("lorenz"), {**_defaults(registry), "length": 600, "window": 16}, 0)


def _defaults(registry):
    from dpbench.data import dataset_defaults

    return dataset_defaults(registry.dataset("lorenz"))


def build(registry, name, task, **hparams):
    return registry.model(name).build(task.input_size, task.train.x.shape[1], task.output_size,
                                      task.output_steps, task.kind, **hparams)


def test_allocation_peak_counts_what_the_block_allocates():
    n = 1 << 20  # float32: 4 MiB each

    def two_at_once():
        a = torch.ones(n)
        b = torch.ones(n)
        del a, b

    def one_after_the_other():
        for _ in range(2):
            a = torch.ones(n)
            del a

    both, single = allocation_peak_bytes(two_at_once), allocation_peak_bytes(one_after_the_other)
    assert 2 * 4 * n <= both < 2.5 * 4 * n
    assert 4 * n <= single < 1.5 * 4 * n


def test_dnc_with_256_slots_needs_several_times_a_small_fnn(registry):
    task = lorenz_task(registry)
    fnn = build(registry, "fnn", task, hidden=48)
    params = sum(p.numel() for p in fnn.parameters())
    assert 3000 <= params <= 7000
    dnc = build(registry, "dnc", task, memory_slots=256)
    fnn_mb = training_step_memory_mb(fnn, task, CFG)
    dnc_mb = training_step_memory_mb(dnc, task, CFG)
    assert fnn_mb > params * 4 / 2**20  # at least its own parameters
    assert dnc_mb > 4 * fnn_mb, (dnc_mb, fnn_mb)


def test_the_figure_ignores_memory_held_by_the_process(registry):
    task = lorenz_task(registry)
    model = build(registry, "lstm", task, hidden=32)
    before = training_step_memory_mb(model, task, CFG)
    ballast = torch.ones(64 << 20)  # 256 MiB held by "an earlier trial"
    after = training_step_memory_mb(model, task, CFG)
    del ballast
    assert abs(after - before) <= 0.05 * before, (before, after)


def test_the_probe_leaves_the_model_and_random_state_alone(registry):
    task = lorenz_task(registry)
    model = build(registry, "lstm", task, hidden=16)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    training_step_memory_mb(model, task, CFG)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    assert all(p.grad is None for p in model.parameters())
