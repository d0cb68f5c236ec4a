"""Long-dependency recall tasks: copy, adding, delayed recall of a chaotic stream.

Copy memory (Arjovsky, Shah & Bengio 2016, ICML, §4.1; after Hochreiter & Schmidhuber
1997): the input is ``symbols`` random symbols from an alphabet of ``alphabet`` (classes
1..alphabet), then ``lag − 1`` blanks (0), a delimiter (alphabet+1), and ``symbols``
blanks: ``T = lag + 2·symbols`` steps, one-hot coded. The target is blank everywhere but
the last ``symbols`` steps, which must reproduce the first symbols. Outputs are aligned
with every input step; accuracy is scored on the recalled symbols only. The memoryless
baseline (blanks right, uniform guess on the recall steps) has cross-entropy
symbols·ln(alphabet)/T, i.e. 10 ln 8/(lag + 20) for the standard task.

Adding problem (Hochreiter & Schmidhuber 1997, experiment 4; the form of Arjovsky et al.
2016, §4.2): ``T = lag`` steps of two channels, values v_t ~ U[0, 1] and a marker that is 1
at exactly two steps, one uniformly in the first half and one in the second half. The
single output at the last step is the sum of the two marked values (loss MSE). Always
answering 1 scores Var(v_a + v_b) = 1/6 (the baseline).

Delayed recall (this benchmark; the long dependency sits inside a dynamical system): the
input is a logistic-map orbit x_{t+1} = 4 x_t (1 − x_t) (May 1976) of ``lag + out_steps``
steps from a random start; the outputs at the last ``out_steps`` steps are x_{t−lag},
i.e. the first ``out_steps`` states. The map is two-to-one, so x_{t−lag} cannot be
recomputed from later states without remembering one bit per step: the model must store
it. Predicting the mean scores the invariant variance 1/8 (arcsine density; baseline).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dpbench.data import RecallSplits, Split
from dpbench.datasets._common import SPLIT_DOCS, SPLIT_SIZES, positive_ints, split_rngs
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec

__all__ = ["split_rngs", "copy_split", "adding_split", "delayed_recall_split"]


def copy_split(n: int, lag: int, symbols: int, alphabet: int, rng: np.random.Generator) -> Split:
    """``n`` copy-task windows: x ``[n, T, alphabet+2]`` one-hot, y ``[n, T]`` classes."""
    import torch

    steps = lag + 2 * symbols
    seq = rng.integers(1, alphabet + 1, size=(n, symbols))
    tokens = np.zeros((n, steps), dtype=np.int64)
    tokens[:, :symbols] = seq
    tokens[:, lag + symbols - 1] = alphabet + 1
    target = np.zeros((n, steps), dtype=np.int64)
    target[:, -symbols:] = seq
    x = torch.nn.functional.one_hot(torch.from_numpy(tokens), alphabet + 2).float()
    mask = torch.zeros(n, steps, dtype=torch.bool)
    mask[:, -symbols:] = True
    return Split(x=x, y=torch.from_numpy(target), mask=mask)


def generate_copy(params: dict[str, Any], seed: int) -> RecallSplits:
    lag, symbols = positive_ints("copy", params, "lag", "symbols")
    (alphabet,) = positive_ints("copy", params, "alphabet", minimum=2)
    splits = [
        copy_split(int(params[k]), lag, symbols, alphabet, rng)
        for k, rng in zip(SPLIT_SIZES, split_rngs(seed))
    ]
    steps = lag + 2 * symbols
    return RecallSplits(
        *splits, loss="ce", output_size=alphabet + 1,
        baseline=symbols * math.log(alphabet) / steps,
        metadata={"lag": lag, "symbols": symbols, "alphabet": alphabet, "steps": steps,
                  "chance_accuracy": 1.0 / alphabet},
    )


def adding_split(n: int, steps: int, rng: np.random.Generator) -> Split:
    """``n`` adding-problem sequences: x ``[n, T, 2]`` (value, marker), y ``[n, 1, 1]``."""
    import torch

    values = rng.random((n, steps))
    half = steps // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, steps, size=n)
    markers = np.zeros((n, steps))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    x = torch.from_numpy(np.stack([values, markers], axis=-1)).float()
    return Split(x=x, y=torch.from_numpy(target).float().view(n, 1, 1))


def generate_adding(params: dict[str, Any], seed: int) -> RecallSplits:
    (steps,) = positive_ints("adding", params, "lag", minimum=2)
    sizes = positive_ints("adding", params, *SPLIT_SIZES)
    splits = [adding_split(n, steps, rng) for n, rng in zip(sizes, split_rngs(seed))]
    return RecallSplits(*splits, loss="mse", output_size=1, baseline=1.0 / 6.0,
                        metadata={"lag": steps, "steps": steps, "baseline_rule": "always answer 1"})


def logistic_orbits(n: int, steps: int, rng: np.random.Generator, warmup: int = 20) -> np.ndarray:
    """``[n, steps]`` orbits of x' = 4x(1−x) from random starts (after ``warmup`` steps)."""
    x = rng.uniform(0.0, 1.0, size=n)
    out = np.empty((n, steps))
    for t in range(warmup + steps):
        if t >= warmup:
            out[:, t - warmup] = x
        x = 4.0 * x * (1.0 - x)
    return out


