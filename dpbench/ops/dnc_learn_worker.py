"""Subprocess body of ``dpbench bench dnc-learn --parallel``: one LearnConfig (JSON in argv)
→ its LearnResult as one JSON line on stdout; progress on stderr. The first SIGINT ends the
run (``stopped_by="interrupted"``); later ones (a terminal's Ctrl-C reaches the whole process
group, and the parent passes its own on) are ignored, so the result is always printed."""
from __future__ import annotations

import json
import signal
import sys
from dataclasses import asdict

from dpbench.ops.dnc_learn import LearnConfig, train_to_target

def _first_interrupt(signum, frame):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _first_interrupt)
    cfg = LearnConfig(**json.loads(sys.argv[1]))
    result = train_to_target(cfg, log=lambda m: print(f"dpbench bench: {m}", file=sys.stderr,
                                                      flush=True))
    print(json.dumps(asdict(result)))
