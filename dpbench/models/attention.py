"""Attention family (seed §3.1–3.2 and §5(i)): encoder–decoders with and without attention,
a causal transformer and the dual-stage attention RNN.

* ``seq2seq``: encoder–decoder through a fixed vector (seed eq. 4–5; Sutskever et al. 2014,
  Cho et al. 2014).
* ``bahdanau``: bidirectional encoder (eq. 6), y_t = f2(s_{t−1}, y_{t−1}, c_t) (eq. 7),
  c_t = Σ α_ti h_i (eq. 8), softmax alignment (eq. 9), additive score (eq. 10;
  Bahdanau et al. 2015).
* ``cosine-attn``: the same with a cosine score (eq. 11) and NTM-style key strength
  (Graves et al. 2014).
* ``luong``: dot / general scores (Luong et al. 2015).
* ``transformer``: pre-LN causal self-attention (Vaswani et al. 2017).
* ``darnn``: dual-stage attention RNN (Qin et al. 2017).

All recurrent decoders are closed-loop (they feed back their own previous output, in
training and evaluation alike); ``docs/attention.md`` explains decoding and alignment.
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from dpbench.hookspecs import hookimpl
from dpbench.specs import ModelSpec

if TYPE_CHECKING:  # the builders import torch models on first use: listing stays light
    from dpbench.models._attention_darnn import DualStageAttentionRNN
    from dpbench.models._attention_rnn import EncoderDecoder
    from dpbench.models._attention_transformer import CausalTransformer

LUONG_SCORES = ("dot", "general")


def build_seq2seq(**kwargs) -> EncoderDecoder:
    """seed eq. 4–5: no attention."""
    from dpbench.models._attention_rnn import EncoderDecoder

    return EncoderDecoder(score=None, **kwargs)


def build_bahdanau(**kwargs) -> EncoderDecoder:
    """seed eq. 6–10: additive attention over a bidirectional encoder."""
    from dpbench.models._attention_rnn import EncoderDecoder

    return EncoderDecoder(score="additive", style="bahdanau", **kwargs)


def build_cosine(**kwargs) -> EncoderDecoder:
    """seed eq. 6–9 and 11: cosine content attention with learned sharpness."""
    from dpbench.models._attention_rnn import EncoderDecoder

    return EncoderDecoder(score="cosine", style="bahdanau", **kwargs)


def build_luong(score: str = "general", **kwargs) -> EncoderDecoder:
    """Luong et al. 2015: global attention with a dot or general score."""
    from dpbench.models._attention_rnn import EncoderDecoder

    if score not in LUONG_SCORES:
        raise ValueError(f"score {score!r} not in {LUONG_SCORES}")
    return EncoderDecoder(score=score, style="luong", **kwargs)


def build_transformer(**kwargs) -> CausalTransformer:
    """Vaswani et al. 2017, pre-LN, causal."""
    from dpbench.models._attention_transformer import CausalTransformer

    return CausalTransformer(**kwargs)


def build_darnn(**kwargs) -> DualStageAttentionRNN:
    """Qin et al. 2017, eq. 8–22."""
    from dpbench.models._attention_darnn import DualStageAttentionRNN

    return DualStageAttentionRNN(**kwargs)


@hookimpl
def dpbench_register_models(register) -> None:
    spec = partial(ModelSpec, family="attention", width="hidden")
    attention = ("attention",)
    register(spec(
        name="seq2seq", description="RNN encoder-decoder through a fixed vector, closed-loop decoder",
        citation="seed eq. 4-5; Sutskever et al. 2014; Cho et al. 2014",
        factory=build_seq2seq, defaults={"cell": "lstm", "hidden": 64},
    ))
    register(spec(
        name="bahdanau", description="bidirectional encoder + additive attention decoder",
        citation="seed eq. 6-10; Bahdanau, Cho & Bengio 2015",
        factory=build_bahdanau, defaults={"cell": "gru", "hidden": 64}, diagnostics=attention,
    ))
    register(spec(
        name="cosine-attn", description="cosine content attention with learned key strength",
        citation="seed eq. 11; Graves, Wayne & Danihelka 2014 (NTM content addressing)",
        factory=build_cosine, defaults={"cell": "gru", "hidden": 64}, diagnostics=attention,
    ))
    register(spec(
        name="luong", description="global attention, dot or general score, input feeding",
        citation="Luong, Pham & Manning 2015, Effective approaches to attention-based NMT",
        factory=build_luong, defaults={"cell": "lstm", "hidden": 64, "score": "general"},
        diagnostics=attention,
    ))
    register(spec(
        name="transformer", description="pre-LN causal self-attention encoder (fused SDPA)",
        citation="Vaswani et al. 2017, Attention is all you need; seed section 3.2",
        factory=build_transformer, width="d_model",
        defaults={"d_model": 64, "layers": 2, "heads": 4, "ff_mult": 4}, diagnostics=attention,
    ))
    register(spec(
        name="darnn", description="dual-stage attention RNN: input + temporal attention",
        citation="Qin et al. 2017, A dual-stage attention-based RNN for time series prediction",
        factory=build_darnn, defaults={"hidden": 64},
        diagnostics=("attention", "input_attention"),
    ))
