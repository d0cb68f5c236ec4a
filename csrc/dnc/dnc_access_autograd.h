// Autograd of dpbench::dnc_access in C++: a torch::autograd::Function registered for the
// Autograd dispatch key (bindings.cpp), so a training step costs no Python at all (the Python
// register_autograd wrapper, its ctx and the 16-way tuple packing were ~10-15 ms per 64-step
// sequence on CPU, and ~0.5 ms per step of host time on a GPU).
//
// Forward: dnc_access_forward through the dispatcher (CPU / CUDA / fake kernels), below
// autograd; saved: the 16 inputs, the new memory, write and read weights (outputs, so nothing
// is copied) and aux. Backward: dnc_access_backward through the dispatcher, except on plain
// CPU tensors, where the kernel is called directly so that ∂/∂L_{t-1} can be written into the
// buffer of ∂/∂L_t when nothing else holds it: in a sequence the one B·N² gradient buffer is
// then reused by every step, instead of one fresh allocation (and its first-touch page faults)
// per step. Semantics: dpbench/ops/dnc_reference.py.
#pragma once
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>
#include <torch/csrc/autograd/custom_function.h>

#include <atomic>
#include <utility>

#include "dnc_binding_utils.h"

namespace dpbench_dnc {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

inline const c10::TypedOperatorHandle<std::vector<Tensor>(at::TensorList)>& forward_handle() {
  static const auto h = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("dpbench::dnc_access_forward", "")
                            .typed<std::vector<Tensor>(at::TensorList)>();
  return h;
}

inline const c10::TypedOperatorHandle<std::vector<Tensor>(const GradList&, at::TensorList)>&
backward_handle() {
  static const auto h = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("dpbench::dnc_access_backward", "")
                            .typed<std::vector<Tensor>(const GradList&, at::TensorList)>();
  return h;
}

// How many backward steps wrote ∂/∂L_{t-1} into ∂/∂L_t's buffer (op dnc_link_grad_reuses).
inline std::atomic<int64_t>& link_grad_reuses() {
  static std::atomic<int64_t> count{0};
  return count;
}

// A real, dense CPU tensor and no tracing is under way: the CPU kernels may be called on it
// directly (with its data pointer), bypassing the dispatcher.
inline bool plain_cpu(const Tensor& g) {
  constexpr auto traced =
      c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize});
  return g.defined() && g.device().is_cpu() && g.layout() == at::kStrided &&
         !g.key_set().has_any(traced) && !c10::impl::dispatch_mode_enabled();
}

// A plain CPU tensor that only `grads` refers to (no other tensor, view or .grad shares its
// storage): its buffer may be overwritten.
inline bool reusable_cpu_buffer(const Tensor& g, const Tensor& like) {
  return plain_cpu(g) && g.is_contiguous() && g.scalar_type() == like.scalar_type() &&
         g.sizes() == like.sizes() && g.use_count() == 1 &&
         g.unsafeGetTensorImpl()->storage().use_count() == 1 && g.storage_offset() == 0;
}

// `CpuBackward(grads, saved, link_grad_out)` runs the CPU backward directly (bindings.cpp).
template <class CpuBackward>
struct AccessFunction : public torch::autograd::Function<AccessFunction<CpuBackward>> {
  template <class... Ts>
  static variable_list forward(AutogradContext* ctx, const Ts&... inputs) {
    std::vector<Tensor> in{inputs...};
    std::vector<Tensor> out;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      out = forward_handle().call(in);
    }
    in.insert(in.end(), {out[0], out[4], out[5], out[7]});  // new M, w^w, w^r, aux
    ctx->save_for_backward(in);
    ctx->set_materialize_grads(false);
    out.pop_back();  // aux stays internal
    return out;
  }

  // Takes the grads by reference: CppNode passes its own list, so a use count of 1 means that
  // no one else holds the tensor.
  static variable_list backward(AutogradContext* ctx, variable_list& grads) {
    const variable_list saved = ctx->get_saved_variables();
    const bool reuse = saved[2].device().is_cpu() && reusable_cpu_buffer(grads[2], saved[2]);
    if (reuse) link_grad_reuses().fetch_add(1, std::memory_order_relaxed);
    const Tensor link_grad = reuse ? grads[2] : Tensor();
    GradList g;
    for (Tensor& t : grads) g.push_back(t.defined() ? std::optional<Tensor>(std::move(t)) : std::nullopt);
    grads.clear();
    if (reuse) return CpuBackward::run(g, saved, link_grad);
    at::AutoDispatchBelowADInplaceOrView guard;
    return backward_handle().call(g, saved);
  }
};

template <class CpuBackward, size_t... I>
variable_list apply_access(at::TensorList in, std::index_sequence<I...>) {
  return AccessFunction<CpuBackward>::apply(in[I]...);
}

// The Autograd kernel of dnc_access(Tensor[16] inputs) -> Tensor[7].
template <class CpuBackward>
std::vector<Tensor> access_autograd(at::TensorList inputs) {
  TORCH_CHECK(inputs.size() == kNumInputs, "dnc: expected ", kNumInputs, " inputs, got ",
              inputs.size());
  return apply_access<CpuBackward>(inputs, std::make_index_sequence<kNumInputs>{});
}

}  // namespace dpbench_dnc
