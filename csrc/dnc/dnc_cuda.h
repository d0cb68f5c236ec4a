// Launchers of the CUDA DNC kernels (dnc_cuda.cu). Raw pointers and a stream only, so that the
// .cu file compiles with nvcc and the CUDA headers alone (no torch).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

#include "dnc_kernels.h"

namespace dpbench_dnc {

// Bytes of global scratch the forward / backward need (the caller allocates, any content).
std::size_t forward_workspace_bytes(const Dims& d, std::size_t scalar_size);
std::size_t backward_workspace_bytes(const Dims& d, std::size_t scalar_size);

template <typename T>
cudaError_t forward_cuda(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& out,
                         void* workspace, cudaStream_t stream);

template <typename T>
cudaError_t backward_cuda(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& saved,
                          const OutputGrads<T>& g, const InputGrads<T>& gi, void* workspace,
                          cudaStream_t stream);

}  // namespace dpbench_dnc
