"""The DNC memory-access step (Graves et al. 2016, Methods) forward + backward:
``dpbench.ops.dnc_access_step`` with ``impl="reference"`` and, when the extension loads,
``impl="fused"``. Shapes: batch 16, 32 slots, word 16, 2 read heads."""
from __future__ import annotations

import pytest
import torch

B, N, W, R = 16, 32, 16, 2


def _inputs(gen: torch.Generator):
    from dpbench.ops import DNCInterface, initial_state

    def rn(*s):
        return torch.randn(*s, generator=gen)

    def sig(*s):
        return torch.sigmoid(rn(*s))

    def oneplus(*s):
        return 1 + torch.nn.functional.softplus(rn(*s))

    state = initial_state(B, N, W, R)
    state = state._replace(memory=rn(B, N, W), usage=sig(B, N), read_weights=torch.softmax(rn(B, R, N), -1),
                           write_weights=torch.softmax(rn(B, N), -1))
    iface = DNCInterface(read_keys=rn(B, R, W), read_strengths=oneplus(B, R), write_key=rn(B, W),
                         write_strength=oneplus(B), erase=sig(B, W), write_vector=rn(B, W),
                         free_gates=sig(B, R), allocation_gate=sig(B), write_gate=sig(B),
                         read_modes=torch.softmax(rn(B, R, 3), -1))
    return state, iface


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_dnc_access_step(benchmark, impl):
    from dpbench.ops import dnc_access_step

    if impl == "fused":
        from dpbench.ops import _loader

        status = _loader.fused_status("cpu")
        if not status.available:
            pytest.skip(f"fused DNC kernels unavailable: {status.reason}")
    state, iface = _inputs(torch.Generator().manual_seed(0))
    iface = type(iface)(*[t.requires_grad_() for t in iface])

    def step() -> torch.Tensor:
        new_state, reads = dnc_access_step(state, iface, impl=impl)
        (reads.sum() + new_state.memory.sum()).backward()
        return reads

    benchmark.extra_info.update(impl=impl, batch=B, slots=N, word=W, read_heads=R)
    reads = benchmark(step)
    assert reads.shape == (B, R, W) and torch.isfinite(reads).all()
