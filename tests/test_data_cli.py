"""``dpbench data describe|export|plot`` through :func:`dpbench.cli.main`."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from dpbench.cli import main
from dpbench.data import generate_raw, split_bounds
from dpbench.plugins import get_registry


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_describe_lists_parameters_docs_and_metadata(capsys):
    assert main(["data", "describe", "narma10"]) == 0
    out = capsys.readouterr().out
    for text in ("Atiya & Parlos 2000", "max_redraws", "redrawn", "window", "0.05", "exogenous_input"):
        assert text in out


def test_describe_unknown_name_exits_2(capsys):
    assert main(["data", "describe", "no-such-data"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'no-such-data'" in err and "lorenz" in err and err.count("\n") == 1


def test_export_forecast_split_matches_generated_series(tmp_path, capsys):
    out = tmp_path / "sw.csv"
    assert main(["data", "export", "switching-delay:length=300", "--split", "test",
                 "--out", str(out), "--seed", "2"]) == 0
    table = rows(out)
    assert table[0] == ["split", "t", "x", "regimes"]
    spec = get_registry().dataset("switching-delay")
    traj = generate_raw(spec, {**spec.defaults, "length": 300}, 2, use_cache=False)
    lo, hi = split_bounds(300)[2]
    assert [int(r[1]) for r in table[1:]] == list(range(lo, hi))
    assert {r[0] for r in table[1:]} == {"test"}
    np.testing.assert_array_equal([float(r[2]) for r in table[1:]], traj.values[lo:hi, 0])
    np.testing.assert_array_equal([int(r[3]) for r in table[1:]], traj.metadata["regimes"][lo:hi])


def test_export_all_splits_with_exogenous_column(tmp_path):
    out = tmp_path / "n.csv"
    assert main(["data", "export", "narma10:length=200", "--out", str(out)]) == 0
    table = rows(out)
    assert table[0] == ["split", "t", "u", "y"] and len(table) == 201
    assert [r[0] for r in table[1:]].count("train") == split_bounds(200)[0][1]


def test_export_recall_flattens_inputs_and_targets(tmp_path):
    out = tmp_path / "copy.csv"
    assert main(["data", "export", "copy:lag=4,n_train=3,n_val=2,n_test=2", "--split", "train",
                 "--out", str(out)]) == 0
    table = rows(out)
    assert table[0][:3] == ["split", "seq", "step"] and table[0][-2:] == ["y", "scored"]
    assert len(table) == 1 + 3 * (4 + 20)
    scored = [r for r in table[1:] if r[-1] == "1"]
    assert len(scored) == 3 * 10
    for r in scored:  # the recalled symbol is the one shown at the same offset earlier
        seq, step = int(r[1]), int(r[2])
        shown = next(s for s in table[1:] if s[1] == r[1] and int(s[2]) == step - 14)
        assert int(r[-2]) == int(np.argmax([float(v) for v in shown[3:-2]]))
    out = tmp_path / "adding.csv"
    assert main(["data", "export", "adding:lag=6,n_train=2,n_val=1,n_test=1", "--split", "val",
                 "--out", str(out)]) == 0
    table = rows(out)
    assert table[0][-2:] == ["y0", "scored"] and [r[-2] != "" for r in table[1:]] == [False] * 5 + [True]


@pytest.mark.parametrize("item", ["lorenz:length=300", "kuramoto-sivashinsky:length=200,transient=10",
                                  "logistic:length=300", "associative-recall:n_train=4,n_val=2,n_test=2"])
def test_plot_writes_a_png(tmp_path, item, capsys):
    out = tmp_path / "fig.png"
    assert main(["data", "plot", item, "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize("argv, message", [
    (["data", "export", "lorenz:bogus=1", "--out", "x.csv"], "unknown parameter 'bogus'"),
    (["data", "export", "lorenz:length=abc", "--out", "x.csv"], "not a valid int"),
    (["data", "export", "lorenz:length=[100,200]", "--out", "x.csv"], "sweeps"),
    (["data", "export", "lorenz", "--split", "nope", "--out", "x.csv"], "invalid choice"),
    (["data", "plot", "narma10:beta=0.2,max_redraws=1", "--out", "x.png"], "diverged"),
    (["data", "export", "mackey-glass:dt=0.3", "--out", "x.csv"], "positive integer"),
])
def test_bad_input_is_one_line_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())
