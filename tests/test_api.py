"""The notebook API (issue 21): dpbench.run / dpbench.load and the Results object."""
from __future__ import annotations

import pytest

import dpbench
from dpbench.params import UsageError

LORENZ = "lorenz:length=400,window=8"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    return dpbench.run(models=["fnn", "lstm:hidden=8"], datasets=LORENZ, suite="smoke", seeds=2, steps=4,
                       out=out, quiet=True)


def test_run_returns_the_tidy_table(results):
    df = results.to_pandas()
    assert set(df["model"]) == {"fnn", "lstm"}
    assert sorted(set(df["seed"])) == [0, 1]
    nrmse = df[(df["metric"] == "nrmse_1step") & (df["model"] == "fnn")]
    assert len(nrmse) == 2 and (nrmse["value"] > 0).all()
    assert set(df["block"]) == {"forecast"}
    assert results.run_dir.is_absolute() and (results.run_dir / "results.json").exists()


def test_summary_and_report(results, tmp_path):
    text = results.summary()
    assert text.startswith("forecast: lorenz:") and "lstm:hidden=8" in text and "2 seeds" in text
    path = results.report(tmp_path / "r.md")
    assert path == (tmp_path / "r.md").resolve() and "lstm" in path.read_text()


def test_load_reads_the_same_run(results):
    again = dpbench.load(results.run_dir)
    assert [t.trial_id for t in again.trials] == [t.trial_id for t in results.trials]
    assert again.to_pandas().equals(results.to_pandas())
    assert dpbench.load(results.run_dir / "results.json").run_dir == results.run_dir
    assert "4 trials, 4 ok" in repr(again)


def test_bad_input_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="nosuch"):
        dpbench.load(tmp_path / "nosuch")
    with pytest.raises(Exception, match="unknown model 'nosuch'"):
        dpbench.run(models="nosuch", datasets=LORENZ, suite="smoke", out=tmp_path / "x", quiet=True)
