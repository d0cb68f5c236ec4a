"""The conformance kit: every built-in plugin passes it, and broken plugins fail it with
one AssertionError that lists each violated check (expected vs found); the CLI maps that
to exit codes 0 / 1 / 2."""
import numpy as np
import pytest
import torch
from torch import nn

from dpbench import hookimpl
from dpbench.cli import main
from dpbench.data import RecallSplits, Split, Trajectory
from dpbench.plugins import load_registry, set_registry
from dpbench.specs import DatasetSpec, ModelSpec
from dpbench.testing import check_dataset_spec, check_model_spec, default_tasks, small_params

from conftest import skip_unless_extra

REGISTRY = load_registry(disable_third_party=True)


@pytest.fixture(scope="module")
def tasks():
    return default_tasks()


@pytest.mark.parametrize("name", sorted(REGISTRY.models))
def test_builtin_model_conforms(name, tasks):
    check_model_spec(REGISTRY.model(name), tasks=tasks)


@pytest.mark.parametrize("name", sorted(REGISTRY.datasets))
def test_builtin_dataset_conforms(name):
    spec = REGISTRY.dataset(name)
    if spec.extra:
        skip_unless_extra(spec.extra)
    check_dataset_spec(spec)


# --------------------------------------------------------------- broken plugins

class Broken(nn.Module):
    """Wrong output length, float64, an unused parameter, random at eval, width ignored."""

    def __init__(self, input_size, output_size, output_steps, hidden=4, **_):
        super().__init__()
        self.used = nn.Linear(input_size, output_size)
        self.unused = nn.Linear(3, 3)
        self.steps = output_steps

    def forward(self, x):
        y = self.used(x[:, -1:]).expand(-1, self.steps + 1, -1)
        return (y + torch.rand_like(y)).double()


class Honest(nn.Module):
    """A correct model whose forward is random at eval: only determinism fails."""

    def __init__(self, input_size, output_size, output_steps, hidden=4, **_):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_size, hidden), nn.Linear(hidden, output_size))
        self.steps = output_steps

    def forward(self, x):
        return self.net(x[:, -1:] + 0.1 * torch.randn_like(x[:, -1:])).expand(-1, self.steps, -1)


def spec(factory, **kw):
    return ModelSpec(name="broken", family="feedforward", description="d", citation="c", factory=factory,
                     defaults={"hidden": 4}, width="hidden", tasks=("forecast",), **kw)


def test_broken_model_lists_every_failure(tasks):
    with pytest.raises(AssertionError) as info:
        check_model_spec(spec(Broken), tasks=tasks)
    text = str(info.value)
    assert "[forecast] output shape: expected (3, 2, 3) for input (3, 8, 3), found (3, 3, 3)" in text
    # the shape failure stops the forward-dependent checks of this task kind
    assert "1 conformance failure" in text


def test_each_model_check_reports_expected_and_found(tasks):
    class Fixed(Broken):
        def forward(self, x):
            return self.used(x[:, -1:]).expand(-1, self.steps, -1).double()

    with pytest.raises(AssertionError) as info:
        check_model_spec(spec(Fixed), tasks=tasks)
    text = str(info.value)
    assert "dtype: expected torch.float32 output for float32 input, found torch.float64" in text
    assert "gradient: expected a gradient on every trainable parameter, found none on ['unused.weight', 'unused.bias']" in text
    assert "width scaling: expected parameter count strictly increasing in hidden at [4, 8, 12], found [24, 24, 24]" in text
    assert "determinism" not in text and "state_dict" not in text
    with pytest.raises(AssertionError) as info:
        check_model_spec(spec(Honest), tasks=tasks)
    text = str(info.value)
    assert "determinism: expected two eval-mode forwards of one model to agree, found different outputs" in text
    assert "2 conformance failure" in text and "state_dict" in text


def traj_gen(params, seed):
    rng = np.random.default_rng()  # ignores the seed: not deterministic
    return Trajectory(values=rng.normal(size=(params["length"], 2)), columns=["a", "a"],
                      metadata={"dt": -1.0, "when": object()})


def leaky_recall(params, seed):
    x = torch.rand(8, 4, 2, generator=torch.Generator().manual_seed(seed))
    y = torch.full((8, 2), 5, dtype=torch.int64)
    same = Split(x, y)
    return RecallSplits(train=same, val=same, test=same, loss="ce", output_size=3)


def test_broken_datasets_list_every_failure():
    forecast = DatasetSpec(name="bad", kind="forecast", description="d", citation="c", generate=traj_gen,
                           defaults={"length": 300}, param_docs={"length": "n"}, metadata={"dt": 1.0})
    with pytest.raises(AssertionError) as info:
        check_dataset_spec(forecast)
    text = str(info.value)
    assert "determinism: expected identical data for seed 0, found different data" in text
    assert "columns: expected unique string names, found ['a', 'a']" in text
    assert "trajectory metadata: expected 'when' JSON-able or a numpy array, found object" in text
    assert "trajectory metadata: expected dt a positive number, found -1.0" in text
    recall = DatasetSpec(name="leaky", kind="recall", description="d", citation="c", generate=leaky_recall)
    with pytest.raises(AssertionError) as info:
        check_dataset_spec(recall)
    text = str(info.value)
    assert "split disjointness: expected at most 50% of the test windows also in train, found 100%" in text
    assert "train y: expected classes in [0, 3), found [5, 5]" in text


def test_small_params_shrink_only_size_parameters():
    copy = REGISTRY.dataset("copy")
    assert small_params(copy) == {"lag": 4, "n_train": 24, "n_val": 12, "n_test": 12}
    assert small_params(REGISTRY.dataset("lorenz")) == {"length": 400, "window": 8, "horizon": 2}


class CliPlugin:
    @hookimpl
    def dpbench_register_models(self, register):
        register(spec(Broken))


def test_check_plugin_cli_exit_codes(capsys):
    set_registry(load_registry(disable_third_party=True, extra_plugins=[("cli-test", CliPlugin())]))
    try:
        assert main(["check-plugin", "rnn:hidden=8"]) == 0
        assert "ok   model 'rnn'" in capsys.readouterr().out
        assert main(["check-plugin", "cli-test"]) == 1  # by plugin name
        out = capsys.readouterr().out
        assert "FAIL model 'broken'" in out and "output shape: expected" in out
        assert main(["check-plugin", "no-such-thing"]) == 2
        assert "is no model, dataset or plugin" in capsys.readouterr().err
        assert main(["check-plugin", "copy:lag=[2,3]"]) == 2
    finally:
        set_registry(None)
