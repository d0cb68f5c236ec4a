"""Subprocess body of ``dpbench bench dnc-learn --parallel``: one LearnConfig (JSON in argv)
→ its LearnResult as one JSON line on stdout; progress on stderr."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict

from dpbench.ops.dnc_learn import LearnConfig, train_to_target

if __name__ == "__main__":
    cfg = LearnConfig(**json.loads(sys.argv[1]))
    result = train_to_target(cfg, log=lambda m: print(f"dpbench bench: {m}", file=sys.stderr,
                                                      flush=True))
    print(json.dumps(asdict(result)))
