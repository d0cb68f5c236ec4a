// Device helpers of the CUDA DNC kernels (dnc_cuda.cu): block and warp reductions, content
// weighting forward/backward, usage, the (usage, index) rank sort, the allocation's block scans,
// views of the aux buffer and the backward workspace, link values/gradients and the per-sample
// tail of the write backward shared by every kernel version. CUDA headers only.
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
    cw = base + b * (3 + 4 * d.R) * d.N;  // Dims::aux(), host-only
    alloc = cw + d.N;
    cr = alloc + d.N;
    F = cr + d.R * d.N;
    Bk = F + d.R * d.N;
  }
};


// ---------------------------------------------------------------- link, workspace, write tail
// The current link kernels. Rows: one warp per link row (8 rows per 256-thread block),
// shuffle reductions only, no block barriers. Columns: 32-column tiles with 8 row phases per
// block (coalesced 128-byte row segments, 8x the threads of one-thread-per-column), the phases
// summed through shared memory.
constexpr int kWarps = kBlock / 32;

template <typename T>
__device__ T warp_sum(T v) { return warp_reduce(v, false); }

// Sum of v over the kWarps row phases of a (32 x kWarps) tile; the result is valid in phase 0.
template <typename T>
__device__ T phase_sum(T v, T (*tile)[32]) {
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  tile[ty][tx] = v;
  __syncthreads();
  T s = 0;
  if (ty == 0)
    for (int k = 0; k < kWarps; ++k) s += tile[k][tx];
  __syncthreads();
  return s;
}

// The link row this warp handles in the warp-per-row kernels (8 rows per 256-thread block).
__device__ inline int64_t warp_row() {
  return int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
}

// out[r N + i] = Σ over the warp of acc[r], for the R heads (lane 0 writes).
template <typename T>
__device__ void store_warp_sums(const T (&acc)[kMaxR], int64_t R, int64_t N, int64_t i, T* out) {
#pragma unroll
  for (int r = 0; r < kMaxR; ++r)
    if (r < R) {
      const T s = warp_sum(acc[r]);
      if ((threadIdx.x & 31) == 0) out[r * N + i] = s;
    }
}

// out[r N + j] = Σ over the tile's row phases of acc[r], for the R heads (phase 0 writes
// where `valid`). Every thread of the block must call it: it has barriers.
template <typename T>
__device__ void store_phase_sums(const T (&acc)[kMaxR], int64_t R, int64_t N, int64_t j,
                                 bool valid, T (*tile)[32], T* out) {
#pragma unroll
  for (int r = 0; r < kMaxR; ++r)
    if (r < R) {  // R is uniform across the block: the barriers are safe
      const T s = phase_sum(acc[r], tile);
      if ((threadIdx.x >> 5) == 0 && valid) out[r * N + j] = s;
    }
}

template <typename T>
__device__ T link_value(const T* L0, const T* ww, const T* p0, int64_t N, int64_t i, int64_t j) {
  return i == j ? T(0) : (T(1) - ww[i] - ww[j]) * L0[i * N + j] + ww[i] * p0[j];
}

// ∂/∂L_t[i,j] (masked): the link's own gradient plus the directional reads' rank-2R term.
template <typename T>
__device__ T link_grad(const T* gL, const T* gF, const T* gBk, const T* wr0, int64_t N,
                       int64_t R, int64_t i, int64_t j) {
  if (i == j) return T(0);
  T g = gL ? gL[i * N + j] : T(0);
  for (int64_t r = 0; r < R; ++r) g += gF[r * N + i] * wr0[r * N + j] + wr0[r * N + i] * gBk[r * N + j];
  return g;
}

