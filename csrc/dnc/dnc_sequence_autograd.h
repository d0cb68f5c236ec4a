// dpbench::dnc_sequence: a whole DNC sequence (LSTM controller + interface layer + access) as
// one op, with its autograd in C++. The per-step op (dnc_access) leaves the controller and the
// interface to Python modules; at the dnc-learn sizes (B = 32, N = 128, T = 30) their ~30 small
// autograd nodes per step cost about as much as the access kernels themselves (~35 of ~90 ms
// per training step on a Zen 4 core). Here a step is ~20 ATen calls without autograd nodes,
// and the weight gradients are two matmuls over the whole sequence instead of two per step.
//
// Math per step t (Graves et al. 2016, Methods, "Controller network"; torch.nn.LSTMCell's
// gate order i, f, g, o and the activations of dpbench.models._dnc.InterfaceLayer):
//   z_t  = [x_t; r_{t-1}; h_{t-1}],  gates = W z_t + b  (W = [W_ih W_hh], b = b_ih + b_hh)
//   c_t  = σ(f) ∘ c_{t-1} + σ(i) ∘ tanh(g),  h_t = σ(o) ∘ tanh(c_t)
//   ξ_t  = W_ξ h_t + b_ξ → activated interface (oneplus, sigmoid, softmax over 3 read modes)
//   (state_t, r_t) = dnc_access(state_{t-1}, interface_t),  features_t = [h_t; r_t]
//
// dnc_sequence(Tensor x [B, T, D], Tensor[6] weights (w_ih [4H, D+RW], w_hh [4H, H], b_ih,
//              b_hh [4H], w_xi [I, H], b_xi [I]), Tensor[9] init (6 state tensors, h0, c0
//              [B, H], reads0 [B, R·W]), bool usage_stop_gradient) -> features [B, T, H + R·W]
// usage_stop_gradient drops ∂/∂w^w_{t-1} of every step (deepmind/dnc's tf.stop_gradient in
// the usage update; its only consumer in a step).
#pragma once
#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <array>
#include <numeric>
#include <tuple>
#include <vector>

#include "dnc_access_autograd.h"

namespace dpbench_dnc {

constexpr int kNumWeights = 6;   // w_ih, w_hh, b_ih, b_hh, w_xi, b_xi
constexpr int kNumInit = 9;      // 6 state tensors, h0, c0, reads0
constexpr int kNumState = 6;

struct SeqDims {
  int64_t B, T, D, H, N, W, R, I;
  int64_t RW() const { return R * W; }
  int64_t Din() const { return D + R * W + H; }  // z_t = [x_t; r_{t-1}; h_{t-1}]
  // Interface layout, InterfaceLayer order: k^r, β^r, k^w, β^w, e, v, f, g^a, g^w, π.
  std::vector<int64_t> sizes() const { return {R * W, R, W, 1, W, W, R, 1, 1, 3 * R}; }
};

inline SeqDims check_sequence(const Tensor& x, at::TensorList w, at::TensorList init) {
  TORCH_CHECK(w.size() == kNumWeights, "dnc_sequence: expected ", kNumWeights, " weights, got ",
              w.size());
  TORCH_CHECK(init.size() == kNumInit, "dnc_sequence: expected ", kNumInit,
              " initial tensors, got ", init.size());
  TORCH_CHECK(x.dim() == 3, "dnc_sequence: x must be [B, T, D], got ", x.sizes());
  const Tensor& mem = init[0];
  TORCH_CHECK(mem.dim() == 3 && init[5].dim() == 3, "dnc_sequence: bad initial state");
  SeqDims d{x.size(0), x.size(1), x.size(2), w[1].size(1), mem.size(1), mem.size(2),
            init[5].size(1), w[4].size(0)};
  const auto sizes = d.sizes();
  const int64_t sum_sizes = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  TORCH_CHECK(d.I == sum_sizes, "dnc_sequence: interface width ", d.I, ", expected ", sum_sizes);
  TORCH_CHECK(w[0].sizes() == at::IntArrayRef({4 * d.H, d.D + d.RW()}) &&
                  w[1].sizes() == at::IntArrayRef({4 * d.H, d.H}) &&
                  w[2].sizes() == at::IntArrayRef({4 * d.H}) &&
                  w[3].sizes() == at::IntArrayRef({4 * d.H}) &&
                  w[4].sizes() == at::IntArrayRef({d.I, d.H}) &&
                  w[5].sizes() == at::IntArrayRef({d.I}),
              "dnc_sequence: weight shapes do not match x [B, T, D] and the state");
  TORCH_CHECK(init[6].sizes() == at::IntArrayRef({d.B, d.H}) &&
                  init[7].sizes() == at::IntArrayRef({d.B, d.H}) &&
                  init[8].sizes() == at::IntArrayRef({d.B, d.RW()}),
              "dnc_sequence: h0, c0 must be [B, H] and reads0 [B, R*W]");
  for (at::TensorList list : {w, init})
    for (const Tensor& t : list)
      TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(),
                  "dnc_sequence: weights and initial tensors must match x's dtype and device");
  return d;
}

