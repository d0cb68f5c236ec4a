"""The command line: listing, one-line usage errors with exit code 2, a real run."""
import json
import subprocess
import sys

import pytest

from dpbench.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dpbench.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_list_json_shows_models_and_datasets(capsys):
    assert main(["list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    models = {m["name"]: m for m in doc["models"]}
    datasets = {d["name"]: d for d in doc["datasets"]}
    assert {"fnn", "rnn", "lstm", "gru"} <= set(models)
    assert {"lorenz", "copy"} <= set(datasets)
    assert models["lstm"]["family"] == "recurrent" and models["lstm"]["plugin"] == "dpbench.models.recurrent"
    assert datasets["lorenz"]["kind"] == "forecast" and datasets["lorenz"]["metadata"]["lyapunov_exponent"] == 0.906
    assert "noise" in datasets["lorenz"]["params"]  # core forecast options are documented too


def test_plugins_json_lists_builtins(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["name"] == "dpbench.models.recurrent" and r["hooks"] == ["dpbench_register_models"] for r in rows)


@pytest.mark.parametrize("args, fragment", [
    (["run", "--models", "nosuch"], "unknown model 'nosuch'; valid:"),
    (["run", "--datasets", "lorenz:nope=1"], "unknown parameter 'nope'; valid:"),
    (["run", "--datasets", "lorenz:noise=abc"], "noise='abc' is not a valid float"),
    (["run", "--suite", "nosuch"], "unknown suite 'nosuch'; valid: default, paper, smoke"),
    (["run", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["run", "--seeds", "-1"], "--seeds=-1 must be between 1 and 1000"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_user_errors_are_one_line_with_exit_code_2(args, fragment):
    out = run_cli(*args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_malformed_suite_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[[block]]\nmodels = ['lstm']\n")
    out = run_cli("run", "--suite", str(bad))
    assert out.returncode == 2 and "needs 'models' and 'datasets'" in out.stderr
    bad.write_text("this is = = not toml")
    out = run_cli("run", "--suite", str(bad))
    assert out.returncode == 2 and "malformed suite" in out.stderr


def test_run_refuses_to_overwrite_a_run_directory(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.csv").write_text("x")
    out = run_cli("run", "--models", "rnn", "--datasets", "copy", "--out", str(tmp_path / "run"))
    assert out.returncode == 2 and "--resume" in out.stderr and "--force" in out.stderr


@pytest.mark.parametrize("flag", [["--device", "cpu"], ["--steps", "5"], ["--save-attention", "2"]])
def test_resume_refuses_settings_it_would_ignore(tmp_path, flag):
    out = run_cli("run", "--resume", str(tmp_path), *flag)
    assert out.returncode == 2 and flag[0] in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_help_everywhere():
    for args in (["--help"], ["run", "--help"], ["list", "--help"], ["plugins", "--help"]):
        out = run_cli(*args)
        assert out.returncode == 0 and "usage:" in out.stdout


def test_smoke_suite_runs_every_model_and_writes_results(tmp_path):
    from dpbench.plugins import load_registry
    from dpbench.results import load_results

    out = run_cli("run", "--suite", "smoke", "--out", str(tmp_path / "smoke"), "--quiet")
    assert out.returncode == 0, out.stderr[-2000:]
    doc = load_results(tmp_path / "smoke")
    assert all(t["status"] == "ok" for t in doc["trials"])
    registry = load_registry()
    ran = {t["model"] for t in doc["trials"]}
    assert ran >= {m for m in registry.models if m in ran or registry.model(m).plugin.startswith("dpbench.")}
    kinds = {(t["model"], "nrmse_1step" in t["metrics"]) for t in doc["trials"]}
    assert ("lstm", True) in kinds and ("lstm", False) in kinds  # both task kinds
    header = (tmp_path / "smoke" / "results.csv").read_text().splitlines()[0]
    assert header == "run_id,trial_id,model,model_params,dataset,dataset_params,seed,device,status,metric,value"
    assert "\nforecast: lorenz:" in out.stdout and "\nrecall: copy:" in out.stdout
    assert max(len(line) for line in out.stdout.splitlines()) <= 120
    run_dir = (tmp_path / "smoke").resolve()
    assert f"next:    dpbench report {run_dir}" in out.stdout and f"results: {run_dir / 'results.csv'}" in out.stdout


def test_list_shows_the_extra_a_dataset_needs(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    sunspots = next(ln for ln in out.splitlines() if ln.startswith("sunspots "))
    assert "dpbench[real]" in sunspots and "pip install 'dpbench[real]'" in out
    lorenz = next(ln for ln in out.splitlines() if ln.startswith("lorenz "))
    assert "dpbench[" not in lorenz


@pytest.mark.parametrize("value", ["-1", "0", "1001"])
def test_every_out_of_range_seed_count_gets_the_same_message(value, capsys):
    assert main(["run", "--suite", "smoke", "--seeds", value]) == 2
    assert capsys.readouterr().err.strip() == f"dpbench: error: --seeds={value} must be between 1 and 1000"


def test_help_shows_no_rst_markup(capsys):
    for args in (["run", "--help"], ["report", "--help"], ["compare", "--help"], ["check-plugin", "--help"]):
        with pytest.raises(SystemExit):
            main(args)
        out = capsys.readouterr().out
        assert "usage:" in out and "``" not in out
