"""Start-up: the everyday commands import neither torch nor scipy (issue 21).

Each command runs in a fresh interpreter; afterwards ``sys.modules`` says what it imported.
The in-repo plugin packages go first on the path, so their entry points (when installed)
load this checkout's code.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "scipy")
PARSER_ONLY = HEAVY + ("numpy", "pluggy", "tabulate", "pandas", "matplotlib")

PROBE = """
import json, sys
from dpbench.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
sys.stderr.write("\\nMODULES " + json.dumps(sorted(m for m in sys.modules if "." not in m)) + "\\n")
sys.exit(rc or 0)
"""


def run_cli(*args: str, third_party: bool = True) -> tuple[str, set[str]]:
    env = dict(os.environ)
    paths = [str(ROOT), *(str(p) for p in sorted((ROOT / "plugins").glob("*/src")))]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    if not third_party:
        env["DPBENCH_DISABLE_PLUGINS"] = "1"
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    modules = json.loads(out.stderr.rsplit("MODULES ", 1)[1])
    return out.stdout, set(modules)


@pytest.mark.parametrize("third_party", [False, True])
def test_list_json_imports_neither_torch_nor_scipy(third_party):
    stdout, modules = run_cli("list", "--json", third_party=third_party)
    listed = json.loads(stdout)
    assert {"lstm", "dnc", "transformer"} <= {m["name"] for m in listed["models"]}
    assert {"lorenz", "copy"} <= {d["name"] for d in listed["datasets"]}
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.parametrize("args", [("plugins", "--json"), ("data", "describe", "lorenz"), ("list",)])
def test_other_listing_commands_stay_light(args):
    _, modules = run_cli(*args)
    assert not modules & set(HEAVY), (args, sorted(modules & set(HEAVY)))


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("run", "--help"), ("compare", "--help")])
def test_parser_alone_imports_no_numerics(args):
    stdout, modules = run_cli(*args)
    assert stdout.strip()
    assert not modules & set(PARSER_ONLY), (args, sorted(modules & set(PARSER_ONLY)))


def test_lazy_model_modules_still_export_their_classes():
    from dpbench.harness.executors import EXECUTORS
    from dpbench.commands.run import EXECUTOR_NAMES
    from dpbench.models import dnc

    assert dnc.DNC.__module__ == "dpbench.models._dnc"  # resolved on first access
    assert tuple(EXECUTORS) == EXECUTOR_NAMES
