// Tensor <-> raw-pointer plumbing shared by the CPU and CUDA bindings of the DNC access op, and
// the op bodies themselves, templated on a Backend with
//   static Tensor empty_link(IntArrayRef sizes, const Tensor& like)   (a [B, N, N] buffer)
//   static void forward<T>(const Dims&, const StepInputs<T>&, const StepOutputs<T>&, const Tensor&)
//   static void backward<T>(const Dims&, const StepInputs<T>&, const StepOutputs<T>&,
//                           const OutputGrads<T>&, const InputGrads<T>&, const Tensor&)
// (the last argument is the memory tensor, for device / stream / scratch allocation).
#pragma once
#include <ATen/ATen.h>

#include <ATen/core/List.h>

#include <algorithm>
#include <array>
#include <optional>
#include <vector>

#include "dnc_kernels.h"

namespace dpbench_dnc {

constexpr int kNumInputs = 16;   // 6 state + 10 interface tensors, StepInputs order
constexpr int kNumOutputs = 8;   // new state (6), reads, aux
constexpr int kNumOutGrads = 7;  // gradients of the 7 differentiable outputs
using Inputs = std::array<at::Tensor, kNumInputs>;

inline Dims check_inputs(Inputs& in) {
  const at::Tensor& mem = in[0];
  TORCH_CHECK(mem.dim() == 3, "dnc: memory must be [B, N, W], got ", mem.sizes());
  TORCH_CHECK(mem.scalar_type() == at::kFloat || mem.scalar_type() == at::kDouble,
              "dnc: fused kernels support float32 and float64, got ", mem.scalar_type());
  const int64_t B = mem.size(0), N = mem.size(1), W = mem.size(2), R = in[5].size(1);
  const std::array<std::vector<int64_t>, kNumInputs> shapes = {{
      {B, N, W}, {B, N}, {B, N, N}, {B, N}, {B, N}, {B, R, N},  // state
      {B, R, W}, {B, R}, {B, W}, {B}, {B, W}, {B, W}, {B, R}, {B}, {B}, {B, R, 3}}};
  for (int i = 0; i < kNumInputs; ++i) {
    TORCH_CHECK(in[i].sizes() == at::IntArrayRef(shapes[i]), "dnc: input ", i, " has shape ",
                in[i].sizes(), ", expected ", at::IntArrayRef(shapes[i]));
    TORCH_CHECK(in[i].scalar_type() == mem.scalar_type() && in[i].device() == mem.device(),
                "dnc: input ", i, " must match memory's dtype and device");
    in[i] = in[i].contiguous();
  }
  return Dims{B, N, W, R};
}

template <typename T>
StepInputs<T> input_ptrs(const Inputs& t) {
  auto p = [&](int i) { return t[i].data_ptr<T>(); };
  return StepInputs<T>{p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7),
                       p(8), p(9), p(10), p(11), p(12), p(13), p(14), p(15)};
}

// The link output comes from Backend::empty_link (CPU: the link cache, dnc_link_pool.h).
template <class Backend>
std::vector<at::Tensor> alloc_outputs(const Dims& d, const at::Tensor& like) {
  auto e = [&](at::IntArrayRef s) { return at::empty(s, like.options()); };
  return {e({d.B, d.N, d.W}), e({d.B, d.N}), Backend::empty_link({d.B, d.N, d.N}, like),
          e({d.B, d.N}), e({d.B, d.N}), e({d.B, d.R, d.N}), e({d.B, d.R, d.W}),
          // CUDA writes only aux_shared() of each sample's aux: the rest starts at zero.
          like.is_cuda() ? at::zeros({d.B, d.aux()}, like.options()) : e({d.B, d.aux()})};
}

template <typename T>
StepOutputs<T> output_ptrs(const std::vector<at::Tensor>& o) {
  auto p = [&](size_t i) { return o[i].defined() ? o[i].data_ptr<T>() : nullptr; };
  return StepOutputs<T>{p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7)};
}

template <typename T>
OutputGrads<T> grad_ptrs(std::vector<at::Tensor>& g) {
  auto p = [&](size_t i) -> const T* {
    return g[i].defined() ? (g[i] = g[i].contiguous()).template data_ptr<T>() : nullptr;
  };
  return OutputGrads<T>{p(0), p(1), p(2), p(3), p(4), p(5), p(6)};
}

