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

// Backward of content_forward up to the memory gradient: writes the per-row scalars gdot [N]
// and gmn [N] (∂/∂M_ik = gdot_i key_k + gmn_i M_ik) and gkey [W], returns dβ. Ends synchronised.
template <typename T>
__device__ T content_backward_rows(const T* M, const T* key, T beta, const T* c, const T* gc,
                                   int64_t N, int64_t W, T* gkey, T* gdot, T* gmn, T* smem) {
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
  for (int64_t k = threadIdx.x; k < W; k += blockDim.x) {
    T acc = 0;
    for (int64_t i = 0; i < N; ++i) acc += gdot[i] * M[i * W + k];
    gkey[k] = acc + gkn * key[k] / kn;
  }
  __syncthreads();
  return gbeta;
}

// Backward of content_forward: adds into gM [N, W], writes gkey [W], returns dβ.
// gdot / gmn: N scratch values each. Ends synchronised.
template <typename T>
__device__ T content_backward(const T* M, const T* key, T beta, const T* c, const T* gc,
                              int64_t N, int64_t W, T* gM, T* gkey, T* gdot, T* gmn, T* smem) {
  const T gbeta = content_backward_rows(M, key, beta, c, gc, N, W, gkey, gdot, gmn, smem);
  for (int64_t idx = threadIdx.x; idx < N * W; idx += blockDim.x) {
    const int64_t i = idx / W, k = idx % W;
    gM[idx] += gdot[i] * key[k] + gmn[i] * M[idx];
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

// Contiguous chunk [lo, hi) of 0..N-1 for this thread (for block scans over a sequence).
__device__ inline void thread_chunk(int64_t N, int64_t* lo, int64_t* hi) {
  const int64_t per = (N + blockDim.x - 1) / blockDim.x;
  *lo = per * threadIdx.x < N ? per * threadIdx.x : N;
  *hi = *lo + per < N ? *lo + per : N;
}

// Exclusive product scan over the sorted squashed usage s_j = uu[order[j]]: calls
// emit(j, P_j) with P_j = Π_{k<j} s_k for every j (each j by one thread). O(N/threads + log)
// instead of a serial loop: per-thread chunk products, a Hillis–Steele scan over the threads in
// shared memory (buf: blockDim values), then each chunk serially. Ends synchronised.
template <typename T, typename Emit>
__device__ void sorted_prefix_products(const T* uu, const int* order, int64_t N, T* buf,
                                       Emit emit) {
  int64_t lo, hi;
  thread_chunk(N, &lo, &hi);
  T p = 1;
  for (int64_t j = lo; j < hi; ++j) p *= uu[order[j]];
  const int t = threadIdx.x;
  buf[t] = p;
  __syncthreads();
  for (int off = 1; off < blockDim.x; off <<= 1) {
    const T v = t >= off ? buf[t - off] : T(1);
    __syncthreads();
    buf[t] *= v;
    __syncthreads();
  }
  T run = t > 0 ? buf[t - 1] : T(1);
  for (int64_t j = lo; j < hi; ++j) {
    emit(j, run);
    run *= uu[order[j]];
  }
  __syncthreads();
}

// The allocation backward's suffix recurrence S_{j-1} = b_j + a_j S_j from S_{N-1} = 0, with
// a_j = s_j and b_j = galloc[order[j]] (1 - s_j): calls emit(j, S_j) for every j. Affine maps
// compose associatively ((A1,B1)∘(A2,B2) = (A1 A2, B1 + A1 B2)), so per-thread chunk maps are
// combined by a reverse Hillis–Steele scan in shared memory (bufA, bufB: blockDim values each).
// Ends synchronised.
template <typename T, typename Emit>
__device__ void sorted_suffix_affine(const T* uu, const T* galloc, const int* order, int64_t N,
                                     T* bufA, T* bufB, Emit emit) {
  int64_t lo, hi;
  thread_chunk(N, &lo, &hi);
  T A = 1, Bc = 0;  // this chunk's map f_lo ∘ ... ∘ f_{hi-1}
  for (int64_t j = hi - 1; j >= lo; --j) {
    const int64_t i = order[j];
    const T a = uu[i], b = galloc[i] * (T(1) - uu[i]);
    Bc = b + a * Bc;
    A = a * A;
  }
  const int t = threadIdx.x, n = blockDim.x;
  bufA[t] = A, bufB[t] = Bc;
  __syncthreads();
  for (int off = 1; off < n; off <<= 1) {  // buf[t] = F_t ∘ F_{t+1} ∘ ... ∘ F_{n-1}
    const bool has = t + off < n;
    const T A2 = has ? bufA[t + off] : T(1), B2 = has ? bufB[t + off] : T(0);
    __syncthreads();
    bufB[t] += bufA[t] * B2;
    bufA[t] *= A2;
    __syncthreads();
  }
  T S = t + 1 < n ? bufB[t + 1] : T(0);  // S_{hi-1}: the later chunks applied to 0
  for (int64_t j = hi - 1; j >= lo; --j) {
    const int64_t i = order[j];
    emit(j, S);
    S = galloc[i] * (T(1) - uu[i]) + uu[i] * S;
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
