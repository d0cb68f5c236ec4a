// Raw-pointer interface of the fused DNC access step (Graves et al. 2016, Methods).
//
// Shared by the CPU kernels (dnc_cpu.cpp), the CUDA kernels (dnc_cuda.cu: CUDA headers only)
// and the torch bindings. Every array is contiguous, batch-major; B batch, N slots, W word
// size, R read heads. Semantics, tie rule and epsilons: dpbench/ops/dnc_reference.py.
#pragma once
#include <cstdint>

namespace dpbench_dnc {

constexpr double kEps = 1e-6;  // allocation squash and cosine-norm epsilon

// The allocation sort order: ascending usage, ties by lower index, NaN last (as torch.sort).
// A strict total order, so neither std::stable_sort nor the CUDA rank sort can misbehave.
template <typename T>
#ifdef __CUDACC__
__host__ __device__
#endif
inline bool usage_before(T a, int64_t i, T b, int64_t j) {
  const bool a_nan = a != a, b_nan = b != b;
  if (a_nan || b_nan) return a_nan == b_nan ? i < j : b_nan;
  return a < b || (a == b && i < j);
}

struct Dims {
  int64_t B, N, W, R;
  // Per-sample length of the auxiliary buffer: cw [N], alloc [N], cr [R,N], F [R,N], Bk [R,N]
  // (written by every backend), then what only the CPU backward reads instead of recomputing
  // it: the write cosines [N] and the read cosines [R,N] (the CUDA forward zero-fills that
  // part). The row norms are recomputed: keeping them too put the fused training step's peak
  // memory at 0.5006 of the reference's (goal ≤ 0.5).
  int64_t aux_shared() const { return (2 + 3 * R) * N; }
  int64_t aux() const { return aux_shared() + (R + 1) * N; }
};

// Step inputs: previous state (6 tensors) then the activated interface (10 tensors).
template <typename T>
struct StepInputs {
  const T *memory, *usage, *link, *precedence, *write_weights, *read_weights;
  const T *read_keys, *read_strengths, *write_key, *write_strength, *erase, *write_vector,
      *free_gates, *allocation_gate, *write_gate, *read_modes;
};

// New state, read vectors and the auxiliary buffer saved for the backward.
template <typename T>
struct StepOutputs {
  T *memory, *usage, *link, *precedence, *write_weights, *read_weights, *reads, *aux;
};

// Gradients w.r.t. the outputs; nullptr means zero.
template <typename T>
struct OutputGrads {
  const T *memory, *usage, *link, *precedence, *write_weights, *read_weights, *reads;
};

// Gradients w.r.t. the 16 inputs, same layout as StepInputs (all written, never accumulated).
template <typename T>
struct InputGrads {
  T *memory, *usage, *link, *precedence, *write_weights, *read_weights;
  T *read_keys, *read_strengths, *write_key, *write_strength, *erase, *write_vector,
      *free_gates, *allocation_gate, *write_gate, *read_modes;
};

template <typename T>
void forward_cpu(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& out);

// `saved` holds the forward's new memory, write/read weights and aux (out.link/usage/... unused).
template <typename T>
void backward_cpu(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& saved,
                  const OutputGrads<T>& g, const InputGrads<T>& gi);

}  // namespace dpbench_dnc
