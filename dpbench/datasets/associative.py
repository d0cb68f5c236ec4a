"""Associative recall (Graves, Wayne & Danihelka 2014, Neural Turing Machines, §4.3).

A sequence of k items, each ``vectors`` = 3 random binary vectors of ``bits`` = 6 bits, each
item preceded by an item delimiter; then a query delimiter, one of the first k − 1 items
(the query), and a second query delimiter; the answer is the item that *followed* the
query in the list. Channels: ``bits`` data bits, item delimiter, query delimiter
(``bits + 2`` inputs). Items in a sequence are distinct (drawn without replacement).

Fixed window: every sequence is left-padded with blank steps to
``T = (vectors + 1)·K + 2·vectors + 2``, K = max(max_items, test_items), and ends with
``vectors`` blank answer steps; the outputs are aligned with those last ``vectors`` steps.
Each answer vector is one class of ``2**bits`` (its bits read as a binary number), so the
loss is cross-entropy, ``y [n, vectors]``; uniform guessing scores ln 2**bits (baseline),
chance accuracy 2**-bits. Training and validation draw k uniformly from
[min_items, max_items] (2–6 as in the paper); ``test_items > 0`` tests on exactly that many
items (the paper's generalisation test, up to 12+), otherwise the test split uses the
training range.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dpbench.data import RecallSplits, Split
from dpbench.datasets._common import SPLIT_DOCS, SPLIT_SIZES, need, positive_ints, split_rngs
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec


def window_length(max_items: int, vectors: int) -> int:
    """Steps of the longest sequence: items, query block and answer."""
    return (vectors + 1) * max_items + 2 * vectors + 2


def recall_split(n: int, counts: np.ndarray, steps: int, bits: int, vectors: int,
                 rng: np.random.Generator) -> Split:
    """``n`` sequences with ``counts[i]`` items: x ``[n, steps, bits+2]``, y ``[n, vectors]``."""
    import torch

    x = np.zeros((n, steps, bits + 2), dtype=np.float32)
    y = np.zeros((n, vectors), dtype=np.int64)
    weights = 1 << np.arange(bits)
    n_codes = 2 ** bits
    for i, k in enumerate(counts):
        codes = rng.choice(n_codes ** vectors, size=k, replace=False)
        digits = (codes[:, None] // n_codes ** np.arange(vectors)[None, :]) % n_codes  # [k, vectors]
        item_bits = (digits[..., None] // weights) % 2  # [k, vectors, bits]
        t = steps - window_length(k, vectors)  # left padding
        for j in range(k):
            x[i, t, bits] = 1.0
            x[i, t + 1:t + 1 + vectors, :bits] = item_bits[j]
            t += vectors + 1
        q = int(rng.integers(0, k - 1))
        x[i, t, bits + 1] = 1.0
        x[i, t + 1:t + 1 + vectors, :bits] = item_bits[q]
        x[i, t + 1 + vectors, bits + 1] = 1.0
        y[i] = digits[q + 1]
    return Split(x=torch.from_numpy(x), y=torch.from_numpy(y))


def generate_associative_recall(params: dict[str, Any], seed: int) -> RecallSplits:
    name = "associative-recall"
    bits, vectors = positive_ints(name, params, "bits", "vectors")
    lo, hi = positive_ints(name, params, "min_items", "max_items", minimum=2)
    (test_items,) = positive_ints(name, params, "test_items", minimum=0)
    need(name, lo <= hi, f"min_items={lo} must be <= max_items={hi}")
    need(name, test_items == 0 or test_items >= 2, "test_items must be 0 or >= 2")
    need(name, bits <= 16, f"bits={bits} must be <= 16 (one class per vector)")
    steps = window_length(max(hi, test_items), vectors)
    sizes = positive_ints(name, params, *SPLIT_SIZES)
    splits = []
    for split, n, rng in zip(("train", "val", "test"), sizes, split_rngs(seed)):
        if split == "test" and test_items:
            counts = np.full(n, test_items)
        else:
            counts = rng.integers(lo, hi + 1, size=n)
        splits.append(recall_split(n, counts, steps, bits, vectors, rng))
    return RecallSplits(
        *splits, loss="ce", output_size=2 ** bits, baseline=bits * math.log(2.0),
        metadata={"bits": bits, "vectors": vectors, "min_items": lo, "max_items": hi,
                  "test_items": test_items, "steps": steps, "chance_accuracy": 2.0 ** -bits},
    )


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name="associative-recall", kind="recall",
        description="NTM associative recall: given an item, return the next one (3x6-bit items)",
        citation="Graves, Wayne & Danihelka 2014, Neural Turing Machines, section 4.3",
        generate=generate_associative_recall,
        defaults={"bits": 6, "vectors": 3, "min_items": 2, "max_items": 6, "test_items": 0,
                  "n_train": 2000, "n_val": 200, "n_test": 500},
        param_docs={"bits": "bits per vector", "vectors": "vectors per item",
                    "min_items": "fewest items in a training sequence",
                    "max_items": "most items in a training sequence",
                    "test_items": "items in every test sequence (0: the training range)",
                    **SPLIT_DOCS},
        metadata={"task": "associative-recall", "metric": "accuracy per answer vector"},
    ))
