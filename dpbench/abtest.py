"""Side-by-side A/B runs of two git revisions on one machine (``dpbench abtest``).

The idea of asv's ``asv continuous`` and TorchBench's A/B tests: noise that hits both sides
equally cannot look like a code change. Each revision is checked out in a temporary git
worktree (``git worktree add --detach``) and driven by its own worker process that imports
dpbench *from that worktree* (``cwd`` and ``PYTHONPATH``; :mod:`dpbench._abworker`). Both
workers plan the same suite; trials then run one at a time, alternating between the sides
in the order A B B A A B … (each pair of adjacent trials is the same trial on both sides,
and which side goes first alternates, so a linear drift of the machine's speed hits both
sides equally). After each pair, both workers time the pair's model in alternating short
bursts (:func:`time_pair`), so partner figures are taken a fraction of a second apart.
Each side writes an ordinary run directory (``OUT/base``, ``OUT/head``), the bursts go to
``OUT/interleaved.json``; the comparison is :func:`abtest_rows`: throughput by a paired
test over the trial pairs (the same seed on both sides; per pair the median ratio of
partner bursts), Holm-corrected over the throughput cells.

A trial that fails on one side only is that side's failure, never a throughput or accuracy
regression (failed trials are not compared). Bad input raises
:class:`~dpbench.params.UsageError`: a revision that does not exist, a dirty working tree
when HEAD_REV is omitted, a suite that one side cannot plan or run.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from dpbench.params import UsageError

WORKER = Path(__file__).with_name("_abworker.py")
DEFAULT_OUT = Path("results") / "abtest"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)


def repository(path: str | Path) -> Path:
    """The top folder of the git repository containing ``path``."""
    out = _git(Path(path), "rev-parse", "--show-toplevel")
    if out.returncode != 0:
        raise UsageError(f"--repo {str(path)!r} is not inside a git repository")
    return Path(out.stdout.strip())


def resolve(repo: Path, rev: str) -> str:
    """The commit sha ``rev`` names in ``repo``."""
    out = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if out.returncode != 0 or not out.stdout.strip():
        raise UsageError(f"revision {rev!r} does not exist in {repo}")
    return out.stdout.strip()


def require_clean(repo: Path) -> None:
    """Refuse a working tree with uncommitted changes to tracked files: they would not be
    in the worktree checked out from HEAD, so the run would not test what the user sees."""
    out = _git(repo, "status", "--porcelain", "--untracked-files=no")
    if out.returncode != 0:
        raise UsageError(f"cannot read the git status of {repo}")
    if out.stdout.strip():
        files = [ln[3:] for ln in out.stdout.splitlines()]
        raise UsageError(f"the working tree of {repo} has uncommitted changes ({', '.join(files[:3])}"
                         f"{', ...' if len(files) > 3 else ''}); commit them or name HEAD_REV explicitly")


@dataclass
class Side:
    """One revision: its worktree, run directory and worker process."""

    name: str            # "base" or "head"
    rev: str
    sha: str
    tree: Path
    out: Path
    proc: subprocess.Popen | None = None
    trials: dict[str, str] = field(default_factory=dict)  # id → label
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead: str = ""

    @property
    def title(self) -> str:
        return f"{self.name} ({self.rev} = {self.sha[:10]})"

    def send(self, obj: dict[str, Any]) -> dict[str, Any]:
        """One request, one answer; a dead worker answers ``{"died": reason}``."""
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.proc.wait()
            return {"died": f"worker exited with code {self.proc.returncode} (log: {self.out.parent / self.name}.log)"}
        return json.loads(line)


def _pythonpath(tree: Path) -> str:
    """``tree`` first, then the caller's PYTHONPATH entries that hold no other dpbench."""
    keep = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and not (Path(p) / "dpbench" / "__init__.py").exists()]
    return os.pathsep.join([str(tree), *keep])


