"""Pure-PyTorch reference of one DNC memory-access step (Graves et al. 2016, Methods).

This is the ground truth the fused kernels (``csrc/dnc``) are tested against. It is written
with plain batched tensor ops so that torch's autograd gives its gradient.

Shapes: ``B`` batch, ``N`` memory slots, ``W`` word size, ``R`` read heads; one write head.

Step order (as in Graves et al. 2016, Methods, and deepmind/dnc ``access.py``/``addressing.py``):

1. usage (Methods, "Dynamic memory allocation")::

       ψ   = Π_r (1 − f_r ∘ w^r_{t−1,r})
       u_t = (u_{t−1} + w^w_{t−1} − u_{t−1} ∘ w^w_{t−1}) ∘ ψ

2. allocation: ``u ← ε + (1 − ε) u`` (ε = 1e−6), ``φ = argsort(u)`` ascending, and
   ``a[φ_j] = (1 − u[φ_j]) Π_{i<j} u[φ_i]``;
3. write content weighting on the *old* memory ``M_{t−1}``:
   ``c^w = softmax_i(β^w · cos(k^w, M_{t−1}[i]))``;
4. write weighting ``w^w = g^w (g^a a + (1 − g^a) c^w)``; erase/add
   ``M_t = M_{t−1} ∘ (1 − w^w eᵀ) + w^w vᵀ``;
5. temporal link ``L_t[i,j] = (1 − w_i − w_j) L_{t−1}[i,j] + w_i p_{t−1}[j]`` with the
   diagonal set to exactly 0; precedence ``p_t = (1 − Σ_i w_i) p_{t−1} + w``;
6. forward ``f_r = L_t w^r_{t−1,r}``, backward ``b_r = L_tᵀ w^r_{t−1,r}``; read content on the
   *new* memory, ``c^r_r = softmax_i(β_r cos(k_r, M_t[i]))``;
   ``w^r_r = π_r[0] b_r + π_r[1] c^r_r + π_r[2] f_r``; read vectors ``r_r = M_tᵀ w^r_r``.

Cosine similarity (both heads): ``cos(k, m) = k·m / (‖k‖ ‖m‖ + ε)`` with
``‖x‖ = sqrt(Σ x² + ε)``, ε = 1e−6 (as deepmind/dnc). With an all-zero memory the norms are
``sqrt(ε)`` and neither values nor gradients are NaN.

Choices where the paper and deepmind/dnc differ (documented here once; kernels agree):

* **Key strengths.** The paper maps raw strengths through ``oneplus(x) = 1 + softplus(x)``;
  deepmind/dnc uses plain ``softplus``. This function receives *post-activation* strengths,
  so the choice belongs to the caller; dpbench's model uses ``oneplus`` (paper, β ≥ 1).
* **Read-mode order.** ``read_modes[..., :]`` is ``(backward, content, forward)`` as in the
  paper (π¹, π², π³). deepmind/dnc orders them ``(backward, forward, content)``.
* **Stop-gradient on the previous write weights in the usage update.** deepmind/dnc wraps
  ``w^w_{t−1}`` in ``tf.stop_gradient`` there. We do **not**: the usage update is an ordinary
  differentiable function of ``w^w_{t−1}`` (as the paper writes it), so the whole step is the
  exact gradient of its outputs and passes ``gradcheck``. A caller who wants DeepMind's
  behaviour can pass ``state.write_weights.detach()``.
* **Sort.** The permutation ``φ`` is piecewise constant and gets no gradient (as in both
  sources); the gradient flows through the sorted usage values only. Allocation is
  discontinuous at usage ties. **Tie rule:** a *stable* ascending sort — equal usages keep
  index order, so the lower slot index is allocated first (matches ``tf.nn.top_k`` on the
  non-usage in deepmind/dnc). The fused kernels use the same rule.
* **Link diagonal.** Multiplied by ``(1 − I)``, so it is exactly 0 and gets zero gradient.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

EPSILON = 1e-6
"""ε used in the allocation squash and in the cosine-similarity norms (deepmind/dnc)."""


class DNCState(NamedTuple):
    """Memory state carried between access steps (all floating tensors, one dtype/device).

    memory ``[B, N, W]``, usage ``[B, N]``, link ``[B, N, N]``, precedence ``[B, N]``,
    write_weights ``[B, N]``, read_weights ``[B, R, N]``.
    """

    memory: Tensor
    usage: Tensor
    link: Tensor
    precedence: Tensor
    write_weights: Tensor
    read_weights: Tensor


class DNCInterface(NamedTuple):
    """The controller's interface vector, split and *already activated*.

    read_keys ``[B, R, W]``; read_strengths ``[B, R]`` (≥ 1, oneplus); write_key ``[B, W]``;
    write_strength ``[B]`` (≥ 1); erase ``[B, W]`` (sigmoid); write_vector ``[B, W]``;
    free_gates ``[B, R]`` (sigmoid); allocation_gate ``[B]`` (sigmoid); write_gate ``[B]``
    (sigmoid); read_modes ``[B, R, 3]`` (softmax; order backward, content, forward).
    """

    read_keys: Tensor
    read_strengths: Tensor
    write_key: Tensor
    write_strength: Tensor
    erase: Tensor
    write_vector: Tensor
    free_gates: Tensor
    allocation_gate: Tensor
    write_gate: Tensor
    read_modes: Tensor


def initial_state(
    batch: int, memory_slots: int, word_size: int, read_heads: int,
    dtype: torch.dtype = torch.float32, device: Optional[torch.device | str] = None,
) -> DNCState:
    """All-zero state: empty memory, no usage, no links, no previous weightings."""
    def z(*shape: int) -> Tensor:
        return torch.zeros(*shape, dtype=dtype, device=device)

    b, n, w, r = batch, memory_slots, word_size, read_heads
    return DNCState(memory=z(b, n, w), usage=z(b, n), link=z(b, n, n), precedence=z(b, n),
                    write_weights=z(b, n), read_weights=z(b, r, n))


def content_weighting(memory: Tensor, keys: Tensor, strengths: Tensor) -> Tensor:
    """``softmax_i(β_h cos(k_h, M_i))``.

    memory ``[B, N, W]``, keys ``[B, H, W]``, strengths ``[B, H]`` → ``[B, H, N]``.
    """
    dot = torch.matmul(keys, memory.transpose(1, 2))                  # [B, H, N]
    m_norm = torch.sqrt((memory * memory).sum(-1) + EPSILON)           # [B, N]
    k_norm = torch.sqrt((keys * keys).sum(-1) + EPSILON)               # [B, H]
    cos = dot / (k_norm.unsqueeze(-1) * m_norm.unsqueeze(1) + EPSILON)
    return torch.softmax(cos * strengths.unsqueeze(-1), dim=-1)


def usage_update(usage: Tensor, write_weights: Tensor, free_gates: Tensor,
                 read_weights: Tensor) -> Tensor:
    """Step 1: ``(u + w^w − u∘w^w) ∘ Π_r (1 − f_r w^r_r)``; ``[B, N]`` (no stop-gradient)."""
    retention = torch.prod(1.0 - free_gates.unsqueeze(-1) * read_weights, dim=1)
    return (usage + write_weights - usage * write_weights) * retention


def allocation_weighting(usage: Tensor) -> Tensor:
    """Step 2: allocation from usage ``[B, N]`` → ``[B, N]`` (stable ascending sort)."""
    u = EPSILON + (1.0 - EPSILON) * usage
    sorted_u, order = torch.sort(u, dim=-1, stable=True)
    ones = torch.ones_like(sorted_u[:, :1])
    exclusive = torch.cumprod(torch.cat([ones, sorted_u[:, :-1]], dim=-1), dim=-1)
    sorted_alloc = (1.0 - sorted_u) * exclusive
    return torch.zeros_like(sorted_alloc).scatter(-1, order, sorted_alloc)


def link_update(link: Tensor, precedence: Tensor, write_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Step 5: new link ``[B, N, N]`` (zero diagonal) and precedence ``[B, N]``."""
    w_i = write_weights.unsqueeze(-1)
    w_j = write_weights.unsqueeze(-2)
    new_link = (1.0 - w_i - w_j) * link + w_i * precedence.unsqueeze(-2)
    n = link.shape[-1]
    off_diag = 1.0 - torch.eye(n, dtype=link.dtype, device=link.device)
    new_link = new_link * off_diag
    new_precedence = (1.0 - write_weights.sum(-1, keepdim=True)) * precedence + write_weights
    return new_link, new_precedence