template <typename T>
struct BackWs {  // per-sample scratch views (T values, then int order)
  T *gM, *gwr, *gF, *gBk, *gdot, *gmn, *row_ww, *col_ww, *row_wr, *col_wr, *gww, *galloc, *gcw,
      *gu, *uu, *prefix;
  int* order;
  static __host__ __device__ int64_t values(const Dims& d) {
    return d.N * d.W + 5 * d.R * d.N + 10 * d.N;
  }
  __device__ BackWs(void* base, const Dims& d, int64_t b) {
    const int64_t N = d.N, RN = d.R * d.N;
    gM = static_cast<T*>(base) + b * values(d);
    gwr = gM + N * d.W;
    gF = gwr + RN;
    gBk = gF + RN;
    row_wr = gBk + RN;
    col_wr = row_wr + RN;
    gdot = col_wr + RN;
    gmn = gdot + N;
    row_ww = gmn + N;
    col_ww = row_ww + N;
    gww = col_ww + N;
    galloc = gww + N;
    gcw = galloc + N;
    gu = gcw + N;
    uu = gu + N;
    prefix = uu + N;
    order = reinterpret_cast<int*>(static_cast<T*>(base) + d.B * values(d)) + b * N;
  }
};

// Read-mode mixing w^r = π_0 b^r + π_1 c^r + π_2 f^r backward for head r, given gw = ∂/∂w^r
// (ws.gwr row r): writes ∂π, ∂b (ws.gBk), ∂f (ws.gF) and turns gw into ∂/∂c^r.
template <typename T>
__device__ void read_modes_backward(const Dims& d, const StepInputs<T>& in,
                                    const InputGrads<T>& gi, BackWs<T>& ws, const Aux<T>& aux,
                                    int64_t b, int64_t r, T* smem) {
  const int64_t N = d.N, R = d.R;
  const T* pi = in.read_modes + (b * R + r) * 3;
  T* gw = ws.gwr + r * N;
  T sb = 0, sc = 0, sf = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    const int64_t idx = r * N + i;
    const T gwv = gw[i];
    sb += gwv * aux.Bk[idx];
    sc += gwv * aux.cr[idx];
    sf += gwv * aux.F[idx];
    ws.gBk[idx] = pi[0] * gwv;
    ws.gF[idx] = pi[2] * gwv;
    gw[i] = pi[1] * gwv;  // now ∂/∂c^r
  }
  sb = block_reduce(sb, smem);
  sc = block_reduce(sc, smem);
  sf = block_reduce(sf, smem);
  if (threadIdx.x == 0) {
    T* gpi = gi.read_modes + (b * R + r) * 3;
    gpi[0] = sb, gpi[1] = sc, gpi[2] = sf;
  }
}

