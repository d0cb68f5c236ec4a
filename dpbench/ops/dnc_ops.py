"""Typed wrapper and fake rules for the fused ``torch.ops.dpbench`` DNC ops.

The C++/CUDA library (``csrc/dnc``) defines three ops; every one takes its tensors as one
``Tensor[]`` in :class:`DNCState` + :class:`DNCInterface` order (6 state, 10 interface tensors):

* ``dpbench::dnc_access(Tensor[16] inputs) -> Tensor[7]`` — one access step (semantics:
  :mod:`dpbench.ops.dnc_reference`): the new state (6) and the reads ``[B, R, W]``. Its
  autograd is a C++ ``torch::autograd::Function`` registered for the Autograd dispatch key
  (``csrc/dnc/dnc_access_autograd.h``): no Python runs per step, forward or backward;
* ``dpbench::dnc_access_forward(Tensor[16]) -> Tensor[8]`` — the forward kernel: new state,
  reads and ``aux [B, (3 + 4R) N]``, which packs the write content weighting, the allocation
  weighting and, per read head, the read content, forward and backward weightings (what the
  backward would otherwise recompute at O(R N²) cost), then the write and read cosines
  (O((R + 1) N W) that the CPU backward would recompute; the CUDA forward leaves them zero);
* ``dpbench::dnc_access_backward(Tensor?[7] grads, Tensor[20] saved) -> Tensor[16]`` — the
  hand-written fused backward; ``saved`` = the 16 inputs, new memory, new write weights, new
  read weights, aux.

and one op for a whole DNC sequence:

* ``dpbench::dnc_sequence(Tensor x, Tensor[6] weights, Tensor[9] init, bool
  usage_stop_gradient) -> Tensor`` — LSTM controller + interface layer + access over all
  ``T`` steps of ``x [B, T, D]`` from ``init`` (6 state tensors, ``h0``, ``c0`` ``[B, H]``,
  ``reads0 [B, R·W]``), returning the features ``[B, T, H + R·W]`` that
  :class:`dpbench.models._dnc.DNC` feeds its output head; its autograd is C++
  (``csrc/dnc/dnc_sequence_autograd.h``), so a training sequence runs no Python and records
  one autograd node. ``weights`` = the ``nn.LSTMCell``'s ``weight_ih, weight_hh, bias_ih,
  bias_hh`` and the interface layer's ``weight, bias`` (:func:`sequence_weights`).

Saved for the backward: the 16 inputs (the previous state is the previous step's output, so in
a sequence nothing new of size N² is kept), the new memory/weights and ``aux``. The new link
matrix is recomputed row by row inside the backward, never saved.

:func:`register` attaches ``torch.library.register_fake`` rules once the library is loaded
(``dpbench.ops._loader`` calls it), so ``torch.compile`` and ``opcheck`` can trace the ops.
"""
from __future__ import annotations

import torch
from torch import Tensor

from dpbench.ops.dnc_reference import DNCInterface, DNCState

ACCESS = "dpbench::dnc_access"
FORWARD = "dpbench::dnc_access_forward"
BACKWARD = "dpbench::dnc_access_backward"
SEQUENCE = "dpbench::dnc_sequence"
N_STATE = len(DNCState._fields)                       # 6
N_INPUTS = N_STATE + len(DNCInterface._fields)        # 16
N_GRADS = N_STATE + 1                                 # new state (6) + reads
_registered = False


def _fake_access(inputs: list[Tensor]) -> list[Tensor]:
    """New state like the old one (same shapes), reads ``[B, R, W]`` like the read keys."""
    return [t.new_empty(t.shape) for t in inputs[:N_STATE]] + [inputs[N_STATE].new_empty(
        inputs[N_STATE].shape)]


def _fake_forward(inputs: list[Tensor]) -> list[Tensor]:
    memory, read_weights = inputs[0], inputs[5]
    b, n, _ = memory.shape
    r = read_weights.shape[1]
    return _fake_access(inputs) + [memory.new_empty(b, (3 + 4 * r) * n)]


def _fake_backward(grads: list, saved: list[Tensor]) -> list[Tensor]:
    return [torch.empty_like(t) for t in saved[:N_INPUTS]]


def _fake_sequence(x: Tensor, weights: list[Tensor], init: list[Tensor],
                   usage_stop_gradient: bool) -> Tensor:
    """Features ``[B, T, H + R·W]``: H from ``w_hh [4H, H]``, R·W from ``reads0``."""
    return x.new_empty(x.shape[0], x.shape[1], weights[1].shape[1] + init[8].shape[1])


def register() -> None:
    """Attach the fake rules to the loaded ops (idempotent)."""
    global _registered
    if _registered:
        return
    torch.library.register_fake(ACCESS)(_fake_access)
    torch.library.register_fake(FORWARD)(_fake_forward)
    torch.library.register_fake(BACKWARD)(_fake_backward)
    torch.library.register_fake(SEQUENCE)(_fake_sequence)
    _registered = True


def fused_access_step(state: DNCState, interface: DNCInterface) -> tuple[DNCState, Tensor]:
    """One access step on the fused kernels; same contract as the reference.

    Shapes as in :class:`DNCState` / :class:`DNCInterface`; returns the new state and the read
    vectors ``[B, R, W]``. float32 and float64 only.
    """
    out = torch.ops.dpbench.dnc_access([*state, *interface])
    return DNCState(*out[:N_STATE]), out[N_STATE]


def fused_sequence(x: Tensor, weights: list[Tensor], init: list[Tensor],
                   usage_stop_gradient: bool = False) -> Tensor:
    """A whole DNC sequence on the fused op (see the module docstring): ``x [B, T, D]``,
    ``weights`` (6, :func:`sequence_weights`), ``init`` (9: state, ``h0``, ``c0``, ``reads0``)
    → features ``[B, T, H + R·W]``. float32 and float64, CPU."""
    return torch.ops.dpbench.dnc_sequence(x, weights, init, usage_stop_gradient)


def sequence_weights(controller: torch.nn.LSTMCell, interface: torch.nn.Linear) -> list[Tensor]:
    """The 6 weight tensors of :func:`fused_sequence`, in its order."""
    return [controller.weight_ih, controller.weight_hh, controller.bias_ih, controller.bias_hh,
            interface.weight, interface.bias]
