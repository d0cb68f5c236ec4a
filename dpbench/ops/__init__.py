"""The DNC memory-access op: pure-PyTorch reference and fused C++/CUDA kernels.

``dnc_access_step(state, interface, impl=...)`` dispatches between

* ``"reference"`` — :func:`dpbench.ops.dnc_reference.dnc_access_step` (autograd over small ops);
* ``"fused"`` — the ``torch.ops.dpbench`` extension (fused forward + hand-written backward);
  raises :class:`RuntimeError` naming the reason when the extension is unavailable;
* ``"auto"`` — fused when the extension is available for the tensors' device, else the
  reference, with a one-line warning (issued once per device type and dtype). The kernels
  take float32 and float64.

See ``docs/kernels.md`` for the build and the fallback chain (prebuilt → JIT → reference).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from dpbench.ops.dnc_reference import DNCInterface, DNCState, initial_state
from dpbench.ops.dnc_reference import dnc_access_step as reference_access_step
from dpbench.ops import _loader  # noqa: E402 - after the reference (no cycle)
from dpbench.ops.dnc_ops import fused_access_step, fused_sequence, sequence_weights  # noqa: E402

__all__ = ["DNCState", "DNCInterface", "initial_state", "dnc_access_step", "IMPLS",
           "fused_sequence", "sequence_weights", "fused_sequence_usable"]

IMPLS = ("reference", "fused", "auto")
_warned: set[tuple[str, torch.dtype]] = set()


def fused_sequence_usable(impl: str, x: Tensor) -> bool:
    """Whether a DNC with ``impl`` can run the whole sequence ``x`` on
    :func:`~dpbench.ops.dnc_ops.fused_sequence`: ``impl`` is ``"fused"`` or ``"auto"``, ``x``
    is a float32/float64 CPU tensor and the extension is loaded (otherwise the per-step path
    decides: the reference, a warning, or ``"fused"``'s error)."""
    return impl in ("fused", "auto") and x.device.type == "cpu" and not _unfused_reason(x)


def _unfused_reason(t: Tensor) -> str:
    """Why the fused kernels cannot take ``t``'s device type and dtype ("" when they can)."""
    status = _loader.fused_status(t.device.type)
    if not status.available:
        return status.reason
    return "" if t.dtype in (torch.float32, torch.float64) else f"{t.dtype} (kernels: float32/float64)"


def dnc_access_step(state: DNCState, interface: DNCInterface,
                    impl: str = "reference") -> tuple[DNCState, Tensor]:
    """One DNC access step; returns the new state and read vectors ``[B, R, W]``.

    ``impl`` is one of :data:`IMPLS` (see the module docstring).
    """
    if impl == "reference":
        return reference_access_step(state, interface)
    if impl not in IMPLS:
        raise ValueError(f"impl {impl!r} not in {IMPLS}")
    device_type, dtype = state.memory.device.type, state.memory.dtype
    reason = _unfused_reason(state.memory)
    if not reason:
        return fused_access_step(state, interface)
    if impl == "fused":
        raise RuntimeError(f"fused DNC kernels unavailable on {device_type}: {reason}")
    if (device_type, dtype) not in _warned:
        _warned.add((device_type, dtype))
        warnings.warn(f"dpbench: fused DNC kernels unavailable on {device_type} ({reason}); "
                      "using the reference", RuntimeWarning, stacklevel=2)
    return reference_access_step(state, interface)
