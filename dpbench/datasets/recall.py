"""Long-dependency recall tasks.

Copy memory (Arjovsky, Shah & Bengio 2016, ICML, §4.1; after Hochreiter & Schmidhuber
1997): the input is ``symbols`` random symbols from an alphabet of ``alphabet`` (classes
1..alphabet), then ``lag − 1`` blanks (0), a delimiter (alphabet+1), and ``symbols``
blanks: ``T = lag + 2·symbols`` steps, one-hot coded. The target is blank everywhere but
the last ``symbols`` steps, which must reproduce the first symbols. Outputs are aligned
with every input step; accuracy is scored on the recalled symbols only. The memoryless
baseline (blanks right, uniform guess on the recall steps) has cross-entropy
symbols·ln(alphabet)/T, i.e. 10 ln 8/(lag + 20) for the standard task.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from dpbench.data import RecallSplits, Split
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec

SPLIT_SIZES = ("n_train", "n_val", "n_test")


def split_rngs(seed: int) -> list[np.random.Generator]:
    """Independent generators for train, val and test from one seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def copy_split(n: int, lag: int, symbols: int, alphabet: int, rng: np.random.Generator) -> Split:
    """``n`` copy-task windows: x ``[n, T, alphabet+2]`` one-hot, y ``[n, T]`` classes."""
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
    lag, symbols, alphabet = int(params["lag"]), int(params["symbols"]), int(params["alphabet"])
    if lag < 1 or symbols < 1 or alphabet < 2:
        raise ValueError(f"copy: need lag>=1, symbols>=1, alphabet>=2; got {lag}, {symbols}, {alphabet}")
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


SPLIT_DOCS = {"n_train": "training sequences", "n_val": "validation sequences",
              "n_test": "test sequences"}


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