def dnc_access_step(state: DNCState, interface: DNCInterface) -> tuple[DNCState, Tensor]:
    """One access step (steps 1–6 of the module docstring).

    Returns the new :class:`DNCState` and the read vectors ``[B, R, W]``.
    """
    s, x = state, interface
    usage = usage_update(s.usage, s.write_weights, x.free_gates, s.read_weights)
    alloc = allocation_weighting(usage)
    write_content = content_weighting(s.memory, x.write_key.unsqueeze(1),
                                      x.write_strength.unsqueeze(1)).squeeze(1)
    ga = x.allocation_gate.unsqueeze(-1)
    write_weights = x.write_gate.unsqueeze(-1) * (ga * alloc + (1.0 - ga) * write_content)
    ww = write_weights.unsqueeze(-1)                                   # [B, N, 1]
    memory = s.memory * (1.0 - ww * x.erase.unsqueeze(1)) + ww * x.write_vector.unsqueeze(1)
    link, precedence = link_update(s.link, s.precedence, write_weights)
    forward = torch.matmul(s.read_weights, link.transpose(1, 2))       # f_r[i] = Σ_j L[i,j] w_j
    backward = torch.matmul(s.read_weights, link)                      # b_r[j] = Σ_i L[i,j] w_i
    read_content = content_weighting(memory, x.read_keys, x.read_strengths)
    modes = x.read_modes
    read_weights = (modes[..., 0:1] * backward + modes[..., 1:2] * read_content
                    + modes[..., 2:3] * forward)
    reads = torch.matmul(read_weights, memory)                         # [B, R, W]
    new_state = DNCState(memory=memory, usage=usage, link=link, precedence=precedence,
                         write_weights=write_weights, read_weights=read_weights)
    return new_state, reads
