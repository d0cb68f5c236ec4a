"""Causal self-attention encoder (Vaswani et al. 2017; seed §3.2 self-attention).

Each layer is pre-LayerNorm (Xiong et al. 2020): z ← z + MHA(LN(z)), z ← z + FFN(LN(z)),
with MHA(q, k, v) = softmax(q k^T / √d_h + causal mask) v per head (Vaswani et al. 2017,
eq. 1) run by ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` so that
fused (flash / memory-efficient) kernels are used on GPU. Inputs are projected to
``d_model`` and added to sinusoidal position codes PE(p, 2i) = sin(p / 10000^{2i/d}),
PE(p, 2i+1) = cos(p / 10000^{2i/d}) (Vaswani et al. 2017, §3.5).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dpbench.models._heads import OutputHead


def sinusoidal_positions(steps: int, dim: int) -> torch.Tensor:
    """Position codes ``[steps, dim]`` (Vaswani et al. 2017, §3.5)."""
    position = torch.arange(steps, dtype=torch.float64).unsqueeze(1)
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    pe = torch.zeros(steps, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * rate)
    pe[:, 1::2] = torch.cos(position * rate)[:, : dim // 2]
    return pe.float()


def causal_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Explicit causal attention weights ``[B, heads, T, T]`` for ``q, k [B, heads, T, d_h]``
    (the same softmax that the fused kernel computes internally; diagnostics only)."""
    steps = q.shape[-2]
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    future = torch.ones(steps, steps, dtype=torch.bool, device=q.device).triu(1)
    return torch.softmax(logits.masked_fill(future, float("-inf")), dim=-1)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention. ``heads`` heads of size ``ceil(d_model / heads)``
    so that any integer ``d_model`` works (the harness scales it to a parameter budget).

    Shapes: ``z [B, T, d_model]`` → ``([B, T, d_model], weights [B, T, T] | None)``
    (weights averaged over heads, only when ``need_weights``).
    """

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, -(-d_model // heads)
        self.qkv = nn.Linear(d_model, 3 * heads * self.head_dim)
        self.proj = nn.Linear(heads * self.head_dim, d_model)

    def forward(self, z: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t, _ = z.shape
        q, k, v = self.qkv(z).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        weights = causal_weights(q, k).mean(1) if need_weights else None
        return self.proj(out.transpose(1, 2).reshape(b, t, -1)), weights


class Block(nn.Module):
    """One pre-LayerNorm transformer layer."""

    def __init__(self, d_model: int, heads: int, ff_mult: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, heads)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model), nn.GELU(), nn.Linear(ff_mult * d_model, d_model)
        )

    def forward(self, z: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attn(self.norm1(z), need_weights)
        z = z + a
        return z + self.ff(self.norm2(z)), weights


class CausalTransformer(nn.Module):
    """Encoder-only causal transformer with an :class:`OutputHead`.

    ``recall``: step t's output reads inputs 1..t only. ``forecast``: the last position
    predicts all ``output_steps`` future states at once (no decoder, no feedback).

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``; with
    ``diagnostics={}`` also ``diagnostics["attention"] [B, T, T]`` (last layer, mean over
    heads; row t is zero after column t).
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, d_model: int = 64, layers: int = 2, heads: int = 4, ff_mult: int = 4,
    ):
        super().__init__()
        if min(d_model, layers, heads, ff_mult) < 1:
            raise ValueError("d_model, layers, heads and ff_mult must be >= 1")
        self.embed = nn.Linear(input_size, d_model)
        self.register_buffer("positions", sinusoidal_positions(input_steps, d_model), persistent=False)
        self.blocks = nn.ModuleList(Block(d_model, heads, ff_mult) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = OutputHead(d_model, output_size, output_steps, task)

    def forward(self, x: torch.Tensor, diagnostics: dict | None = None) -> torch.Tensor:
        steps = x.shape[1]
        pe = self.positions if steps <= self.positions.shape[0] else sinusoidal_positions(
            steps, self.positions.shape[1]).to(x.device)
        z = self.embed(x) + pe[:steps]
        weights = None
        for i, block in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            z, weights = block(z, need_weights=diagnostics is not None and last)
        if diagnostics is not None:
            diagnostics["attention"] = weights.detach()
        return self.head(self.norm(z))
