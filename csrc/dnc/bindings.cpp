// Registers the fused DNC access op with the dispatcher: schemas (TORCH_LIBRARY) and the CPU
// implementation (TORCH_LIBRARY_IMPL). The CUDA implementation lives in bindings_cuda.cpp,
// compiled only when torch has CUDA. Autograd and fake (meta) rules are registered in Python
// (dpbench/ops/dnc_ops.py).
#include <torch/library.h>

#include "dnc_binding_utils.h"

namespace dpbench_dnc {
namespace {

struct CpuBackend {
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

}  // namespace
}  // namespace dpbench_dnc

TORCH_LIBRARY(dpbench, m) {
  m.def(
      "dnc_access_forward(Tensor memory, Tensor usage, Tensor link, Tensor precedence, "
      "Tensor write_weights, Tensor read_weights, Tensor read_keys, Tensor read_strengths, "
      "Tensor write_key, Tensor write_strength, Tensor erase, Tensor write_vector, "
      "Tensor free_gates, Tensor allocation_gate, Tensor write_gate, Tensor read_modes) -> "
      "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "dnc_access_backward(Tensor? g_memory, Tensor? g_usage, Tensor? g_link, "
      "Tensor? g_precedence, Tensor? g_write_weights, Tensor? g_read_weights, Tensor? g_reads, "
      "Tensor memory, Tensor usage, Tensor link, Tensor precedence, Tensor write_weights, "
      "Tensor read_weights, Tensor read_keys, Tensor read_strengths, Tensor write_key, "
      "Tensor write_strength, Tensor erase, Tensor write_vector, Tensor free_gates, "
      "Tensor allocation_gate, Tensor write_gate, Tensor read_modes, Tensor new_memory, "
      "Tensor new_write_weights, Tensor new_read_weights, Tensor aux) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(dpbench, CPU, m) {
  m.impl("dnc_access_forward", &dpbench_dnc::forward_op<dpbench_dnc::CpuBackend>);
  m.impl("dnc_access_backward", &dpbench_dnc::backward_op<dpbench_dnc::CpuBackend>);
}
