"""The harness: suites → trials → training and scoring → results.

Data flows one way: ``suite`` (what to run) → ``trial`` (one cell: ``budget`` sizes the
model, ``train`` trains it, ``evaluate`` scores it, ``timing`` measures it) → ``runner``
(isolation, durable writing, progress) → ``summary``. The harness never imports a
concrete model or dataset: it goes through the registry.
"""
from dpbench.harness.runner import run_suite
from dpbench.harness.suite import Suite, Trial, expand_trials, load_suite
from dpbench.harness.trial import run_trial

__all__ = ["run_suite", "run_trial", "load_suite", "expand_trials", "Suite", "Trial"]