// ξ [B, I] → the 10 activated interface tensors, in DNCInterface order and shapes.
inline std::vector<Tensor> activate_interface(const Tensor& xi, const SeqDims& d) {
  const auto p = xi.split_with_sizes(d.sizes(), 1);
  const int64_t B = d.B;
  return {p[0].reshape({B, d.R, d.W}),
          at::softplus(p[1], 1, 20).add_(1),
          p[2].contiguous(),
          at::softplus(p[3], 1, 20).add_(1).reshape({B}),
          at::sigmoid(p[4]),
          p[5].contiguous(),
          at::sigmoid(p[6]),
          at::sigmoid(p[7]).reshape({B}),
          at::sigmoid(p[8]).reshape({B}),
          at::_softmax(p[9].reshape({B, d.R, 3}), -1, false)};
}

// Gradients of the 10 activated tensors → ∂/∂ξ [B, I] (the activations' own backward ops).
inline Tensor activate_interface_backward(const std::vector<Tensor>& g, const Tensor& xi,
                                          const std::vector<Tensor>& act, const SeqDims& d) {
  const auto p = xi.split_with_sizes(d.sizes(), 1);
  const int64_t B = d.B;
  auto sig = [&](int k, int64_t width) {
    return at::sigmoid_backward(g[k].reshape({B, width}), act[k].reshape({B, width}));
  };
  return at::cat({g[0].reshape({B, d.RW()}),
                  at::softplus_backward(g[1], p[1], 1, 20),
                  g[2],
                  at::softplus_backward(g[3].reshape({B, 1}), p[3], 1, 20),
                  sig(4, d.W),
                  g[5],
                  sig(6, d.R),
                  sig(7, 1),
                  sig(8, 1),
                  at::_softmax_backward_data(g[9], act[9], -1, xi.scalar_type())
                      .reshape({B, 3 * d.R})},
                 1);
}

// The sequence forward below autograd. With `keep`, fills what the backward needs.
struct SequenceTape {
  Tensor inp, act, c, h, xi;                       // [T,B,Din], [T,B,4H], [T+1,B,H], [T,B,H], [T,B,I]
  std::vector<std::vector<Tensor>> step_saved;     // per step: 16 inputs + M_t, w^w_t, w^r_t, aux_t
};

inline Tensor sequence_forward(const Tensor& x_in, at::TensorList w, at::TensorList init,
                               SequenceTape* tape) {
  const SeqDims d = check_sequence(x_in, w, init);
  const Tensor x = x_in.contiguous();
  const int64_t B = d.B, T = d.T, D = d.D, H = d.H, RW = d.RW();
  const auto opts = x.options();
  const Tensor wg = at::cat({w[0], w[1]}, 1);  // [4H, Din]
  const Tensor bg = w[2] + w[3];
  const Tensor w_xi_t = w[4].t();
  Tensor inp = at::empty({T, B, d.Din()}, opts), act = at::empty({T, B, 4 * H}, opts);
  Tensor c = at::empty({T + 1, B, H}, opts), hs = at::empty({T, B, H}, opts);
  Tensor xis = at::empty({T, B, d.I}, opts);
  Tensor feat = at::empty({B, T, H + RW}, opts);
  c[0].copy_(init[7]);
  std::vector<Tensor> state(init.begin(), init.begin() + kNumState);
  Tensor h = init[6], reads = init[8];
  if (tape) tape->step_saved.reserve(T);
  for (int64_t t = 0; t < T; ++t) {
    Tensor z = inp[t];
    z.narrow(1, 0, D).copy_(x.select(1, t));
    z.narrow(1, D, RW).copy_(reads);
    z.narrow(1, D + RW, H).copy_(h);
    const Tensor gates = at::addmm(bg, z, wg.t());
    Tensor a = act[t];
    Tensor a_if = a.narrow(1, 0, 2 * H), a_g = a.narrow(1, 2 * H, H), a_o = a.narrow(1, 3 * H, H);
    at::sigmoid_out(a_if, gates.narrow(1, 0, 2 * H));
    at::tanh_out(a_g, gates.narrow(1, 2 * H, H));
    at::sigmoid_out(a_o, gates.narrow(1, 3 * H, H));
    Tensor ct = c[t + 1];
    at::mul_out(ct, a.narrow(1, H, H), c[t]);
    ct.addcmul_(a.narrow(1, 0, H), a.narrow(1, 2 * H, H));
    h = hs[t];
    at::mul_out(h, a.narrow(1, 3 * H, H), at::tanh(ct));
    Tensor xi = xis[t];
    at::addmm_out(xi, w[5], h, w_xi_t);
    std::vector<Tensor> in(state);
    const std::vector<Tensor> iface = activate_interface(xi, d);
    in.insert(in.end(), iface.begin(), iface.end());
    std::vector<Tensor> out = forward_handle().call(in);
    reads = out[6].reshape({B, RW});
    Tensor f = feat.select(1, t);
    f.narrow(1, 0, H).copy_(h);
    f.narrow(1, H, RW).copy_(reads);
    if (tape) {
      in.insert(in.end(), {out[0], out[4], out[5], out[7]});
      tape->step_saved.push_back(std::move(in));
    }
    state.assign(out.begin(), out.begin() + kNumState);
  }
  if (tape) std::tie(tape->inp, tape->act, tape->c, tape->h, tape->xi) = std::tie(inp, act, c, hs, xis);
  return feat;
}