def start_worker(side: Side, cfg: dict[str, Any], python: str = sys.executable, resume: bool = False) -> None:
    """Start ``side``'s worker in its worktree and read its trial list; UsageError when the
    side cannot plan the suite (or imports dpbench from somewhere else). ``resume``: a
    later worker of the side, appending to its run directory."""
    env = {**os.environ, "PYTHONPATH": _pythonpath(side.tree), "PYTHONDONTWRITEBYTECODE": "1"}
    log = open(side.out.parent / f"{side.name}.log", "a" if resume else "w")
    cfg = {**cfg, "resume": resume}
    side.proc = subprocess.Popen([python, "-c", WORKER.read_text(), json.dumps({**cfg, "out": str(side.out)})],
                                 cwd=side.tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=log, text=True, bufsize=1)
    line = side.proc.stdout.readline() if side.proc.stdout else ""
    msg = json.loads(line) if line.strip().startswith("{") else {}
    if "hello" not in msg:
        side.proc.wait()
        reason = msg.get("error") or f"worker exited with code {side.proc.returncode}"
        raise UsageError(f"suite {cfg['suite']!r} fails on the {side.title} side: {reason}")
    where = Path(msg["hello"]["dpbench"]).resolve()
    if side.tree.resolve() not in where.parents:
        raise UsageError(f"the {side.title} side imported dpbench from {where}, not from its worktree")
    side.trials = dict(msg["hello"]["trials"])


def pair_schedule(base: list[str], head: list[str]) -> list[list[tuple[int, str]]]:
    """The trial pairs, each a list of (side index 0 = base / 1 = head, trial id): the i-th
    trial of each side, the side that goes first alternating (A B, B A, A B, …)."""
    pairs = []
    for i in range(max(len(base), len(head))):
        pair = [(0, base[i]) if i < len(base) else None, (1, head[i]) if i < len(head) else None]
        if i % 2:
            pair.reverse()
        pairs.append([p for p in pair if p is not None])
    return pairs


def schedule(base: list[str], head: list[str]) -> list[tuple[int, str]]:
    """The order trials run in, A B B A A B …: :func:`pair_schedule` flattened."""
    return [p for pair in pair_schedule(base, head) for p in pair]


#: timing bursts per side and trial pair, and the seconds of one burst (inference + training)
DEFAULT_ROUNDS = 10
DEFAULT_BURST_S = 0.1


def time_pair(sides: list[Side], pair: list[tuple[int, str]], rounds: int, seconds: float) -> dict[str, Any]:
    """Interleaved timing of one trial pair, both workers alive: ``rounds`` rounds, each a
    burst on both sides, the side that goes first alternating (A B B A …), so both sides'
    bursts fall within a fraction of a second of each other.

    Why: on a shared 2-vCPU machine a process's speed changes by up to 2× within seconds
    and stays for seconds (measured: fnn training in one process, 2-s bins, 27–51 k seq/s;
    docs/ci.md), so two trials run back to back, each timing itself at its own moments, see
    different machines. Bursts 0.1 s apart see the same one. Returns ``{"label", "base",
    "head"`` (trial ids), ``"base_infer", "base_train", "head_infer", "head_train"`` (seq/s
    per burst; train empty for closed-form models) ``}``, or ``"error"`` when a side could
    not time (its trials' own timing samples are used then)."""
    ids = {sides[i].name: tid for i, tid in pair}
    rec: dict[str, Any] = {"label": sides[pair[0][0]].trials[pair[0][1]], **ids,
                           **{f"{s.name}_{k}": [] for s in sides for k in ("infer", "train")}}
    for r in range(rounds):
        for i, tid in (pair if r % 2 == 0 else pair[::-1]):
            s = sides[i]
            answer = s.send({"time": tid, "seconds": seconds})
            if "died" in answer:
                s.dead = answer["died"]
                return {**rec, "error": f"{s.name}: {s.dead}"}
            if answer.get("error"):
                return {**rec, "error": f"{s.name}: {answer['error']}"}
            rec[f"{s.name}_infer"].append(answer["infer"])
            if answer.get("train") is not None:
                rec[f"{s.name}_train"].append(answer["train"])
    return rec


