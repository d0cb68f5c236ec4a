"""Memory networks: an external store of the input window read by attention (seed §3.2, §5(ii)).

``memn2n`` — end-to-end memory network (Sukhbaatar, Szlam, Weston & Fergus 2015, NIPS,
§2, seed ref. [7]). For hops ``k = 1..K``: input memory ``m^k_i = A^k x_i + T_A^k(i)``,
output memory ``c^k_i = C^k x_i + T_C^k(i)`` (temporal encoding, §4.1), attention
``p^k = softmax(u^kᵀ m^k)`` (eq. 1), ``o^k = Σ_i p^k_i c^k_i`` (eq. 2),
``u^{k+1} = u^k + o^k`` (§2.2), with adjacent weight tying ``A^{k+1} = C^k`` and
``B = A^1`` (§2.2 (i), (iii)).

``mtnet`` — memory time-series network (Chang, Sun, Wu & Lin 2018, arXiv:1809.02105, §3,
seed ref. [55]): the window is cut into blocks; past blocks form the long-term memory,
encoded by the memory and output encoders; the latest block is encoded by the input
encoder into the query ``u``; ``p = softmax(uᵀ m_i)``, ``o = Σ p_i c_i``,
``ŷ = W^D [u; o] + b + y^{AR}`` with a linear autoregressive component on the last ``ar``
raw steps.

Sequence adaptations (see docs/memory.md): one memory slot / block per window step /
block; ``task="forecast"`` uses one query (the latest state / block) whose readout predicts
all ``output_steps`` at once (``OutputHead``); ``task="recall"`` uses one query per output
step, built from that step's own input (and position), and outputs that step's answer.
"""
from __future__ import annotations

import torch
from torch import nn

from dpbench.models._heads import OutputHead


def query_positions(input_steps: int, output_steps: int, task: str) -> torch.Tensor:
    """Window indices the queries sit at: ``[T-1]`` (forecast) or the last ``output_steps``."""
    if task == "forecast":
        return torch.tensor([input_steps - 1])
    if output_steps > input_steps:
        raise ValueError(f"recall needs output_steps <= input_steps, got {output_steps} > {input_steps}")
    return torch.arange(input_steps - output_steps, input_steps)


def memory_read(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dot-product read of a memory (MemN2N eq. 1–2; MTNet eq. 6–7).

    Shapes: ``query [B, Q, d]``, ``keys [B, M, d]``, ``values [B, M, d_v]`` →
    (``read [B, Q, d_v]``, ``attention [B, Q, M]``, rows summing to one).
    """
    attention = torch.softmax(query @ keys.transpose(1, 2), dim=-1)
    return attention @ values, attention


def store_attention(
    diagnostics: dict | None, attention: list[torch.Tensor], output_steps: int,
    all_hops: bool = False,
) -> None:
    """Fill ``"attention"`` ``[B, T_out, M]`` (last hop) and, if ``all_hops``,
    ``"attention_hops"`` ``[B, K, T_out, M]``. A single forecast query serves every output
    step, so its row is repeated ``output_steps`` times."""
    if diagnostics is None:
        return
    hops = torch.stack([a.detach() for a in attention], dim=1)
    if hops.shape[2] == 1:
        hops = hops.expand(-1, -1, output_steps, -1)
    if all_hops:
        diagnostics["attention_hops"] = hops.contiguous()
    diagnostics["attention"] = hops[:, -1].contiguous()


def check_window(x: torch.Tensor, input_steps: int) -> None:
    if x.shape[1] != input_steps:
        raise ValueError(f"model built for {input_steps} input steps, got x with {x.shape[1]}")


class MemN2N(nn.Module):
    """End-to-end memory network over the window's time steps (Sukhbaatar et al. 2015).

    ``K + 1`` embedding matrices ``E^0..E^K`` (``input_size → embed``, no bias) and temporal
    encodings ``T^0..T^K`` (``[input_steps, embed]``) realise adjacent tying:
    ``A^k = E^{k-1}``, ``C^k = E^k``, hence ``A^{k+1} = C^k`` (the same Parameter). The query
    is the first-hop input memory of the query's own step, ``u^1_t = A^1 x_t + T_A^1(t)``
    (``B = A^1``; the temporal term tells recall queries which step they answer).
    ``relu_half`` applies a ReLU to half of the units of each ``u^{k+1}``, the paper's
    language-model setting (§5), the only nonlinearity besides the softmax.

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``; diagnostics
    ``"attention" [B, output_steps, T]`` (last hop), ``"attention_hops" [B, K, output_steps, T]``.
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, embed: int = 64, hops: int = 3, relu_half: bool = True,
    ):
        super().__init__()
        if hops < 1 or embed < 1:
            raise ValueError(f"memn2n needs hops >= 1 and embed >= 1, got {hops}, {embed}")
        self.input_steps, self.output_steps, self.hops = input_steps, output_steps, hops
        self.relu_half = relu_half
        self.embeddings = nn.ModuleList(
            nn.Linear(input_size, embed, bias=False) for _ in range(hops + 1)
        )
        self.temporal = nn.ParameterList(
            nn.Parameter(0.1 * torch.randn(input_steps, embed)) for _ in range(hops + 1)
        )
        self.register_buffer("positions", query_positions(input_steps, output_steps, task), persistent=False)
        self.head = OutputHead(embed, output_size, output_steps, task)

    def input_embedding(self, hop: int) -> tuple[nn.Linear, nn.Parameter]:
        """``(A^hop, T_A^hop)`` for ``hop = 1..K`` (paper numbering)."""
        return self.embeddings[hop - 1], self.temporal[hop - 1]

    def output_embedding(self, hop: int) -> tuple[nn.Linear, nn.Parameter]:
        """``(C^hop, T_C^hop)`` for ``hop = 1..K``; equal to ``input_embedding(hop + 1)``."""
        return self.embeddings[hop], self.temporal[hop]

    def _nonlinear(self, u: torch.Tensor) -> torch.Tensor:
        if not self.relu_half:
            return u
        half = u.shape[-1] // 2
        return torch.cat([torch.relu(u[..., :half]), u[..., half:]], dim=-1)

    def forward(self, x: torch.Tensor, diagnostics: dict | None = None) -> torch.Tensor:
        check_window(x, self.input_steps)
        memories = [emb(x) + t for emb, t in zip(self.embeddings, self.temporal)]  # K+1 × [B, T, d]
        u = memories[0][:, self.positions]  # [B, Q, d]
        attention = []
        for hop in range(self.hops):
            o, p = memory_read(u, memories[hop], memories[hop + 1])
            u = self._nonlinear(u + o)
            attention.append(p)
        store_attention(diagnostics, attention, self.output_steps, all_hops=True)
        return self.head(u)


