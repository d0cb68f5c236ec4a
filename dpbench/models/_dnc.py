"""Differentiable Neural Computer (Graves et al. 2016, Nature 538, Methods; seed §3.2, ref. [8]).

Per time step ``t`` (Methods, "Controller network"):

* controller input ``χ_t = [x_t; r^1_{t−1}; …; r^R_{t−1}]`` into an LSTM → ``h_t``;
* interface vector ``ξ_t = W_ξ h_t``, split and activated by :class:`InterfaceLayer`
  into a :class:`~dpbench.ops.DNCInterface` (oneplus strengths, sigmoid gates, softmax
  read modes);
* one memory access ``(state_t, r_t) = dnc_access_step(state_{t−1}, interface_t, impl)``
  (:mod:`dpbench.ops`; content addressing, dynamic allocation, temporal links);
* output ``y_t = W_y [h_t; r^1_t; …; r^R_t]`` (the paper's ``υ_t + W_r[r_t]`` as one
  linear map), through :class:`~dpbench.models._heads.OutputHead`.

Paper-vs-code choices are listed in docs/memory.md and in :mod:`dpbench.ops.dnc_reference`.
"""
from __future__ import annotations

import torch
import torch.utils.checkpoint
from torch import nn

from dpbench.models._heads import OutputHead
from dpbench.ops import (IMPLS, DNCInterface, DNCState, dnc_access_step, fused_sequence,
                         fused_sequence_usable, initial_state, sequence_weights)


def oneplus(x: torch.Tensor) -> torch.Tensor:
    """``1 + softplus(x)`` ∈ [1, ∞) — the paper's key-strength activation (Methods)."""
    return 1.0 + nn.functional.softplus(x)


class InterfaceLayer(nn.Module):
    """``h [B, H]`` → :class:`DNCInterface` (Graves et al. 2016, Methods, "Interface parameters").

    ``ξ = W_ξ h`` is split into ``[k^r; β̂^r; k^w; β̂^w; ê; v; f̂; ĝ^a; ĝ^w; π̂]`` (the paper's
    order); ``β = oneplus(β̂)``, ``e, f, g^a, g^w = σ(·)``, ``π = softmax`` over the three
    modes (backward, content, forward); keys and the write vector stay linear.
    """

    def __init__(self, hidden: int, word_size: int, read_heads: int):
        super().__init__()
        self.word_size, self.read_heads = word_size, read_heads
        w, r = word_size, read_heads
        self.sizes = [r * w, r, w, 1, w, w, r, 1, 1, 3 * r]
        self.linear = nn.Linear(hidden, sum(self.sizes))

    def forward(self, h: torch.Tensor) -> DNCInterface:
        b, w, r = h.shape[0], self.word_size, self.read_heads
        (read_keys, read_strengths, write_key, write_strength, erase, write_vector,
         free_gates, allocation_gate, write_gate, read_modes) = torch.split(
            self.linear(h), self.sizes, dim=-1)
        return DNCInterface(
            read_keys=read_keys.reshape(b, r, w),
            read_strengths=oneplus(read_strengths),
            write_key=write_key,
            write_strength=oneplus(write_strength).squeeze(-1),
            erase=torch.sigmoid(erase),
            write_vector=write_vector,
            free_gates=torch.sigmoid(free_gates),
            allocation_gate=torch.sigmoid(allocation_gate).squeeze(-1),
            write_gate=torch.sigmoid(write_gate).squeeze(-1),
            read_modes=torch.softmax(read_modes.reshape(b, r, 3), dim=-1),
        )


