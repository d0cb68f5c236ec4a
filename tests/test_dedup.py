"""Identical trials run once and are reported in every block that lists them (issue 21)."""
from __future__ import annotations

from dpbench.harness.executors import LocalExecutor
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import Block, EvalConfig, Suite, TrainConfig, expand_trials, identical_groups, run_key

TRAIN = TrainConfig(steps=4, batch_size=8, eval_every=2, param_budget=600, timing_chunk=2)
EVAL = EvalConfig(rollout_steps=5, rollout_starts=1, timing_repeats=1)
LORENZ = "lorenz:length=400,window=8"


class CountingExecutor(LocalExecutor):
    def __init__(self):
        self.ran: list[str] = []

    def run(self, trials, registry, timeout, on_start, on_step):
        for outcome in super().run(trials, registry, timeout, on_start, on_step):
            self.ran.append(outcome[0].label)
            yield outcome


def suite(*blocks: Block) -> Suite:
    return Suite("dedup", "test", (0,), ("cpu",), blocks)


def block(name: str, models: tuple[str, ...], datasets: tuple[str, ...], train: TrainConfig = TRAIN) -> Block:
    return Block(name, models, datasets, train, EVAL)


def test_run_key_ignores_block_and_default_values_but_not_an_explicit_width(registry):
    s = suite(block("flows", ("lstm", "rnn:layers=1"), (LORENZ,)),
              block("drift", ("lstm", "rnn", "lstm:hidden=64"), (LORENZ + ",drift=0.0", LORENZ + ",drift=10")))
    trials, _ = expand_trials(s, registry, cuda_available=False)
    groups = {tuple(sorted((t.block, t.model, str(t.model_params), str(t.dataset_params)) for t in g))
              for g in identical_groups(trials, registry)}
    assert len(trials) == 8 and len(groups) == 6  # lstm and rnn pair up across blocks
    lstm = next(g for g in groups if len(g) == 2 and g[0][1] == "lstm")
    assert [m[0] for m in lstm] == ["drift", "flows"]
    # hidden=64 is lstm's default width, but naming it turns the budget sizing off: not identical
    explicit = [t for t in trials if t.model_params.get("hidden") == 64]
    plain = [t for t in trials if t.model == "lstm" and not t.model_params and t.block == "drift"]
    assert run_key(explicit[0], registry) != run_key(plain[0], registry)


def test_identical_trials_run_once_and_appear_in_every_block(registry, tmp_path):
    s = suite(block("flows", ("lstm", "fnn"), (LORENZ,)),
              block("drift", ("lstm",), (LORENZ + ",drift=0.0", LORENZ + ",drift=10")),
              block("again", ("fnn",), (LORENZ,)),  # same trial id as flows' fnn, another block
              block("longer", ("fnn",), (LORENZ,), train=TrainConfig(steps=6, batch_size=8, eval_every=2,
                                                                    param_budget=600, timing_chunk=2)))
    executor = CountingExecutor()
    _, writer, _ = run_suite(s, registry, out=str(tmp_path / "run"), quiet=True, executor=executor)
    assert len(executor.ran) == 4  # lstm, fnn, lstm drift=10, fnn with 6 steps
    by_block = {(t.block, t.model, t.dataset_params.get("drift")): t for t in writer.trials}
    assert len(writer.trials) == 6 and set(by_block) == {
        ("flows", "lstm", None), ("flows", "fnn", None), ("drift", "lstm", 0.0), ("drift", "lstm", 10.0),
        ("again", "fnn", None), ("longer", "fnn", None)}
    lstm, copy = by_block[("flows", "lstm", None)], by_block[("drift", "lstm", 0.0)]
    assert copy.metrics == lstm.metrics and copy.trial_id != lstm.trial_id
    assert copy.info["same_as"] == f"{lstm.trial_id} [flows]" and copy.info["block"] == "drift"
    fnn, again = by_block[("flows", "fnn", None)], by_block[("again", "fnn", None)]
    assert again.trial_id == fnn.trial_id and again.metrics == fnn.metrics
    assert by_block[("longer", "fnn", None)].metrics != fnn.metrics  # another budget: ran itself


def test_resume_reports_a_finished_copy_without_running_it(registry, tmp_path):
    s = suite(block("flows", ("fnn",), (LORENZ,)), block("again", ("fnn",), (LORENZ + ",drift=0.0",)))
    run_dir = tmp_path / "run"
    _, writer, _ = run_suite(s, registry, out=str(run_dir), quiet=True)
    lines = (run_dir / "trials.jsonl").read_text().splitlines()
    (run_dir / "trials.jsonl").write_text(lines[0] + "\n")  # as if interrupted after the first
    executor = CountingExecutor()
    _, writer, _ = run_suite(s, registry, resume=str(run_dir), quiet=True, executor=executor)
    assert executor.ran == [] and sorted(t.block for t in writer.trials) == ["again", "flows"]
