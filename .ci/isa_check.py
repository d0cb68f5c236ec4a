"""Which of .ci/avx2.sh's caps take effect on this machine and torch build.

Each cap is set alone in a fresh interpreter; a library counts as capped when the results of
ops it computes change bit-for-bit (the rounding of 256-bit and 512-bit kernels differs) or it
reports the capped ISA itself. Prints one line per cap; exits 0 (it informs, it does not gate:
on an AVX2-only CPU nothing changes, correctly).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import hashlib, json, torch
torch.manual_seed(0)
h = lambda t: hashlib.sha1(t.detach().contiguous().numpy().tobytes()).hexdigest()[:10]
x = torch.randn(100003)
a, b = torch.randn(257, 513), torch.randn(513, 129)
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(),
                  "aten": h(torch.tanh(x)) + h(torch.sigmoid(x)),
                  "mkl": h(a @ b) + h(torch.exp(x))}))
"""

CAPS = {
    "ATEN_CPU_CAPABILITY=avx2": ("aten", {"ATEN_CPU_CAPABILITY": "avx2"}),
    "MKL_ENABLE_INSTRUCTIONS=AVX2": ("mkl", {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
}


def probe(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**env, **extra}, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def onednn_isa(extra: dict[str, str]) -> str:
    code = "import torch; torch.nn.LSTM(8, 32, batch_first=True)(torch.randn(4, 16, 8))"
    env = {**os.environ, "ONEDNN_VERBOSE": "1", **extra}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    err = res.stdout + res.stderr
    return next((ln.split("isa:", 1)[1].strip() for ln in err.splitlines() if "isa:" in ln), "not reported")


def main() -> int:
    base = probe({})
    print(f"isa_check: uncapped ATen capability {base['capability']}")
    for name, (key, extra) in CAPS.items():
        capped = probe(extra)
        took = capped[key] != base[key] or (key == "aten" and capped["capability"] != base["capability"])
        print(f"isa_check: {name:30s} {'takes effect' if took else 'no change (CPU already at or below AVX2?)'}"
              + (f" (ATen capability {capped['capability']})" if key == "aten" else ""))
    print(f"isa_check: {'ONEDNN_MAX_CPU_ISA=AVX2':30s} oneDNN reports isa: {onednn_isa({'ONEDNN_MAX_CPU_ISA': 'AVX2'})}"
          f" (uncapped: {onednn_isa({})})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
