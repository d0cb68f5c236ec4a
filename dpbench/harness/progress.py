"""Live progress of a run: a redrawn display on a terminal, plain lines in logs.

On a terminal (``rich``): an overall bar with trials done / total, elapsed time and an ETA
(elapsed ÷ trials done here × trials left), and below it the current trial with its
training step, loss and best validation loss, all redrawn in place.

Elsewhere (CI logs, ``2> file``): one line when a trial starts and one when it ends, each
with the elapsed time and ETA, and a heartbeat line whenever nothing was printed for
``heartbeat`` seconds (default 30) while a trial runs: a long trial is never silent.

``rich`` rather than ``tqdm``: the display has two live lines (the bar and the current
trial's fields) and ``rich`` redraws such a group from its own refresh thread, so the
elapsed time and ETA keep moving between the training loop's reports; ``rich.Console``
also tells a terminal from a pipe and can be forced either way in tests.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from dpbench.harness.suite import Trial
    from dpbench.results import TrialResult

HEARTBEAT_S = 30.0
#: the metric shown when a trial ends, the first one present
HEADLINE_METRICS = ("vpt_lyapunov", "accuracy", "nrmse_1step", "mse")


def clock(seconds: float) -> str:
    """``h:mm:ss`` (``--:--`` for an unknown time)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def headline(result: TrialResult) -> str:
    """``status metric=value`` of a finished trial."""
    m = result.metrics
    key = next((k for k in HEADLINE_METRICS if m.get(k) is not None), None)
    what = f" {key}={m[key]:.3g}" if key else ""
    status = result.status if result.status == "ok" else f"{result.status.upper()}: {result.error}"
    return f"{status}{what}"


class Progress:
    """Progress of ``total`` distinct trials (``done_before`` of them finished earlier).

    The runner calls :meth:`start` when a trial starts, :meth:`step` from the training
    loop (``step, loss, best_val``) and :meth:`done` with its result; :meth:`close` at the
    end. ``console`` is a ``rich.console.Console`` (default: one on ``stream``, stderr);
    ``quiet`` prints nothing.
    """

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False,
                 done_before: int = 0, heartbeat: float = HEARTBEAT_S, console: Any = None):
        self.total, self.quiet, self.heartbeat = total, quiet, heartbeat
        self.done_count, self.done_before = done_before, done_before
        self.index, self.label, self.steps = 0, "", 0
        self.step_info: tuple[int, float, float] | None = None
        self.started = self.trial_started = self.last_print = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._live = None
        self.tty = False
        if quiet:
            return
        if console is None:
            from rich.console import Console

            console = Console(file=stream or sys.stderr, highlight=False)
        self.console = console
        self.tty = bool(console.is_terminal)
        if self.tty:
            self._start_live()
        else:
            self._beat = threading.Thread(target=self._heartbeat_loop, name="dpbench-heartbeat", daemon=True)
            self._beat.start()

    # ---- timing ---------------------------------------------------------------------
    def eta(self) -> float:
        """Seconds left: mean time per trial run in this session × trials left."""
        ran = self.done_count - self.done_before
        if ran <= 0:
            return math.nan
        return (time.monotonic() - self.started) / ran * (self.total - self.done_count)

    def _times(self) -> str:
        return f"elapsed {clock(time.monotonic() - self.started)}, ETA {clock(self.eta())}"

    def _trial_state(self) -> str:
        if self.step_info is None:
            return "starting"
        step, loss, best = self.step_info
        text = f"step {step}/{self.steps} loss {loss:.3g}"
        return text + (f" best val {best:.3g}" if math.isfinite(best) else "")

    # ---- events ---------------------------------------------------------------------
    def start(self, index: int, trial: Trial) -> None:
        with self._lock:
            self.index, self.label, self.steps = index, trial.label, trial.train.steps
            self.step_info, self.trial_started = None, time.monotonic()
            self.last_print = self.trial_started  # the start line is about to print: no beat before it
        if self.quiet:
            return
        if self.tty:
            self._refresh()
        else:
            self._print(f"[{index}/{self.total}] {self.label} ... ({self._times()})")

    def step(self, step: int, loss: float, best_val: float = math.nan) -> None:
        with self._lock:
            self.step_info = (step, float(loss), float(best_val))
        if self.tty and not self.quiet:
            self._refresh()

    def done(self, trial: Trial, result: TrialResult, copies: int = 0) -> None:
        with self._lock:
            self.done_count += 1
            seconds = time.monotonic() - self.trial_started
        if self.quiet:
            return
        shared = f", also reported in {copies} more block(s)" if copies else ""
        text = (f"[{self.index}/{self.total}] {trial.label}: {headline(result)} "
                f"({clock(seconds)}{shared}; {self._times()})")
        if self.tty:
            self._live.console.print(text, markup=False, highlight=False, soft_wrap=True)
            self._refresh()
        else:
            self._print(text)

    def close(self) -> None:
        self._stop.set()
        if self._live is not None:
            self._refresh()
            self._live.stop()
            self._live = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- plain lines ----------------------------------------------------------------
    def _print(self, text: str) -> None:
        with self._lock:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
            self.console.file.flush()
            self.last_print = time.monotonic()

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat / 4)):
            with self._lock:  # decide and compose on one consistent state
                if not self.label or time.monotonic() - self.last_print < self.heartbeat:
                    continue
                in_trial = clock(time.monotonic() - self.trial_started)
                text = (f"  ... [{self.index}/{self.total}] {self.label}: {self._trial_state()}, "
                        f"{in_trial} in this trial ({self._times()})")
            self._print(text)

    # ---- terminal -------------------------------------------------------------------
    def _start_live(self) -> None:
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[times]}"),
                        console=self.console)
        self._task = self._bar.add_task("trials", total=self.total, completed=self.done_count, times="")
        self._live = Live(self._render(), console=self.console, refresh_per_second=2,
                          get_renderable=self._render, transient=False)
        self._live.start()

    def _render(self):
        from rich.console import Group
        from rich.text import Text

        self._bar.update(self._task, completed=self.done_count, times=self._times())
        current = Text(f"[{self.index}/{self.total}] {self.label}  {self._trial_state()}", overflow="ellipsis",
                       no_wrap=True) if self.label else Text("")
        return Group(self._bar.get_renderable(), current)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()