class BlockEncoder(nn.Module):
    """MTNet encoder (Chang et al. 2018, §3.2): Conv1d over time (no pooling) + ReLU, then a
    GRU whose last state encodes the block. Shapes: ``[n, block, D]`` → ``[n, hidden]``."""

    def __init__(self, input_size: int, hidden: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(input_size, hidden, kernel)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(blocks.transpose(1, 2))).transpose(1, 2)
        return self.gru(features)[1][0]


class MTNet(nn.Module):
    """Memory time-series network (Chang et al. 2018) on one input window.

    The window is tiled from its end into ``block``-step blocks, the earliest one
    zero-padded at its start so that no step is dropped. ``forecast``: the last block is
    the short-term input ``Q`` and the ``n = ⌈(T − block) / block⌉`` blocks before it are
    the long-term memory (``block`` is reduced to ``T // 2`` for short windows so that
    ``n ≥ 1``). ``recall``: the memory is all ``n = ⌈T / block⌉`` blocks and each output
    step ``t`` queries with the ``block`` steps ending at ``t`` (zero-padded likewise).
    Three encoders (memory ``m``, input ``u``, output ``c``) are each shared across blocks.
    The autoregressive term (last ``ar`` raw steps, all components → all outputs) exists
    for ``forecast`` only (``ar=0`` drops it): recall targets are not the input series.

    Shapes: ``x [B, T, input_size]`` → ``[B, output_steps, output_size]``; diagnostics
    ``"attention" [B, output_steps, n]``.
    """

    def __init__(
        self, input_size: int, input_steps: int, output_size: int, output_steps: int,
        task: str, hidden: int = 32, block: int = 8, kernel: int = 3, ar: int = 8,
    ):
        super().__init__()
        if min(hidden, block, kernel) < 1 or ar < 0:
            raise ValueError("mtnet needs hidden, block, kernel >= 1 and ar >= 0")
        self.block = min(block, input_steps // 2) if task == "forecast" else min(block, input_steps)
        if self.block < 1:
            raise ValueError(f"mtnet forecast needs input_steps >= 2, got {input_steps}")
        self.input_steps, self.output_steps, self.task = input_steps, output_steps, task
        stored = input_steps - (self.block if task == "forecast" else 0)
        self.slots = -(-stored // self.block)
        self.ar = min(ar, input_steps) if task == "forecast" else 0
        kernel = min(kernel, self.block)
        self.encode_memory, self.encode_input, self.encode_output = (
            BlockEncoder(input_size, hidden, kernel) for _ in range(3)
        )
        self.register_buffer("positions", query_positions(input_steps, output_steps, task), persistent=False)
        self.head = OutputHead(2 * hidden, output_size, output_steps, task)
        self.autoregressive = (
            OutputHead(self.ar * input_size, output_size, output_steps, task) if self.ar else None
        )

    def memory_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` → ``[B, slots, block, D]``, the long-term memory's raw blocks."""
        end = x.shape[1] - (self.block if self.task == "forecast" else 0)
        stored = nn.functional.pad(x[:, :end], (0, 0, self.slots * self.block - end, 0))
        return stored.reshape(x.shape[0], self.slots, self.block, x.shape[2])

    def ending_at(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """The ``length`` steps ending at each query position: ``[B, Q, length, D]``."""
        padded = nn.functional.pad(x, (0, 0, length - 1, 0))
        return padded.unfold(1, length, 1)[:, self.positions].transpose(2, 3)

    def forward(self, x: torch.Tensor, diagnostics: dict | None = None) -> torch.Tensor:
        check_window(x, self.input_steps)
        batch, dim = x.shape[0], x.shape[2]
        blocks = self.memory_blocks(x).reshape(-1, self.block, dim)
        memory = self.encode_memory(blocks).view(batch, self.slots, -1)
        values = self.encode_output(blocks).view(batch, self.slots, -1)
        queries = self.ending_at(x, self.block)
        u = self.encode_input(queries.reshape(-1, self.block, dim)).view(batch, queries.shape[1], -1)
        o, attention = memory_read(u, memory, values)
        store_attention(diagnostics, [attention], self.output_steps)
        y = self.head(torch.cat([u, o], dim=-1))
        if self.autoregressive is None:
            return y
        return y + self.autoregressive(self.ending_at(x, self.ar).flatten(2))  # AR on [B, 1, ar·D]


def build_memn2n(**kwargs) -> MemN2N:
    return MemN2N(**kwargs)


def build_mtnet(**kwargs) -> MTNet:
    return MTNet(**kwargs)
