"""``dpbench abtest`` end to end on a temporary clone of this repository with planted
commits: both sides import their own worktree, trials interleave, a slowed-down model is
flagged, a trial failing on one side is that side's failure; bad input exits 2."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dpbench.abtest import schedule
from dpbench.compare import compare_docs
from dpbench.cli import main
from dpbench.results import load_results

ROOT = Path(__file__).resolve().parents[1]
TINY = {"suite": "smoke", "models": "fnn,gru", "datasets": "lorenz:length=300,window=8", "seeds": 1,
        "steps": 3, "threads": 1, "calibrate": False}
SLOW_FNN = ("        return self.net(x.reshape(x.shape[0], -1)).view(x.shape[0], self.output_steps, self.output_size)\n",
            "        import time\n        time.sleep(0.003)  # planted slowdown\n"
            "        return self.net(x.reshape(x.shape[0], -1)).view(x.shape[0], self.output_steps, self.output_size)\n")


GRU_FAILS = ("    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        h, _ = self.rnn(x)\n",
             "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
             "        if isinstance(self.rnn, torch.nn.GRU):\n            raise RuntimeError('planted failure')\n"
             "        h, _ = self.rnn(x)\n")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def edit(repo: Path, path: str, old: str, new: str) -> None:
    text = (repo / path).read_text()
    assert old in text, path
    (repo / path).write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of this checkout's HEAD plus branch ``planted`` (fnn sleeps 3 ms per forward,
    gru's forward raises) and branch ``nosmoke`` (the smoke suite deleted)."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    repo = tmp_path_factory.mktemp("ab") / "repo"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(repo)], check=True)
    git(repo, "checkout", "-q", "-b", "planted")
    edit(repo, "dpbench/models/_feedforward.py", *SLOW_FNN)
    edit(repo, "dpbench/models/_recurrent.py", *GRU_FAILS)
    git(repo, "commit", "-qam", "plant slowdown")
    git(repo, "checkout", "-q", "-b", "nosmoke", "HEAD~1")
    git(repo, "rm", "-q", "dpbench/suites/smoke.toml")
    git(repo, "commit", "-qm", "no smoke suite")
    git(repo, "checkout", "-q", "planted")
    return repo


def test_schedule_interleaves_abba():
    assert schedule(["a1", "a2", "a3"], ["a1", "a2", "a3"]) == [
        (0, "a1"), (1, "a1"), (1, "a2"), (0, "a2"), (0, "a3"), (1, "a3")]
    assert schedule(["x"], ["x", "y"]) == [(0, "x"), (1, "x"), (1, "y")]


@pytest.mark.slow
def test_abtest_end_to_end_flags_the_slowdown_and_blames_the_failing_side(clone, tmp_path, capsys):
    base_sha, head_sha = git(clone, "rev-parse", "HEAD~1"), git(clone, "rev-parse", "HEAD")
    out = tmp_path / "ab"
    code = main(["abtest", "HEAD~1", "planted", "--repo", str(clone), "--out", str(out), "--no-calibrate",
                 *[f"--{k}={v}" for k, v in TINY.items() if k not in ("calibrate",)]])
    captured = capsys.readouterr()
    assert code == 1  # gru fails on the head side only
    sides = [ln.split("]")[1].split(":")[0].strip() for ln in captured.err.splitlines() if ln.startswith("[")]
    assert sides == ["base", "head", "head", "base"]  # A B B A, each trial in a fresh worker
    base, head = load_results(out / "base"), load_results(out / "head")  # two ordinary run directories
    assert base["environment"]["git_sha"] == base_sha and head["environment"]["git_sha"] == head_sha
    assert {(t["model"], t["status"]) for t in base["trials"]} == {("fnn", "ok"), ("gru", "ok")}
    assert {(t["model"], t["status"]) for t in head["trials"]} == {("fnn", "ok"), ("gru", "failed")}
    assert "1 trial(s) failed on the head side only (a failure of that side, not a regression)" in captured.out
    assert "gru on lorenz:length=300,window=8 seed 0 cpu: failed" in captured.out
    rows = compare_docs(base, head)  # per cell: 3 vs 3 samples, every head sample slower
    bad = {(r.model, r.metric) for r in rows if r.regression}
    assert ("fnn", "infer_seq_per_s") in bad and not any(m == "gru" for m, _ in bad)
    assert len(git(clone, "worktree", "list").splitlines()) == 1  # temporary worktrees removed


def test_one_sided_failures_of_a_dead_worker():
    from dpbench.abtest import Side, one_sided_failures

    a = Side("base", "A", "a" * 40, Path("."), Path("."), trials={"t1": "fnn", "t2": "gru"},
             results={"t1": {"status": "ok"}, "t2": {"status": "ok"}})
    b = Side("head", "B", "b" * 40, Path("."), Path("."), trials={"t1": "fnn", "t2": "gru"},
             results={"t1": {"status": "timeout", "error": "limit"}}, dead="worker exited with code -9")
    assert one_sided_failures(a, b) == {"base": [], "head": ["fnn: timeout: limit",
                                                              "gru: not run (worker exited with code -9)"]}


@pytest.mark.slow  # the nosmoke case starts the base side's worker (import torch, plan) first
@pytest.mark.parametrize("args, fragment", [
    (["nosuchrev", "HEAD"], "revision 'nosuchrev' does not exist in"),
    (["HEAD", "nosuchrev"], "revision 'nosuchrev' does not exist in"),
    (["HEAD~1", "nosmoke"], "suite 'smoke' fails on the head (nosmoke = "),
])
def test_bad_input_exits_2_with_one_line(clone, tmp_path, capsys, args, fragment):
    code = main(["abtest", *args, "--repo", str(clone), "--suite", "smoke", "--models", "lstm",
                 "--datasets", "lorenz:length=300,window=8", "--seeds", "1", "--steps", "1",
                 "--no-calibrate", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.strip().count("\n") == 0, err


def test_dirty_tree_without_head_rev_exits_2(clone, tmp_path, capsys):
    readme = clone / "README.md"
    readme.write_text(readme.read_text() + "\nuncommitted\n")
    try:
        code = main(["abtest", "HEAD~1", "--repo", str(clone), "--suite", "smoke", "--out", str(tmp_path / "x")])
    finally:
        git(clone, "checkout", "--", "README.md")
    err = capsys.readouterr().err
    assert code == 2 and "has uncommitted changes (README.md); commit them or name HEAD_REV" in err
    assert err.count("\n") == 1
