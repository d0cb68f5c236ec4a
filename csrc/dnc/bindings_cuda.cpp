// CUDA implementation of the dpbench::dnc_access_* ops (schemas: bindings.cpp). Compiled only
// when torch has CUDA: allocates scratch with torch and launches dnc_cuda.cu's kernels on the
// current stream of the memory tensor's device.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "dnc_binding_utils.h"
#include "dnc_cuda.h"

namespace dpbench_dnc {
namespace {

Tensor scratch(std::size_t bytes, const Tensor& like) {
  return at::empty({static_cast<int64_t>(bytes)}, like.options().dtype(at::kByte));
}

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "dnc: CUDA ", what, " failed: ", cudaGetErrorString(err),
              " (the CUDA kernels hold at most 16 read heads)");
}

struct CudaBackend {
  static Tensor empty_link(at::IntArrayRef sizes, const Tensor& like) {  // caching allocator
    return at::empty(sizes, like.options());
  }
  template <typename T>
  static void forward(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& out,
                      const Tensor& like) {
    const c10::cuda::CUDAGuard guard(like.device());
    Tensor ws = scratch(forward_workspace_bytes(d, sizeof(T)), like);
    check_launch(forward_cuda<T>(d, in, out, ws.data_ptr(), c10::cuda::getCurrentCUDAStream()),
                 "forward");
  }
  template <typename T>
  static void backward(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& saved,
                       const OutputGrads<T>& g, const InputGrads<T>& gi, const Tensor& like) {
    const c10::cuda::CUDAGuard guard(like.device());
    Tensor ws = scratch(backward_workspace_bytes(d, sizeof(T)), like);
    check_launch(backward_cuda<T>(d, in, saved, g, gi, ws.data_ptr(),
                                  c10::cuda::getCurrentCUDAStream()),
                 "backward");
  }
};

}  // namespace
}  // namespace dpbench_dnc

TORCH_LIBRARY_IMPL(dpbench, CUDA, m) {
  m.impl("dnc_access", &dpbench_dnc::access_op<dpbench_dnc::CudaBackend>);
  m.impl("dnc_access_forward", &dpbench_dnc::forward_op<dpbench_dnc::CudaBackend>);
  m.impl("dnc_access_backward", [](const dpbench_dnc::GradList& g, at::TensorList saved) {
    return dpbench_dnc::backward_op<dpbench_dnc::CudaBackend>(g, saved);
  });
}
