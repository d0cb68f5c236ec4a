// Device helpers of the CUDA DNC kernels (dnc_cuda.cu): block reductions, content weighting
// forward/backward, usage, the (usage, index) rank sort and views of the aux buffer. CUDA headers only.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "dnc_kernels.h"

namespace dpbench_dnc {
namespace cuda_detail {

constexpr int kBlock = 256;     // per-sample kernels
constexpr int kRowBlock = 128;  // link row / column kernels
constexpr int kMaxR = 16;       // read heads held in registers (checked by the bindings)

template <typename T>
__device__ T warp_reduce(T v, bool is_max) {
  for (int o = 16; o > 0; o >>= 1) {
    const T other = __shfl_down_sync(0xffffffffu, v, o);
    v = is_max ? (other > v ? other : v) : v + other;
  }
  return v;
}

// Block-wide sum or max, returned to every thread. smem holds 33 values; blockDim % 32 == 0.
template <typename T>
__device__ T block_reduce(T v, T* smem, bool is_max = false) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_reduce(v, is_max);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nw ? smem[lane] : (is_max ? T(-INFINITY) : T(0));
    v = warp_reduce(v, is_max);
    if (lane == 0) smem[32] = v;
  }
  __syncthreads();
  return smem[32];
}

template <typename T>
__device__ T key_norm(const T* key, int64_t W, T* smem) {
  T s = 0;
  for (int64_t k = threadIdx.x; k < W; k += blockDim.x) s += key[k] * key[k];
  return sqrt(block_reduce(s, smem) + T(kEps));
}

// β cos(key, M_i) for row i, also returning ‖M_i‖ and the denominator.
template <typename T>
__device__ T scaled_cos(const T* M, int64_t i, int64_t W, const T* key, T kn, T* mn, T* den) {
  T dot = 0, mm = 0;
  for (int64_t k = 0; k < W; ++k) {
    const T m = M[i * W + k];
    dot += key[k] * m;
    mm += m * m;
  }
  *mn = sqrt(mm + T(kEps));
  *den = kn * *mn + T(kEps);
  return dot / *den;
}

// out_i = softmax_i(β cos(key, M_i)) over one block (steps 3 and 6). Ends synchronised.
template <typename T>
__device__ void content_forward(const T* M, const T* key, T beta, int64_t N, int64_t W, T* out,
                                T* smem) {
  const T kn = key_norm(key, W, smem);
  T top = -INFINITY, mn, den;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    out[i] = beta * scaled_cos(M, i, W, key, kn, &mn, &den);
    top = out[i] > top ? out[i] : top;
  }
  top = block_reduce(top, smem, true);
  T sum = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) sum += (out[i] = exp(out[i] - top));
  sum = block_reduce(sum, smem);
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) out[i] /= sum;
  __syncthreads();
}

// Backward of content_forward: adds into gM [N, W], writes gkey [W], returns dβ.
// gdot / gmn: N scratch values each. Ends synchronised.
template <typename T>
__device__ T content_backward(const T* M, const T* key, T beta, const T* c, const T* gc,
                              int64_t N, int64_t W, T* gM, T* gkey, T* gdot, T* gmn, T* smem) {
  const T kn = key_norm(key, W, smem);
  T s = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) s += gc[i] * c[i];
  s = block_reduce(s, smem);
  T gbeta = 0, gkn = 0, mn, den;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    const T cos = scaled_cos(M, i, W, key, kn, &mn, &den);
    const T gz = c[i] * (gc[i] - s);
    gbeta += gz * cos;
    const T gcos = beta * gz;
    const T gden = -gcos * cos / den;
    gkn += gden * mn;
    gdot[i] = gcos / den;
    gmn[i] = gden * kn / mn;
  }
  gbeta = block_reduce(gbeta, smem);
  gkn = block_reduce(gkn, smem);
  for (int64_t idx = threadIdx.x; idx < N * W; idx += blockDim.x) {
    const int64_t i = idx / W, k = idx % W;
    gM[idx] += gdot[i] * key[k] + gmn[i] * M[idx];
  }
  for (int64_t k = threadIdx.x; k < W; k += blockDim.x) {
    T acc = 0;
    for (int64_t i = 0; i < N; ++i) acc += gdot[i] * M[i * W + k];
    gkey[k] = acc + gkn * key[k] / kn;
  }
  __syncthreads();
  return gbeta;
}

// Step 1 for slot i: returns u_i, and ψ_i / q_i through pointers.
template <typename T>
__device__ T usage_at(const StepInputs<T>& in, const Dims& d, int64_t b, int64_t i, T* psi_out,
                      T* q_out) {
  T psi = 1;
  for (int64_t r = 0; r < d.R; ++r)
    psi *= T(1) - in.free_gates[b * d.R + r] * in.read_weights[(b * d.R + r) * d.N + i];
  const T u0 = in.usage[b * d.N + i], w0 = in.write_weights[b * d.N + i];
  *psi_out = psi;
  *q_out = u0 + w0 - u0 * w0;
  return *q_out * psi;
}

// Stable ascending order of uu (ties: lower index first) by ranking; ends synchronised.
template <typename T>
__device__ void rank_sort(const T* uu, int64_t N, int* order) {
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    int64_t rank = 0;
    for (int64_t j = 0; j < N; ++j) rank += usage_before(uu[j], j, uu[i], i);
    order[rank] = static_cast<int>(i);
  }
  __syncthreads();
}

template <typename T>
struct Aux {  // views of the per-sample aux buffer
  T *cw, *alloc, *cr, *F, *Bk;
  __device__ Aux(T* base, const Dims& d, int64_t b) {
    cw = base + b * (2 + 3 * d.R) * d.N;  // Dims::aux(), host-only
    alloc = cw + d.N;
    cr = alloc + d.N;
    F = cr + d.R * d.N;
    Bk = F + d.R * d.N;
  }
};

}  // namespace cuda_detail
}  // namespace dpbench_dnc