def load_ab_docs(out: Path) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The two run documents of an A/B run in ``out``, with the interleaved timing of
    ``out/interleaved.json`` applied (:func:`interleaved_docs`) when it is there, and
    whether it was (``aligned`` for :func:`abtest_rows`)."""
    from dpbench.results import load_results

    out = Path(out)
    path = out / "interleaved.json"
    timing = json.loads(path.read_text()) if path.exists() else None
    base, head = interleaved_docs(load_results(out / "base"), load_results(out / "head"), timing)
    return base, head, bool(timing and timing.get("pairs"))


def interleaved_docs(base: dict[str, Any], head: dict[str, Any], timing: dict[str, Any] | None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copies of the two run documents whose throughput samples (``infer_seq_per_s``,
    ``train_seq_per_s``) are the interleaved bursts of :func:`time_pair`, where both sides
    of a pair have them; every other figure (and every cell without bursts on both sides)
    is the trials' own."""
    import copy
    import statistics

    base, head = copy.deepcopy(base), copy.deepcopy(head)
    trials = {name: {t["trial_id"]: t for t in doc["trials"]} for name, doc in (("base", base), ("head", head))}
    for rec in (timing or {}).get("pairs", []):
        if rec.get("error"):
            continue
        for metric, key in (("infer_seq_per_s", "infer"), ("train_seq_per_s", "train")):
            got = {name: rec.get(f"{name}_{key}") for name in ("base", "head")}
            found = {name: trials[name].get(rec.get(name)) for name in ("base", "head")}
            if all(got.values()) and all(found.values()):
                for name, t in found.items():
                    t.setdefault("samples", {})[metric] = list(got[name])
                    t.setdefault("metrics", {})[metric] = statistics.median(got[name])
    return base, head


@dataclass
class ABResult:
    """What :func:`run_abtest` produced."""

    base: Side
    head: Side
    only_failed: dict[str, list[str]]   # side name → "label: error" of trials that failed there only


def _stop(side: Side) -> None:
    """End ``side``'s worker cleanly (its result files finalised)."""
    if side.proc is not None:
        answer = side.send({"end": True})
        if "died" in answer:
            side.dead = answer["died"]
        side.proc.wait()
        side.proc = None