class DNC(nn.Module):
    """LSTM-controlled DNC with one write head and ``read_heads`` read heads.

    The memory state starts all-zero for every window (``initial_state``), as do the
    controller state and the first read vectors. Defaults (16 slots, words of 8, 2 read
    heads) are smaller than deepmind/dnc's ``train.py`` (16 × 16, 4 read heads) so that the
    memory-side parameters leave room for the controller at dpbench's parameter budgets.
    ``usage_stop_gradient=True`` detaches ``w^w_{t−1}`` in the usage update as deepmind/dnc
    does (default: the exact gradient of the paper's equations). ``impl`` is handed to
    :func:`dpbench.ops.dnc_access_step` unchanged (one of :data:`dpbench.ops.IMPLS`).
    ``checkpoint=k > 0`` runs the steps in chunks of k under ``torch.utils.checkpoint`` when
    gradients are on: the backward recomputes each chunk, so training keeps ≈ T/k + k link
    matrices [B, N, N] instead of T (same outputs and gradients, one more forward pass).

    ``fused_sequence=True`` (default) runs a whole sequence as one op when ``impl`` is fused
    (or auto with the extension loaded) on CPU and neither diagnostics nor checkpointing are
    asked for: :func:`dpbench.ops.fused_sequence`, controller + interface + access with its
    autograd in C++ (same equations; one autograd node instead of ~30 per step).
    ``fused_sequence=False`` keeps the controller and interface in Python around the per-step
    fused op (to measure what the sequence op pays).

    ``cuda_graph=True`` (CUDA, ``impl="fused"``; UNVERIFIED on a GPU so far) captures the whole
    step loop of a training forward and its backward in CUDA graphs with
    ``torch.cuda.make_graphed_callables``, once per input shape and dtype, and replays them:
    the host then launches one graph instead of ~30 ops per step. Shapes must stay static per
    capture; without gradients, diagnostics or checkpointing the loop runs eagerly.

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``; diagnostics
    ``"read_weights" [B, T, R, N]``, ``"write_weights" [B, T, N]``, ``"usage" [B, T, N]``.
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, hidden_size: int = 64, memory_slots: int = 16, word_size: int = 8,
        read_heads: int = 2, impl: str = "reference", usage_stop_gradient: bool = False,
        checkpoint: int = 0, cuda_graph: bool = False, fused_sequence: bool = True,
    ):
        super().__init__()
        if min(hidden_size, memory_slots, word_size, read_heads) < 1:
            raise ValueError("dnc needs hidden_size, memory_slots, word_size, read_heads >= 1")
        if impl not in IMPLS:
            raise ValueError(f"dnc impl {impl!r} not in {IMPLS}")
        if checkpoint < 0:
            raise ValueError(f"dnc checkpoint must be >= 0 (0: off), got {checkpoint}")
        self.checkpoint, self.cuda_graph = checkpoint, cuda_graph
        self.fused_sequence = fused_sequence
        self._graphed: dict = {}    # (shape, dtype, device) -> graphed sequence callable
        self.memory_slots, self.word_size, self.read_heads = memory_slots, word_size, read_heads
        self.impl, self.usage_stop_gradient = impl, usage_stop_gradient
        self.controller = nn.LSTMCell(input_size + read_heads * word_size, hidden_size)
        self.interface = InterfaceLayer(hidden_size, word_size, read_heads)
        self.head = OutputHead(hidden_size + read_heads * word_size, output_size, output_steps, task)

    def initial_state(self, batch: int, like: torch.Tensor) -> DNCState:
        return initial_state(batch, self.memory_slots, self.word_size, self.read_heads,
                             dtype=like.dtype, device=like.device)

    def forward(self, x: torch.Tensor, diagnostics: dict | None = None) -> torch.Tensor:
        batch, steps = x.shape[0], x.shape[1]
        h = x.new_zeros(batch, self.controller.hidden_size)
        carry = (*self.initial_state(batch, x), h, torch.zeros_like(h),
                 x.new_zeros(batch, self.read_heads * self.word_size))
        trace: list | None = [] if diagnostics is not None else None
        if (self.fused_sequence and trace is None and not self.checkpoint
                and fused_sequence_usable(self.impl, x)):
            return self.head(fused_sequence(
                x, sequence_weights(self.controller, self.interface.linear), list(carry),
                self.usage_stop_gradient))
        if (self.cuda_graph and x.is_cuda and torch.is_grad_enabled() and trace is None
                and not self.checkpoint):
            return self.head(self._graphed_sequence(x)(x))
        recompute = bool(self.checkpoint) and torch.is_grad_enabled() and trace is None
        chunk = self.checkpoint if recompute else max(steps, 1)
        features = []
        for t0 in range(0, steps, chunk):
            if recompute:   # the backward reruns the chunk instead of keeping its tensors
                *carry, feats = torch.utils.checkpoint.checkpoint(
                    self._steps, x[:, t0:t0 + chunk], *carry, use_reentrant=False)
            else:
                *carry, feats = self._steps(x[:, t0:t0 + chunk], *carry, trace=trace)
            features.append(feats)
        if diagnostics is not None:
            for key, values in zip(("read_weights", "write_weights", "usage"), zip(*trace)):
                diagnostics[key] = torch.stack(values, dim=1)
        return self.head(torch.cat(features, dim=1))

    def _graphed_sequence(self, x: torch.Tensor):
        """The step loop over ``x [B, T, D]`` (from the zero state) → features ``[B, T, H+R·W]``
        as a CUDA-graphed callable, captured on first use for this shape (forward + backward)."""
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in self._graphed:
            loop = _SequenceLoop(self)
            sample = torch.zeros_like(x).requires_grad_(x.requires_grad)
            self._graphed[key] = torch.cuda.make_graphed_callables(loop, (sample,))
        return self._graphed[key]

    def _steps(self, xs: torch.Tensor, *carry: torch.Tensor, trace: list | None = None):
        """Steps over ``xs [B, k, D]`` from ``carry`` = (6 memory-state tensors, h, c, reads);
        returns the new carry and the features ``[B, k, H + R·W]``."""
        state, (h, c, reads) = DNCState(*carry[:6]), carry[6:]
        features = []
        for t in range(xs.shape[1]):
            h, c = self.controller(torch.cat([xs[:, t], reads], dim=-1), (h, c))
            if self.usage_stop_gradient:
                state = state._replace(write_weights=state.write_weights.detach())
            state, read_vectors = dnc_access_step(state, self.interface(h), impl=self.impl)
            reads = read_vectors.flatten(1)
            features.append(torch.cat([h, reads], dim=-1))
            if trace is not None:
                trace.append((state.read_weights.detach(), state.write_weights.detach(),
                              state.usage.detach()))
        return (*state, h, c, reads, torch.stack(features, dim=1))


class _SequenceLoop(nn.Module):
    """``x [B, T, D]`` → the DNC's features ``[B, T, H + R·W]`` from the zero state: the part of
    :meth:`DNC.forward` that ``cuda_graph=True`` captures (the DNC's parameters, not a copy)."""

    def __init__(self, dnc: DNC):
        super().__init__()
        self.controller, self.interface = dnc.controller, dnc.interface
        object.__setattr__(self, "dnc", dnc)   # not a submodule: no parameter counted twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dnc, batch = self.dnc, x.shape[0]
        h = x.new_zeros(batch, dnc.controller.hidden_size)
        carry = (*dnc.initial_state(batch, x), h, torch.zeros_like(h),
                 x.new_zeros(batch, dnc.read_heads * dnc.word_size))
        return dnc._steps(x, *carry)[-1]


def build_dnc(**kwargs) -> DNC:
    return DNC(**kwargs)
