// Tensor <-> raw-pointer plumbing shared by the CPU and CUDA bindings of the DNC access op, and
// the op bodies themselves, templated on a Backend with
//   static void forward<T>(const Dims&, const StepInputs<T>&, const StepOutputs<T>&, const Tensor&)
//   static void backward<T>(const Dims&, const StepInputs<T>&, const StepOutputs<T>&,
//                           const OutputGrads<T>&, const InputGrads<T>&, const Tensor&)
// (the last argument is the memory tensor, for device / stream / scratch allocation).
#pragma once
#include <ATen/ATen.h>

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

inline std::vector<at::Tensor> alloc_outputs(const Dims& d, const at::Tensor& like) {
  auto e = [&](at::IntArrayRef s) { return at::empty(s, like.options()); };
  return {e({d.B, d.N, d.W}), e({d.B, d.N}), e({d.B, d.N, d.N}), e({d.B, d.N}), e({d.B, d.N}),
          e({d.B, d.R, d.N}), e({d.B, d.R, d.W}), e({d.B, d.aux()})};
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
using OptT = std::optional<Tensor>;
using Out8 = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

template <class Backend>
Out8 forward_op(const Tensor& memory, const Tensor& usage, const Tensor& link,
                const Tensor& precedence, const Tensor& write_weights,
                const Tensor& read_weights, const Tensor& read_keys, const Tensor& read_strengths,
                const Tensor& write_key, const Tensor& write_strength, const Tensor& erase,
                const Tensor& write_vector, const Tensor& free_gates,
                const Tensor& allocation_gate, const Tensor& write_gate,
                const Tensor& read_modes) {
  Inputs in = {memory, usage, link, precedence, write_weights, read_weights, read_keys,
               read_strengths, write_key, write_strength, erase, write_vector, free_gates,
               allocation_gate, write_gate, read_modes};
  const Dims d = check_inputs(in);
  auto out = alloc_outputs(d, in[0]);
  AT_DISPATCH_FLOATING_TYPES(in[0].scalar_type(), "dnc_access_forward", [&] {
    Backend::template forward<scalar_t>(d, input_ptrs<scalar_t>(in), output_ptrs<scalar_t>(out),
                                        in[0]);
  });
  return {out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]};
}

template <class Backend>
std::vector<Tensor> backward_op(
    const OptT& g_memory, const OptT& g_usage, const OptT& g_link, const OptT& g_precedence,
    const OptT& g_write_weights, const OptT& g_read_weights, const OptT& g_reads,
    const Tensor& memory, const Tensor& usage, const Tensor& link, const Tensor& precedence,
    const Tensor& write_weights, const Tensor& read_weights, const Tensor& read_keys,
    const Tensor& read_strengths, const Tensor& write_key, const Tensor& write_strength,
    const Tensor& erase, const Tensor& write_vector, const Tensor& free_gates,
    const Tensor& allocation_gate, const Tensor& write_gate, const Tensor& read_modes,
    const Tensor& new_memory, const Tensor& new_write_weights, const Tensor& new_read_weights,
    const Tensor& aux) {
  Inputs in = {memory, usage, link, precedence, write_weights, read_weights, read_keys,
               read_strengths, write_key, write_strength, erase, write_vector, free_gates,
               allocation_gate, write_gate, read_modes};
  const Dims d = check_inputs(in);
  std::vector<Tensor> grads;
  for (const OptT& g : {g_memory, g_usage, g_link, g_precedence, g_write_weights, g_read_weights,
                        g_reads})
    grads.push_back(g.has_value() ? *g : Tensor());
  auto saved = saved_outputs(new_memory, new_write_weights, new_read_weights, aux);
  std::vector<Tensor> gin;
  for (const Tensor& t : in) gin.push_back(at::empty_like(t));
  AT_DISPATCH_FLOATING_TYPES(in[0].scalar_type(), "dnc_access_backward", [&] {
    Backend::template backward<scalar_t>(d, input_ptrs<scalar_t>(in),
                                         output_ptrs<scalar_t>(saved), grad_ptrs<scalar_t>(grads),
                                         input_grad_ptrs<scalar_t>(gin), in[0]);
  });
  return gin;
}

}  // namespace dpbench_dnc
