"""Trial ids: stable across versions, so that ``--resume`` of an older run reruns nothing."""
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from dpbench.harness.suite import EvalConfig, TrainConfig, Trial, expand_trials, suite_from_dict

# config.json and the recorded trial ids of a run directory written by an earlier dpbench
BASELINE = Path(__file__).resolve().parent / "data" / "run-v1"


def _trial(train: TrainConfig = TrainConfig(), ev: EvalConfig = EvalConfig()) -> Trial:
    return Trial("lstm", {"hidden": 8}, "lorenz", {"length": 500}, 0, "cpu", train, ev, "b")


@dataclass(frozen=True)
class TrainConfigNext(TrainConfig):
    """TrainConfig as a later version might extend it."""

    schedule: str = "constant"
    patience: int = 0


def test_a_new_setting_at_its_default_keeps_the_id():
    assert _trial(TrainConfigNext()).trial_id == _trial().trial_id


def test_a_new_setting_off_its_default_changes_the_id():
    assert _trial(TrainConfigNext(schedule="cosine")).trial_id != _trial().trial_id
    assert _trial(TrainConfigNext(patience=3)).trial_id != _trial(TrainConfigNext(schedule="cosine")).trial_id


def test_every_original_setting_still_changes_the_id():
    base = _trial().trial_id
    assert _trial(TrainConfig(steps=301)).trial_id != base
    assert _trial(ev=EvalConfig(vpt_threshold=0.4)).trial_id != base


def test_the_committed_baseline_made_by_an_earlier_version_resumes_with_nothing_rerun(registry):
    """tests/data/run-v1 holds the configuration and trial ids of a run directory written by
    an earlier dpbench (the published default-cpu baseline of git 8aaa616); planning that stored
    configuration now must give exactly the ids it recorded."""
    config = json.loads((BASELINE / "config.json").read_text())
    recorded = {t["trial_id"] for t in json.loads((BASELINE / "results.json").read_text())["trials"]}
    trials, _ = expand_trials(suite_from_dict(config["suite"]), registry, cuda_available=False)
    assert trials and {t.trial_id for t in trials} == recorded