template <typename T>
InputGrads<T> input_grad_ptrs(const std::vector<at::Tensor>& g) {
  auto p = [&](int i) { return g[i].data_ptr<T>(); };
  return InputGrads<T>{p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7),
                       p(8), p(9), p(10), p(11), p(12), p(13), p(14), p(15)};
}

// Everything the backward needs besides the inputs: new memory, write/read weights, aux.
inline std::vector<at::Tensor> saved_outputs(const at::Tensor& memory, const at::Tensor& ww,
                                             const at::Tensor& wr, const at::Tensor& aux) {
  return {memory.contiguous(), at::Tensor(), at::Tensor(), at::Tensor(), ww.contiguous(),
          wr.contiguous(), at::Tensor(), aux.contiguous()};
}

using at::Tensor;
using GradList = c10::List<std::optional<Tensor>>;

// dnc_access_forward(Tensor[16] inputs) -> Tensor[8]: new state (6), reads, aux.
template <class Backend>
std::vector<Tensor> forward_op(at::TensorList inputs) {
  TORCH_CHECK(inputs.size() == kNumInputs, "dnc: expected ", kNumInputs, " inputs, got ",
              inputs.size());
  Inputs in;
  std::copy(inputs.begin(), inputs.end(), in.begin());
  const Dims d = check_inputs(in);
  auto out = alloc_outputs<Backend>(d, in[0]);
  AT_DISPATCH_FLOATING_TYPES(in[0].scalar_type(), "dnc_access_forward", [&] {
    Backend::template forward<scalar_t>(d, input_ptrs<scalar_t>(in), output_ptrs<scalar_t>(out),
                                        in[0]);
  });
  return out;
}

// dnc_access_backward(Tensor?[7] grads, Tensor[20] saved) -> Tensor[16]. `saved` is the 16
// inputs then the forward's new memory, new write weights, new read weights and aux. With
// `link_grad_out` defined, ∂/∂L_{t-1} is written into it (the CPU kernels allow it to be the
// buffer of ∂/∂L_t itself, see dnc_access_autograd.h); otherwise it is allocated.
template <class Backend>
std::vector<Tensor> backward_op(const GradList& grad_list, at::TensorList saved_list,
                                const Tensor& link_grad_out = Tensor()) {
  TORCH_CHECK(grad_list.size() == kNumOutGrads, "dnc: expected ", kNumOutGrads,
              " output grads, got ", grad_list.size());
  TORCH_CHECK(saved_list.size() == kNumInputs + 4, "dnc: expected ", kNumInputs + 4,
              " saved tensors, got ", saved_list.size());
  Inputs in;
  std::copy(saved_list.begin(), saved_list.begin() + kNumInputs, in.begin());
  const Dims d = check_inputs(in);
  std::vector<Tensor> grads;
  for (const std::optional<Tensor>& g : grad_list) grads.push_back(g.value_or(Tensor()));
  const at::Tensor* rest = saved_list.data() + kNumInputs;
  auto saved = saved_outputs(rest[0], rest[1], rest[2], rest[3]);
  std::vector<Tensor> gin;
  for (int i = 0; i < kNumInputs; ++i)
    gin.push_back(i != 2 ? at::empty_like(in[i])
                  : link_grad_out.defined() ? link_grad_out
                                            : Backend::empty_link(in[i].sizes(), in[i]));
  AT_DISPATCH_FLOATING_TYPES(in[0].scalar_type(), "dnc_access_backward", [&] {
    Backend::template backward<scalar_t>(d, input_ptrs<scalar_t>(in),
                                         output_ptrs<scalar_t>(saved), grad_ptrs<scalar_t>(grads),
                                         input_grad_ptrs<scalar_t>(gin), in[0]);
  });
  return gin;
}

// dnc_access(Tensor[16] inputs) -> Tensor[7] below autograd (inference mode, no-grad tracing):
// the forward without its aux buffer.
template <class Backend>
std::vector<Tensor> access_op(at::TensorList inputs) {
  auto out = forward_op<Backend>(inputs);
  out.pop_back();
  return out;
}

}  // namespace dpbench_dnc