// dnc_sequence below autograd (inference, no-grad tracing): the features only.
inline Tensor sequence_op(const Tensor& x, at::TensorList weights, at::TensorList init,
                          bool /*usage_stop_gradient*/) {
  return sequence_forward(x, weights, init, nullptr);
}

template <class CpuBackward>
struct SequenceFunction : public torch::autograd::Function<SequenceFunction<CpuBackward>> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, at::TensorList weights,
                        at::TensorList init, bool usage_stop_gradient) {
    SequenceTape tape;
    Tensor feat;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      feat = sequence_forward(x, weights, init, &tape);
    }
    std::vector<Tensor> saved(weights.begin(), weights.end());
    saved.insert(saved.end(), {tape.inp, tape.act, tape.c, tape.h, tape.xi});
    for (auto& step : tape.step_saved) saved.insert(saved.end(), step.begin(), step.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["usage_stop_gradient"] = usage_stop_gradient;
    ctx->set_materialize_grads(false);
    return feat;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    RECORD_FUNCTION("dpbench::dnc_sequence_backward", std::vector<c10::IValue>());
    const variable_list saved = ctx->get_saved_variables();
    const bool stop_ww = ctx->saved_data["usage_stop_gradient"].toBool();
    const Tensor *w = saved.data(), *tp = saved.data() + kNumWeights;
    const Tensor &inp = tp[0], &act = tp[1], &c = tp[2], &hs = tp[3], &xis = tp[4];
    const at::TensorList steps_flat(saved.data() + kNumWeights + 5,
                                    saved.size() - kNumWeights - 5);
    const int64_t T = inp.size(0), B = inp.size(1), H = w[1].size(1), I = w[4].size(0);
    const int64_t per = kNumInputs + 4;
    variable_list out(1 + kNumWeights + kNumInit + 1);
    if (!grads[0].defined() || T == 0) return out;
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const Tensor &mem0 = steps_flat[0], &rw0 = steps_flat[5];   // step 0's memory, w^r
    const int64_t N = mem0.size(1), W = mem0.size(2), R = rw0.size(1);
    const SeqDims d{B, T, w[0].size(1) - R * W, H, N, W, R, I};   // w_ih: [4H, D + RW]
    const int64_t D = d.D;
    const int64_t RW = d.RW(), Din = d.Din();
    const Tensor dfeat = grads[0].contiguous();
    const Tensor wg = at::cat({w[0], w[1]}, 1);
    const bool need_x = ctx->needs_input_grad(0);
    Tensor dgates = at::empty({T, B, 4 * H}, dfeat.options());
    Tensor dxis = at::empty({T, B, I}, dfeat.options());
    Tensor dx = need_x ? at::empty({B, T, D}, dfeat.options()) : Tensor();
    Tensor dh_next = at::zeros({B, H}, dfeat.options()), dc_next = at::zeros({B, H}, dfeat.options());
    Tensor dreads_next = at::zeros({B, RW}, dfeat.options());
    std::vector<Tensor> dstate(kNumState);
    const bool cpu = plain_cpu(dfeat);  // real tensors: the direct CPU backward
    for (int64_t t = T - 1; t >= 0; --t) {
      const Tensor ft = dfeat.select(1, t);
      Tensor dh = ft.narrow(1, 0, H) + dh_next;
      const Tensor dreads = (ft.narrow(1, H, RW) + dreads_next).reshape({B, d.R, d.W});
      const at::TensorList step = steps_flat.slice(t * per, per);
      GradList g;
      for (const Tensor& s : dstate) g.push_back(s.defined() ? std::optional<Tensor>(s) : std::nullopt);
      g.push_back(dreads);
      // On CPU ∂/∂L_{t-1} overwrites ∂/∂L_t's buffer, which only this loop holds (the one
      // B·N² gradient buffer of the sequence, as in dnc_access's backward).
      const Tensor link_buf = dstate[2];
      dstate[2] = Tensor();
      std::vector<Tensor> gin = cpu ? CpuBackward::run(g, step, link_buf)
                                    : backward_handle().call(g, step);
      g = GradList();
      const std::vector<Tensor> iface_grads(gin.begin() + kNumState, gin.end());
      const std::vector<Tensor> iface(step.begin() + kNumState, step.begin() + kNumInputs);
      dstate.assign(gin.begin(), gin.begin() + kNumState);
      if (stop_ww) dstate[4] = Tensor();
      Tensor dxi = dxis[t];
      dxi.copy_(activate_interface_backward(iface_grads, xis[t], iface, d));
      dh.addmm_(dxi, w[4]);
      // LSTM cell backward.
      const Tensor a = act[t], ct = c[t + 1];
      const Tensor ig = a.narrow(1, 0, H), fg = a.narrow(1, H, H), gg = a.narrow(1, 2 * H, H),
                   og = a.narrow(1, 3 * H, H);
      const Tensor tc = at::tanh(ct);
      const Tensor dc = dc_next + at::tanh_backward(dh * og, tc);
      Tensor dg = dgates[t];
      Tensor d_i = dg.narrow(1, 0, H), d_f = dg.narrow(1, H, H), d_g = dg.narrow(1, 2 * H, H),
             d_o = dg.narrow(1, 3 * H, H);
      at::sigmoid_backward_out(d_i, dc * gg, ig);
      at::sigmoid_backward_out(d_f, dc * c[t], fg);
      at::tanh_backward_out(d_g, dc * ig, gg);
      at::sigmoid_backward_out(d_o, dh * tc, og);
      dc_next = dc * fg;
      const Tensor dz = at::mm(dg, wg);  // [B, Din]
      if (need_x) dx.select(1, t).copy_(dz.narrow(1, 0, D));
      dreads_next = dz.narrow(1, D, RW);
      dh_next = dz.narrow(1, D + RW, H);
    }
    const Tensor dg2 = dgates.view({T * B, 4 * H});
    const Tensor dwg = at::mm(dg2.t(), inp.view({T * B, Din}));
    const Tensor db = dg2.sum(0);
    const Tensor dxi2 = dxis.view({T * B, I});
    out[0] = dx;
    out[1] = dwg.narrow(1, 0, D + RW).contiguous();
    out[2] = dwg.narrow(1, D + RW, H).contiguous();
    out[3] = db;
    out[4] = db.clone();
    out[5] = at::mm(dxi2.t(), hs.view({T * B, H}));
    out[6] = dxi2.sum(0);
    for (int k = 0; k < kNumState; ++k) out[1 + kNumWeights + k] = dstate[k];
    out[1 + kNumWeights + 6] = dh_next.contiguous();
    out[1 + kNumWeights + 7] = dc_next;
    out[1 + kNumWeights + 8] = dreads_next.contiguous();
    return out;
  }
};

inline bool any_requires_grad(const Tensor& x, at::TensorList weights, at::TensorList init) {
  if (x.requires_grad()) return true;
  for (at::TensorList list : {weights, init})
    for (const Tensor& t : list)
      if (t.requires_grad()) return true;
  return false;
}

// The Autograd kernel of dnc_sequence. Under no_grad, or with no input requiring grad, no
// backward can follow: the forward runs without a tape, so the T steps' states (T link
// matrices, B·N² each) are freed as the loop goes instead of being held to the end.
template <class CpuBackward>
Tensor sequence_autograd(const Tensor& x, at::TensorList weights, at::TensorList init,
                         bool usage_stop_gradient) {
  if (!at::GradMode::is_enabled() || !any_requires_grad(x, weights, init)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return sequence_forward(x, weights, init, nullptr);
  }
  return SequenceFunction<CpuBackward>::apply(x, weights, init, usage_stop_gradient);
}

}  // namespace dpbench_dnc
