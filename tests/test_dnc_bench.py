"""``dpbench bench dnc``: ratios against the right baseline, the bandwidth floor arithmetic, and
its user errors (the timings themselves are benchmarks, not tests)."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import pytest

from dpbench.commands.bench import _ratios
from dpbench.ops import dnc_bench
from dpbench.ops.dnc_bench import (Config, Row, bandwidth_floor, link_stream_floor, link_traffic,
                                   stream_floor_row)


def _row(cfg: Config, impl: str, mode: str, ms: float) -> Row:
    return Row(asdict(cfg), impl, mode, median_ms=ms)


def test_graph_rows_are_compared_with_the_graph_reference():
    cfg = Config(2, 8)
    rows = [_row(cfg, "reference", "train", 100.0), _row(cfg, "fused", "train", 10.0),
            _row(cfg, "reference+graph", "train", 40.0), _row(cfg, "fused+graph", "train", 5.0)]
    speedup = {(d["impl"], d["mode"]): d["speedup_vs_reference"] for d in _ratios(rows)}
    assert speedup[("fused", "train")] == pytest.approx(10.0)
    assert speedup[("fused+graph", "train")] == pytest.approx(8.0)   # 40 / 5, not 100 / 5


def test_bandwidth_floor_counts_link_bytes_over_the_sequence():
    cfg = Config(16, 256, steps=64)
    nn = 16 * 256 * 256 * 4
    assert link_traffic(cfg)["forward_min_bytes"] == 2 * nn
    out = bandwidth_floor(cfg, 2e12, [_row(cfg, "fused", "train", 2.0),
                                      _row(cfg, "fused+graph", "forward", 1.0)])
    floor_train = 64 * 5 * nn / 2e12 * 1e3
    assert out["floor_train_ms"] == pytest.approx(floor_train)
    assert out["fused_train_over_floor"] == pytest.approx(2.0 / floor_train)
    assert out["fused_graph_forward_over_floor"] == pytest.approx(1.0 / (64 * 2 * nn / 2e12 * 1e3))
    assert out["fused_forward_ms"] is None and out["fused_graph_train_over_floor"] is None


def test_stream_floor_row_divides_the_fused_times_by_the_floor():
    cfg, other = Config(16, 256), Config(16, 64)
    floor = {"forward_ms": 40.0, "backward_ms": 30.0, "train_ms": 70.0}
    rows = [_row(cfg, "fused", "train", 175.0), _row(cfg, "reference", "train", 900.0),
            _row(other, "fused", "forward", 1.0)]
    out = stream_floor_row(cfg, floor, rows)
    assert out["fused_train_over_floor"] == pytest.approx(2.5)
    assert out["fused_forward_ms"] is None and out["fused_forward_over_floor"] is None
    assert stream_floor_row(cfg, None, rows)["fused_train_over_floor"] is None


def test_link_stream_floor_streams_the_links_and_stops_at_its_memory_cap(monkeypatch):
    cfg = Config(2, 16, steps=4)
    floor = link_stream_floor(cfg, repeats=2)
    assert floor["forward_ms"] > 0 and floor["backward_ms"] > 0
    assert floor["train_ms"] == pytest.approx(floor["forward_ms"] + floor["backward_ms"])
    monkeypatch.setattr(dnc_bench, "STREAM_FLOOR_MAX_BYTES", 5 * 2 * 16 * 16 * 4 - 1)
    assert link_stream_floor(cfg) is None     # T + 1 = 5 links of 2·16·16 floats: one byte over


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpbench.cli", "bench", "dnc", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, fragment", [
    (["--impls", "fused+graph"], "needs --device cuda"),
    (["--impls", "eager"], "unknown impl 'eager'"),
    (["--slots", "x"], "expected comma-separated integers"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    out = _bench(*args)
    assert out.returncode == 2 and fragment in out.stderr
    assert len([ln for ln in out.stderr.splitlines() if ln.strip()]) == 1, out.stderr


def test_json_output_has_every_impl_mode_and_ratio():
    out = _bench("--batch", "2", "--slots", "5", "--steps", "3", "--repeats", "1",
                 "--impls", "reference,fused", "--no-memory", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    cells = {(r["impl"], r["mode"]): r for r in data["rows"]}
    assert set(cells) == {(i, m) for i in ("reference", "fused") for m in ("forward", "train")}
    assert all(r["median_ms"] > 0 and len(r["samples_ms"]) == 1 for r in cells.values())
    assert cells[("reference", "train")]["speedup_vs_reference"] == 1.0
    assert cells[("fused", "train")]["saved_mb"] > 0 and data["interrupted"] is False
    (floor,) = data["cpu"]["link_stream_floor"]
    assert floor["fused_train_over_floor"] == pytest.approx(
        cells[("fused", "train")]["median_ms"] / floor["floor"]["train_ms"])


def test_checkpointed_chunks_give_the_same_gradients_and_save_less():
    """``+ckpt`` recomputes chunks of ≈√T steps in the backward: identical gradients, fewer
    saved bytes (one link per chunk boundary instead of one per step)."""
    import torch

    from dpbench.ops.dnc_bench import make_interfaces, run_sequence, saved_bytes, step_function

    cfg = Config(2, 9, word=4, heads=2, steps=9)
    grads = {}
    for impl in ("reference", "reference+ckpt"):
        xs = make_interfaces(cfg, "cpu", grad=True, seed=3)
        run_sequence(step_function(impl), cfg, xs, "cpu", train=True)
        grads[impl] = torch.cat([t.grad.flatten() for x in xs for t in x])
    torch.testing.assert_close(grads["reference+ckpt"], grads["reference"], rtol=1e-5, atol=1e-6)
    xs = make_interfaces(cfg, "cpu", grad=True)
    plain = saved_bytes(step_function("reference"), cfg, xs, "cpu")
    chunked = saved_bytes(step_function("reference+ckpt"), cfg, xs, "cpu")
    assert chunked < plain / 3