// What every version's write backward shares, per sample, given ws.gww without the precedence
// term: the precedence (step 5's p_t), the gates, the write content weighting (step 3; its
// memory-gradient update only when `memory_update`, else left to write_content_gmem), the
// allocation through the recomputed sorted usage (step 2) and usage/retention (step 1).
template <typename T>
__device__ void write_backward_tail(const Dims& d, const StepInputs<T>& in,
                                    const StepOutputs<T>& saved, const OutputGrads<T>& g,
                                    const InputGrads<T>& gi, BackWs<T>& ws, int64_t b,
                                    bool serial_scan, bool memory_update, T* smem, T* scanA,
                                    T* scanB) {
  const int64_t N = d.N, W = d.W, R = d.R;
  Aux<T> aux(saved.aux, d, b);
  const T *ww = saved.write_weights + b * N, *p0 = in.precedence + b * N;
  const T* gp = g.precedence ? g.precedence + b * N : nullptr;
  // Step 5, precedence p_t = (1 - Σw) p_{t-1} + w.
  T wsum = 0, gpp = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    wsum += ww[i];
    if (gp) gpp += gp[i] * p0[i];
  }
  wsum = block_reduce(wsum, smem);
  gpp = block_reduce(gpp, smem);
  if (gp)
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
      ws.gww[i] += gp[i] - gpp;
      gi.precedence[b * N + i] += (T(1) - wsum) * gp[i];
    }
  // Gates: w = g_w (g_a a + (1 - g_a) c).
  const T ga = in.allocation_gate[b], gwg = in.write_gate[b];
  T ggw = 0, gga = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    const T gw = ws.gww[i], a = aux.alloc[i], c = aux.cw[i];
    ggw += gw * (ga * a + (T(1) - ga) * c);
    gga += gw * gwg * (a - c);
    ws.galloc[i] = gw * gwg * ga;
    ws.gcw[i] = gw * gwg * (T(1) - ga);
  }
  ggw = block_reduce(ggw, smem);
  gga = block_reduce(gga, smem);
  if (threadIdx.x == 0) gi.write_gate[b] = ggw, gi.allocation_gate[b] = gga;
  // Step 3: write content weighting on M_{t-1}.
  const T *M0 = in.memory + b * N * W, *key = in.write_key + b * W;
  const T beta = in.write_strength[b];
  const T gbeta = memory_update
      ? content_backward(M0, key, beta, aux.cw, ws.gcw, N, W, gi.memory + b * N * W,
                         gi.write_key + b * W, ws.gdot, ws.gmn, smem)
      : content_backward_rows(M0, key, beta, aux.cw, ws.gcw, N, W, gi.write_key + b * W,
                              ws.gdot, ws.gmn, smem);
  if (threadIdx.x == 0) gi.write_strength[b] = gbeta;
  // Step 2: allocation through the (recomputed) sorted usage.
  T psi, q;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    ws.uu[i] = T(kEps) + T(1.0 - kEps) * usage_at(in, d, b, i, &psi, &q);
    ws.gu[i] = g.usage ? g.usage[b * N + i] : T(0);
  }
  __syncthreads();
  rank_sort(ws.uu, N, ws.order);
  if (serial_scan) {  // version 1: one thread
    if (threadIdx.x == 0) {
      T run = 1, suffix = 0;
      for (int64_t j = 0; j < N; ++j) ws.prefix[j] = run, run *= ws.uu[ws.order[j]];
      for (int64_t j = N - 1; j >= 0; --j) {
        const int64_t i = ws.order[j];
        ws.gu[i] += T(1.0 - kEps) * ws.prefix[j] * (suffix - ws.galloc[i]);
        suffix = ws.galloc[i] * (T(1) - ws.uu[i]) + ws.uu[i] * suffix;
      }
    }
    __syncthreads();
  } else {  // the same recurrences as block scans; each j (so each slot) by one thread
    sorted_prefix_products(ws.uu, ws.order, N, scanA,
                           [&](int64_t j, T prefix) { ws.prefix[j] = prefix; });
    sorted_suffix_affine(ws.uu, ws.galloc, ws.order, N, scanA, scanB, [&](int64_t j, T S) {
      const int64_t i = ws.order[j];
      ws.gu[i] += T(1.0 - kEps) * ws.prefix[j] * (S - ws.galloc[i]);
    });
  }
  // Step 1: usage and retention.
  const T *fg = in.free_gates + b * R, *wr0 = in.read_weights + b * R * N;
  T acc_f[kMaxR] = {};
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    usage_at(in, d, b, i, &psi, &q);
    const T gu = ws.gu[i], u0 = in.usage[b * N + i], w0 = in.write_weights[b * N + i];
    gi.usage[b * N + i] = gu * psi * (T(1) - w0);
    gi.write_weights[b * N + i] = gu * psi * (T(1) - u0);
    for (int64_t r = 0; r < R; ++r) {
      T excl = 1;
      for (int64_t o = 0; o < R; ++o)
        if (o != r) excl *= T(1) - fg[o] * wr0[o * N + i];
      const T gpsi_excl = gu * q * excl;
      acc_f[r] -= gpsi_excl * wr0[r * N + i];
      gi.read_weights[(b * R + r) * N + i] =
          ws.row_wr[r * N + i] + ws.col_wr[r * N + i] - gpsi_excl * fg[r];
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    const T s = block_reduce(acc_f[r], smem);
    if (threadIdx.x == 0) gi.free_gates[b * R + r] = s;
  }
}

}  // namespace cuda_detail
}  // namespace dpbench_dnc
