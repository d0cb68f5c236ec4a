"""Built-in cost and bookkeeping values of a trial (filled by the harness, not computed
from predictions): parameter count, training / inference throughput (sequences/s, median
of the timed repeats; raw repeats in ``samples``), peak memory, losses and times.

The throughput gate of ``dpbench compare`` (one-sided Mann–Whitney U on the pooled
repeats with a factor threshold, as asv does) applies to the metrics with
``gate="throughput"``."""
from __future__ import annotations

from dpbench.hookspecs import hookimpl
from dpbench.specs import MetricSpec

HARNESS = "dpbench harness (docs/reports.md)"


def _cost(name: str, title: str, description: str, higher: bool | None, gate: str = "none",
          table: str = "cost", order: int = 100) -> MetricSpec:
    return MetricSpec(name, title, description, HARNESS, higher_is_better=higher, needs=("model",),
                      gate=gate, table=table, order=order)


SPECS = (
    _cost("param_count", "params", "trainable parameters of the sized model", None, order=10),
    _cost("train_seq_per_s", "train seq/s", "training sequences per second (median of timed chunks)", True,
          gate="throughput", order=20),
    _cost("infer_seq_per_s", "infer seq/s", "batched inference sequences per second (median of repeats)", True,
          gate="throughput", order=30),
    _cost("peak_memory_mb", "step memory (MB)", "memory of one training step (CPU: profiled; CUDA: allocator "
          "peak; README)", False, order=40),
    _cost("budget_ok", "within budget", "1 when the parameter count is within the budget tolerance", None,
          table="none"),
    _cost("best_val_loss", "best validation loss", "lowest validation loss during training", None, table="none"),
    _cost("final_train_loss", "final training loss", "training loss at the last step", None, table="none"),
    _cost("train_time_s", "training time (s)", "wall time of training", None, table="none"),
    _cost("wall_time_s", "wall s", "wall time of the whole trial", None, table="budget", order=30),
    # The optimisation effort (training protocol v2, README "Protocol"): shown after the
    # accuracy columns (table "budget", never marked best) so that accuracy is read at equal effort.
    _cost("steps_run", "steps", "optimisation steps run (early stopping can end before the cap)", None,
          table="budget", order=10),
    _cost("sequences_seen", "sequences seen", "training sequences processed (steps x batch; fitted: windows)",
          None, table="budget", order=20),
    _cost("converged", "converged", "1 when the trial met the convergence rule (harness/train.py)", None,
          table="none"),
    _cost("stopped_early", "stopped early", "1 when early stopping ended training before the cap", None,
          table="none"),
    _cost("best_step", "best step", "step of the best validation loss (the checkpoint scored)", None,
          table="none"),
    _cost("tuning_trials", "tuning trials", "Optuna trials of this trial's study", None, table="none"),
    _cost("tuning_wall_s", "tuning wall s", "wall time of this trial's tuning study", None, table="none"),
    _cost("tuning_steps", "tuning steps", "optimisation steps of all tuning trials of the study", None,
          table="none"),
    _cost("tuning_sequences", "tuning sequences", "training sequences of all tuning trials of the study", None,
          table="none"),
    _cost("fixed_param_count", "fixed params", "fixed (not trained or fitted) weights, e.g. a reservoir's; "
          "outside the parameter budget", None, table="none"),
)


@hookimpl
def dpbench_register_metrics(register) -> None:
    for spec in SPECS:
        register(spec)
