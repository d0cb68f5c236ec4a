"""Hostile inputs, fuzzed (hypothesis, fixed seed, ≥ 500 cases per surface): every case
ends in success or a one-line error with exit code 2 — never a traceback, never a hang."""
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpbench.cli import main
from dpbench.harness import runner as run_command  # the run command imports run_suite from here per call
from dpbench.data import dataset_defaults
from dpbench.harness.suite import expand_trials, load_suite
from dpbench.params import UsageError, parse_item, split_list, typed_params
from dpbench.plugins import UnknownName, get_registry
from dpbench.results import load_results

FUZZ = settings(max_examples=500, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Planned(Exception):
    """Raised instead of running trials: the input was accepted."""


def _plan_only(suite, registry, **_):
    expand_trials(suite, registry, cuda_available=False)
    raise Planned


TOKENS = ["run", "list", "plugins", "--json", "--models", "--datasets", "--seeds", "--suite", "--device",
          "--steps", "--out", "--force", "--resume", "--trial-timeout", "--save-attention", "--jobs",
          "--executor", "--allow-failures", "lstm", "gru,rnn", "nosuch", "lorenz", "lorenz:noise=0.1",
          "lorenz:noise=x", "copy:lag=[1,2]", "copy:lag=[", "copy:lag=]", "smoke", "default", "cpu",
          "cuda", "all", "0", "-1", "3", "1e9", "nan", "inf", "", ":", "=", ",", "[,]", "lstm:hidden=0",
          "lstm:hidden=-5", "fnn:layers=1.5", "copy:lag=0"]


def _one_line_exit_2(rc, err):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dpbench: error:"), err
    assert "Traceback" not in err


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=12)), max_size=8))
def test_cli_arguments(monkeypatch, tmp_path, capsys, args):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_command, "run_suite", _plan_only)
    try:
        rc = main(args)
    except Planned:
        return
    except SystemExit as exc:  # --help / --version
        assert exc.code == 0
        return
    err = capsys.readouterr().err
    if rc != 0:
        _one_line_exit_2(rc, err)


SCALARS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False), st.booleans(),
                    st.text(max_size=10), st.sampled_from(["lstm", "rnn", "lorenz", "copy:lag=[2,3]", "*", "adam"]))
KEYS = st.one_of(st.sampled_from(["name", "description", "seeds", "devices", "train", "eval", "block", "models",
                                  "datasets", "steps", "lr", "batch_size", "optimizer", "param_budget",
                                  "rollout_steps", "vpt_threshold", "clip"]), st.from_regex(r"[a-z_]{1,8}", fullmatch=True))


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(v)


def _toml(doc):
    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, (dict, list)) or
             (isinstance(v, list) and not any(isinstance(x, dict) for x in v))]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{json.dumps(k)}]")
            lines += [f"{json.dumps(kk)} = {_toml_value(vv)}" for kk, vv in v.items() if not isinstance(vv, dict)]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"[[{json.dumps(k)}]]")
                lines += [f"{json.dumps(kk)} = {_toml_value(vv)}" for kk, vv in item.items() if not isinstance(vv, dict)]
    return "\n".join(lines) + "\n"


BLOCK = st.dictionaries(KEYS, st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), max_size=4)
SUITE_DOC = st.dictionaries(KEYS, st.one_of(SCALARS, st.lists(SCALARS, max_size=3),
                                            st.dictionaries(KEYS, SCALARS, max_size=4),
                                            st.lists(BLOCK, min_size=1, max_size=2)), max_size=6)


@FUZZ
@given(st.one_of(SUITE_DOC.map(_toml), st.text(max_size=200)))
def test_suite_files(tmp_path, text):
    path = tmp_path / "suite.toml"
    path.write_text(text, encoding="utf-8")
    try:
        expand_trials(load_suite(str(path)), get_registry(), cuda_available=False)
    except (UsageError, UnknownName) as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(st.one_of(st.sampled_from(["lorenz", "copy", "lstm", "fnn"]), st.text(max_size=6)),
       st.lists(st.tuples(st.one_of(st.sampled_from(["noise", "lag", "observe", "window", "hidden", "layers",
                                                     "horizon", "seed", "length", "n_train"]), st.text(max_size=5)),
                          st.one_of(st.text(max_size=8), st.sampled_from(["1", "0.5", "-3", "[1,2]", "[", "x+z",
                                                                          "0+2", "all", "nan", "1e400"]))),
                max_size=4))
def test_parameter_strings(name, pairs):
    text = name + (":" + ",".join(f"{k}={v}" for k, v in pairs) if pairs else "")
    registry = get_registry()
    try:
        for item in split_list(text):
            n, raw = parse_item(item)
            if n in registry.datasets:
                typed_params(n, raw, dataset_defaults(registry.dataset(n)), "dataset")
            else:
                typed_params(n, raw, dict(registry.model(n).defaults), "model")
    except (UsageError, UnknownName) as exc:
        assert "\n" not in str(exc)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
                    max_leaves=12)
VALID = {"schema_version": 1, "run_id": "r", "environment": {}, "config": {}, "records": [], "derived": [],
         "trials": [{"trial_id": "t", "model": "lstm", "model_params": {}, "dataset": "copy", "dataset_params": {},
                     "seed": 0, "device": "cpu", "status": "ok", "metrics": {"accuracy": 0.5},
                     "samples": {"train_seq_per_s": [1.0, 2.0]}, "info": {}}]}
TRIAL_KEYS = list(VALID["trials"][0])


@FUZZ
@given(st.one_of(
    JSON.map(json.dumps),
    st.text(max_size=50),
    st.tuples(st.sampled_from(TRIAL_KEYS), JSON).map(
        lambda kv: json.dumps({**VALID, "trials": [{**VALID["trials"][0], kv[0]: kv[1]}]})),
    st.tuples(st.sampled_from(list(VALID)), JSON).map(lambda kv: json.dumps({**VALID, kv[0]: kv[1]})),
))
def test_results_files(tmp_path, text):
    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    try:
        load_results(path)
    except UsageError as exc:
        assert "\n" not in str(exc)
