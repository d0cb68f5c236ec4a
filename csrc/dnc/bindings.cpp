// Registers the fused DNC access ops with the dispatcher: schemas (TORCH_LIBRARY), the CPU
// implementation and the autograd kernel (TORCH_LIBRARY_IMPL). The CUDA implementation lives in
// bindings_cuda.cpp, compiled only when torch has CUDA. Fake (meta) rules are registered in
// Python (dpbench/ops/dnc_ops.py), for torch.compile and opcheck.
//
// Inputs travel as one Tensor[] in DNCState + DNCInterface order (dnc_binding_utils.h checks
// count, shapes, dtype and device): 6 state tensors, then 10 interface tensors.
#include <ATen/record_function.h>
#include <torch/library.h>

#include "dnc_access_autograd.h"
#include "dnc_binding_utils.h"
#include "dnc_link_pool.h"
#include "dnc_sequence_autograd.h"

namespace dpbench_dnc {
namespace {

struct CpuBackend {
  static Tensor empty_link(at::IntArrayRef sizes, const Tensor& like) {
    return LinkCache::get().empty(sizes, like);
  }
  template <typename T>
  static void forward(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& out,
                      const Tensor&) {
    forward_cpu<T>(d, in, out);
  }
  template <typename T>
  static void backward(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& saved,
                       const OutputGrads<T>& g, const InputGrads<T>& gi, const Tensor&) {
    backward_cpu<T>(d, in, saved, g, gi);
  }
};

// The autograd kernel's direct CPU backward (profiled under the op's name).
struct CpuBackward {
  static std::vector<Tensor> run(const GradList& g, at::TensorList saved,
                                 const Tensor& link_grad_out) {
    RECORD_FUNCTION("dpbench::dnc_access_backward", std::vector<c10::IValue>());
    return backward_op<CpuBackend>(g, saved, link_grad_out);
  }
};

std::vector<Tensor> cpu_backward(const GradList& g, at::TensorList saved) {
  return backward_op<CpuBackend>(g, saved);
}

}  // namespace
}  // namespace dpbench_dnc

TORCH_LIBRARY(dpbench, m) {
  // The public op: one access step with its autograd in C++. inputs: Tensor[16]; returns the
  // new state (6) and the reads.
  m.def("dnc_access(Tensor[] inputs) -> Tensor[]");
  // The kernels: forward -> new state (6), reads, aux; backward(7 output grads, the 16 inputs
  // + new memory, new write weights, new read weights, aux) -> 16 input grads.
  m.def("dnc_access_forward(Tensor[] inputs) -> Tensor[]");
  m.def("dnc_access_backward(Tensor?[] grads, Tensor[] saved) -> Tensor[]");
  // A whole sequence: LSTM controller + interface layer + access (dnc_sequence_autograd.h).
  // weights: w_ih, w_hh, b_ih, b_hh, w_xi, b_xi; init: 6 state tensors, h0, c0, reads0.
  m.def("dnc_sequence(Tensor x, Tensor[] weights, Tensor[] init, bool usage_stop_gradient) "
        "-> Tensor");
  // Diagnostics: backward steps (CPU) that reused the incoming link gradient's buffer.
  m.def("dnc_link_grad_reuses() -> int",
        [] { return dpbench_dnc::link_grad_reuses().load(std::memory_order_relaxed); });
  // The CPU link cache (dnc_link_pool.h): bytes held free, and emptying it.
  m.def("dnc_link_cache_bytes() -> int",
        [] { return static_cast<int64_t>(dpbench_dnc::LinkCache::get().cached_bytes()); });
  m.def("dnc_link_cache_release() -> ()", [] { dpbench_dnc::LinkCache::get().release(); });
}

TORCH_LIBRARY_IMPL(dpbench, CPU, m) {
  m.impl("dnc_access", &dpbench_dnc::access_op<dpbench_dnc::CpuBackend>);
  m.impl("dnc_access_forward", &dpbench_dnc::forward_op<dpbench_dnc::CpuBackend>);
  m.impl("dnc_access_backward", &dpbench_dnc::cpu_backward);
  m.impl("dnc_sequence", &dpbench_dnc::sequence_op);
}

TORCH_LIBRARY_IMPL(dpbench, Autograd, m) {
  m.impl("dnc_access", &dpbench_dnc::access_autograd<dpbench_dnc::CpuBackward>);
  m.impl("dnc_sequence", &dpbench_dnc::sequence_autograd<dpbench_dnc::CpuBackward>);
}