def delayed_recall_split(n: int, lag: int, out_steps: int, rng: np.random.Generator) -> Split:
    """x ``[n, lag+out_steps, 1]`` orbit; y ``[n, out_steps, 1]`` = x at the first steps."""
    import torch

    orbits = logistic_orbits(n, lag + out_steps, rng)
    x = torch.from_numpy(orbits).float().unsqueeze(-1)
    return Split(x=x, y=x[:, :out_steps].clone())


def generate_delayed_recall(params: dict[str, Any], seed: int) -> RecallSplits:
    lag, out_steps = positive_ints("delayed-recall", params, "lag", "out_steps")
    sizes = positive_ints("delayed-recall", params, *SPLIT_SIZES)
    splits = [delayed_recall_split(n, lag, out_steps, rng)
              for n, rng in zip(sizes, split_rngs(seed))]
    return RecallSplits(*splits, loss="mse", output_size=1, baseline=0.125,
                        metadata={"lag": lag, "out_steps": out_steps, "steps": lag + out_steps,
                                  "source": "logistic map r=4", "baseline_rule": "predict the mean 1/2"})


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name="copy", kind="recall",
        description="copy memory: recall 10 symbols after a blank delay of `lag` steps",
        citation="Arjovsky, Shah & Bengio 2016, Unitary evolution RNNs, section 4.1",
        generate=generate_copy,
        defaults={"lag": 50, "symbols": 10, "alphabet": 8,
                  "n_train": 2000, "n_val": 200, "n_test": 500},
        param_docs={"lag": "blank delay between the symbols and the delimiter (T in the paper)",
                    "symbols": "number of symbols to recall", "alphabet": "alphabet size",
                    **SPLIT_DOCS},
        metadata={"task": "copy", "metric": "accuracy on the recalled symbols"},
    ))
    register(DatasetSpec(
        name="adding", kind="recall",
        description="adding problem: sum the two marked values of a length-`lag` stream (MSE)",
        citation="Hochreiter & Schmidhuber 1997, experiment 4; Arjovsky, Shah & Bengio 2016, section 4.2",
        generate=generate_adding,
        defaults={"lag": 100, "n_train": 2000, "n_val": 200, "n_test": 500},
        param_docs={"lag": "sequence length T (markers in each half)", **SPLIT_DOCS},
        metadata={"task": "adding", "metric": "mse (baseline 1/6)"},
    ))
    register(DatasetSpec(
        name="delayed-recall", kind="recall",
        description="output the logistic-map state `lag` steps back (memory inside chaos, MSE)",
        citation="logistic map of May 1976, Nature 261:459; task defined in dpbench docs/datasets.md",
        generate=generate_delayed_recall,
        defaults={"lag": 20, "out_steps": 10, "n_train": 2000, "n_val": 200, "n_test": 500},
        param_docs={"lag": "delay between a state and its recall", "out_steps": "recalled steps",
                    **SPLIT_DOCS},
        metadata={"task": "delayed-recall", "metric": "mse (baseline 1/8)"},
    ))