def run_abtest(repo: Path, base_rev: str, head_rev: str | None, cfg: dict[str, Any], out: Path,
               stream: TextIO | None = None, python: str = sys.executable,
               on_trial: Callable[[str, str, dict[str, Any]], None] | None = None,
               fresh: bool = True, rounds: int = DEFAULT_ROUNDS, burst: float = DEFAULT_BURST_S) -> ABResult:
    """Run ``cfg["suite"]`` (with ``models``/``datasets``/``seeds``/``steps``/``threads``/
    ``timeout`` overrides) for both revisions, interleaved; results in ``out/base`` and
    ``out/head``. ``head_rev`` None means HEAD of a clean working tree. ``fresh``: every
    trial pair in new worker processes (a long-lived process can be systematically faster
    or slower than another running the same code — scheduler placement, memory layout —
    which interleaving cannot cancel; fresh processes turn it into pair-to-pair noise).
    After each pair that finished ok on both sides, ``rounds`` interleaved timing bursts of
    ``burst`` seconds per side (:func:`time_pair`; 0 rounds: none), written to
    ``out/interleaved.json``."""
    stream = stream or sys.stderr
    repo = repository(repo)
    if head_rev is None:
        require_clean(repo)
    shas = resolve(repo, base_rev), resolve(repo, head_rev or "HEAD")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"output directory {str(out)!r} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="dpbench-abtest-"))
    sides = [Side("base", base_rev, shas[0], tmp / "base", out / "base"),
             Side("head", head_rev or "HEAD", shas[1], tmp / "head", out / "head")]
    try:
        for s in sides:
            added = _git(repo, "worktree", "add", "--detach", str(s.tree), s.sha)
            if added.returncode != 0:
                raise UsageError(f"cannot check out {s.rev!r}: {added.stderr.strip().splitlines()[-1]}")
        for s in sides:
            start_worker(s, cfg, python)
        _warn_if_busy(stream)
        pairs = pair_schedule(list(sides[0].trials), list(sides[1].trials))
        total, k = sum(map(len, pairs)), 0
        timing: dict[str, Any] = {"rounds": rounds, "burst_s": burst, "pairs": []}
        for pair in pairs:
            for i, tid in pair:
                k += 1
                s = sides[i]
                if s.dead:
                    continue
                if fresh and s.proc is None:
                    start_worker(s, cfg, python, resume=True)
                answer = s.send({"run": tid})
                if "died" in answer:
                    s.dead = answer["died"]
                    print(f"dpbench abtest: the {s.title} worker died: {s.dead}", file=stream)
                    continue
                s.results[tid] = answer
                err = f": {answer['error']}" if answer.get("status") != "ok" and answer.get("error") else ""
                print(f"[{k}/{total}] {s.name}: {s.trials[tid]}: {answer.get('status')}{err}", file=stream, flush=True)
                if on_trial:
                    on_trial(s.name, tid, answer)
            if rounds > 0 and len(pair) == 2 and all(sides[i].results.get(tid, {}).get("status") == "ok"
                                                     and not sides[i].dead for i, tid in pair):
                rec = time_pair(sides, pair, rounds, burst)
                timing["pairs"].append(rec)
                if rec.get("error"):
                    print(f"dpbench abtest: no interleaved timing for {rec['label']} ({rec['error']}); "
                          "its trials' own timing samples are compared", file=stream)
            if fresh:
                for i, _ in pair:
                    if not sides[i].dead:
                        _stop(sides[i])
        (out / "interleaved.json").write_text(json.dumps(timing, indent=1))
        for s in sides:
            if not s.dead:
                _stop(s)
    finally:
        for s in sides:
            if s.proc and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
            _git(repo, "worktree", "remove", "--force", str(s.tree))
        _git(repo, "worktree", "prune")
        shutil.rmtree(tmp, ignore_errors=True)
    return ABResult(sides[0], sides[1], one_sided_failures(sides[0], sides[1]))


def _warn_if_busy(stream: TextIO) -> None:
    from dpbench.environment import busy_warning, load_average

    warning = busy_warning(load_average(), os.cpu_count())
    if warning:
        print(warning, file=stream)


def one_sided_failures(base: Side, head: Side) -> dict[str, list[str]]:
    """Trials that finished ok on one side and not on the other (or never ran there because
    that side's worker died), as ``label: status: error`` per failing side."""
    out: dict[str, list[str]] = {"base": [], "head": []}
    for me, other in ((base, head), (head, base)):
        for tid, label in me.trials.items():
            mine, theirs = me.results.get(tid), other.results.get(tid)
            if theirs and theirs.get("status") == "ok" and (mine is None or mine.get("status") != "ok"):
                why = f"{mine['status']}: {mine.get('error')}" if mine else f"not run ({me.dead or 'missing'})"
                out[me.name].append(f"{label}: {why}")
    return out


def abtest_rows(base: dict[str, Any], head: dict[str, Any], threshold: float, alpha: float,
                acc_tolerance: float, names: tuple[str, str] = ("base", "head"), aligned: bool = False) -> list:
    """The verdicts of an A/B run: :func:`dpbench.compare.compare_docs` with ``paired=True``
    (same machine by construction, so no machine check; throughput by the paired test over
    trial pairs of the same seed, :func:`dpbench.compare.paired_throughput_row`), then Holm's
    correction over all throughput cells (:func:`dpbench.compare.holm_throughput`): with
    tens of cells, a per-cell α would flag some cell of almost every same-code run.
    ``aligned``: the throughput samples are interleaved bursts (:func:`load_ab_docs`), each
    compared with its partner burst.
    Accuracy cells keep the rank rule of ``dpbench compare`` (docs/ci.md, "abtest")."""
    from dpbench.compare import compare_docs, holm_throughput

    return holm_throughput(compare_docs(base, head, threshold, alpha, acc_tolerance, names=names, paired=True,
                                        aligned=aligned), alpha)


def default_out() -> Path:
    return DEFAULT_OUT / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
