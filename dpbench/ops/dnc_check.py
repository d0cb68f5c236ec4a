"""Random DNC inputs and the fused-vs-reference comparison, shared by the tests, the benchmark
and ``dpbench doctor --selftest``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from dpbench.ops.dnc_reference import DNCInterface, DNCState, dnc_access_step, initial_state


def random_interface(batch: int, word: int, heads: int, gen: torch.Generator,
                     dtype: torch.dtype = torch.float64, **override: Tensor) -> DNCInterface:
    """A random post-activation interface in the documented ranges (oneplus strengths,
    sigmoid gates, softmax read modes); keyword arguments replace fields."""
    def rn(*s):
        return torch.randn(*s, generator=gen, dtype=dtype)

    def sig(*s):
        return torch.sigmoid(rn(*s))

    def oneplus(*s):
        return 1 + torch.nn.functional.softplus(rn(*s))

    b, w, r = batch, word, heads
    fields = dict(read_keys=rn(b, r, w), read_strengths=oneplus(b, r), write_key=rn(b, w),
                  write_strength=oneplus(b), erase=sig(b, w), write_vector=rn(b, w),
                  free_gates=sig(b, r), allocation_gate=sig(b), write_gate=sig(b),
                  read_modes=torch.softmax(rn(b, r, 3), -1))
    fields.update(override)
    return DNCInterface(**fields)


def rollout(b: int = 3, n: int = 6, w: int = 4, r: int = 2, steps: int = 5, seed: int = 0,
            dtype: torch.dtype = torch.float64):
    """States visited by ``steps`` random reference steps from the zero state, the reads, and
    the generator (to draw further interfaces)."""
    gen = torch.Generator().manual_seed(seed)
    state = initial_state(b, n, w, r, dtype=dtype)
    states, reads = [state], []
    for _ in range(steps):
        state, rv = dnc_access_step(state, random_interface(b, w, r, gen, dtype))
        states.append(state)
        reads.append(rv)
    return states, reads, gen


def leaves(state: DNCState, x: DNCInterface) -> tuple[DNCState, DNCInterface]:
    return (DNCState(*[t.detach().clone().requires_grad_() for t in state]),
            DNCInterface(*[t.detach().clone().requires_grad_() for t in x]))


def compare_with_reference(shape: tuple[int, int, int, int], dtype: torch.dtype, device: str,
                           seed: int = 0, impl: str = "fused",
                           case: Optional[tuple[DNCState, DNCInterface]] = None) -> dict:
    """One step of ``impl`` against the reference on the same inputs ``(B, N, W, R)``.

    Returns ``{"forward": {field: max relative error}, "grad": {input: (max abs error,
    max |reference grad|)}, "grad_scale": max |reference grad| over all inputs}``; the loss
    is a random weighted sum of every output.
    """
    from dpbench.ops import dnc_access_step as dispatch

    if case is None:
        b, n, w, r = shape
        states, _, gen = rollout(b, n, w, r, steps=4, seed=seed)
        case = states[-1], random_interface(b, w, r, gen)
    conv = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    state, x = DNCState(*map(conv, case[0])), DNCInterface(*map(conv, case[1]))
    (s_ref, x_ref), (s_imp, x_imp) = leaves(state, x), leaves(state, x)
    new_ref, reads_ref = dispatch(s_ref, x_ref, impl="reference")
    new_imp, reads_imp = dispatch(s_imp, x_imp, impl=impl)
    gen = torch.Generator().manual_seed(seed + 1)
    forward, loss_ref, loss_imp = {}, 0.0, 0.0
    for name, a, ref in zip(DNCState._fields + ("reads",), (*new_imp, reads_imp),
                            (*new_ref, reads_ref)):
        forward[name] = ((a - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
        weight = torch.randn(ref.shape, generator=gen, dtype=dtype).to(device)
        loss_ref, loss_imp = loss_ref + (ref * weight).sum(), loss_imp + (a * weight).sum()
    loss_ref.backward()
    loss_imp.backward()
    grad = {name: ((a.grad - ref.grad).abs().max().item(), ref.grad.abs().max().item())
            for name, a, ref in zip(DNCState._fields + DNCInterface._fields,
                                    (*s_imp, *x_imp), (*s_ref, *x_ref))}
    return {"forward": forward, "grad": grad,
            "grad_scale": max(scale for _, scale in grad.values())}


def within_tolerance(result: dict, dtype: torch.dtype, slots: int = 0) -> list[str]:
    """Names that miss the tolerance: forward relative error ≤ 1e-10 (float64) / 1e-5 (float32);
    gradients ≤ rtol·|ref| + atol·scale with (1e-10, 0) / (1e-4, 1e-6) — in float32,
    cancellation makes some gradients tiny, so their error is also measured against the
    step's largest gradient. With ``slots`` = N given, the float32 forward tolerance grows to
    the worst-case rounding of an N-term float32 sum, 2·N·2⁻²³, when that is larger (N ≳ 40):
    the kernels and the reference sum the N slots in different orders."""
    f_tol, rtol, atol = (1e-10, 1e-10, 0.0) if dtype == torch.float64 else (1e-5, 1e-4, 1e-6)
    if dtype == torch.float32 and slots:
        f_tol = max(f_tol, 2 * slots * 2.0 ** -23)
    bad = [f"forward {k}: {v:.2e}" for k, v in result["forward"].items() if not v <= f_tol]
    bad += [f"grad {k}: {err:.2e}" for k, (err, ref) in result["grad"].items()
            if not err <= rtol * ref + atol * result["grad_scale"]]
    return bad


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m dpbench.ops.dnc_check [--device D] [--shape B,N,W,R] [--dtype f32|f64]``:
    one fused step against the reference (a small case to run under compute-sanitizer);
    prints the failures, exit 1 when any."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m dpbench.ops.dnc_check")
    p.add_argument("--device", default="cpu")
    p.add_argument("--shape", default="2,7,4,2", help="B,N,W,R (default 2,7,4,2)")
    p.add_argument("--dtype", choices=["f32", "f64"], default="f64")
    args = p.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split(","))
    dtype = torch.float64 if args.dtype == "f64" else torch.float32
    bad = within_tolerance(compare_with_reference(shape, dtype, args.device), dtype)
    print(f"dnc_check {args.device} B,N,W,R={shape} {args.dtype}: "
          + ("ok" if not bad else "FAIL " + "; ".join(bad)))
    return int(bool(bad))


if __name__ == "__main__":
    raise SystemExit(main())
