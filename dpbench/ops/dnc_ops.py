"""Typed wrappers, autograd and fake rules for the fused ``torch.ops.dpbench`` DNC ops.

The C++/CUDA library (``csrc/dnc``) defines two ops:

* ``dpbench::dnc_access_forward(16 inputs) -> (memory, usage, link, precedence,
  write_weights, read_weights, reads, aux)`` — one access step (semantics:
  :mod:`dpbench.ops.dnc_reference`); ``aux [B, (2 + 3R) N]`` packs the write content
  weighting, the allocation weighting and, per read head, the read content, forward and
  backward weightings (what the backward would otherwise recompute at O(R N²) cost);
* ``dpbench::dnc_access_backward(7 optional output grads, 16 inputs, new memory, new write
  weights, new read weights, aux) -> 16 input grads`` — the hand-written fused backward.

Saved for the backward: the 16 inputs (the previous state is the previous step's output, so in
a sequence nothing new of size N² is kept), the new memory/weights and ``aux``. The new link
matrix is recomputed row by row inside the backward, never saved.

:func:`register` attaches ``torch.library.register_autograd`` and ``register_fake`` once the
library is loaded (``dpbench.ops._loader`` calls it), so ``torch.compile`` can trace the op.
"""
from __future__ import annotations

import torch
from torch import Tensor

from dpbench.ops.dnc_reference import DNCInterface, DNCState

FORWARD = "dpbench::dnc_access_forward"
BACKWARD = "dpbench::dnc_access_backward"
N_INPUTS = len(DNCState._fields) + len(DNCInterface._fields)   # 16
N_GRADS = 7                                                     # new state (6) + reads
_registered = False


def _fake_forward(memory, usage, link, precedence, write_weights, read_weights, read_keys,
                  *rest):
    b, n, w = memory.shape
    r = read_weights.shape[1]
    return (memory.new_empty(b, n, w), usage.new_empty(b, n), link.new_empty(b, n, n),
            precedence.new_empty(b, n), write_weights.new_empty(b, n),
            read_weights.new_empty(b, r, n), read_keys.new_empty(b, r, w),
            memory.new_empty(b, (2 + 3 * r) * n))


def _fake_backward(*args):
    inputs = args[N_GRADS:N_GRADS + N_INPUTS]
    return [torch.empty_like(t) for t in inputs]


def _setup_context(ctx, inputs, output) -> None:
    memory, _, _, _, write_weights, read_weights, _, aux = output
    ctx.save_for_backward(*inputs, memory, write_weights, read_weights, aux)
    ctx.set_materialize_grads(False)
    ctx.mark_non_differentiable(aux)


def _backward(ctx, *grads):
    saved = ctx.saved_tensors
    grads = grads[:N_GRADS]
    return tuple(torch.ops.dpbench.dnc_access_backward(*grads, *saved))


def register() -> None:
    """Attach the autograd and fake rules to the loaded ops (idempotent)."""
    global _registered
    if _registered:
        return
    torch.library.register_fake(FORWARD)(_fake_forward)
    torch.library.register_fake(BACKWARD)(_fake_backward)
    torch.library.register_autograd(FORWARD, _backward, setup_context=_setup_context)
    _registered = True


def fused_access_step(state: DNCState, interface: DNCInterface) -> tuple[DNCState, Tensor]:
    """One access step on the fused kernels; same contract as the reference.

    Shapes as in :class:`DNCState` / :class:`DNCInterface`; returns the new state and the read
    vectors ``[B, R, W]``. float32 and float64 only.
    """
    out = torch.ops.dpbench.dnc_access_forward(*state, *interface)
    return DNCState(*out[:6]), out[6]
