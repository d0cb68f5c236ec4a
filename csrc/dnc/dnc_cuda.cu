// CUDA forward and hand-written backward of the DNC access step (Graves et al. 2016, Methods;
// step numbers and semantics as in dpbench/ops/dnc_reference.py, tie rule included).
// CUDA headers only: raw pointers and a stream come from the torch bindings.
//
// Forward : write_kernel (grid B)  -> link_rows_kernel (grid N x B) -> link_cols_kernel
//           (grid ceil(N/128) x B) -> read_kernel (grid R x B).
// Backward: read_backward_kernel (B) -> link_backward_rows (N x B) -> link_backward_cols
//           (ceil(N/128) x B) -> write_backward_kernel (B).
// The N x N link is read twice in the forward (rows, columns) and its gradient rows/columns
// twice in the backward; nothing of size N x N is stored besides the op's inputs/outputs.
#include <cuda_runtime.h>

#include <cstdint>

#include "dnc_cuda.h"
#include "dnc_cuda_device.cuh"

namespace dpbench_dnc {
namespace {

using namespace cuda_detail;

// ---------------------------------------------------------------- forward kernels
template <typename T>
__global__ void write_kernel(Dims d, StepInputs<T> in, StepOutputs<T> out, T* ws_uu,
                             int* ws_order) {
  __shared__ T smem[33];
  const int64_t b = blockIdx.x, N = d.N, W = d.W;
  T *uu = ws_uu + b * N, *ww = out.write_weights + b * N;
  int* order = ws_order + b * N;
  Aux<T> aux(out.aux, d, b);
  T psi, q;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    const T u = usage_at(in, d, b, i, &psi, &q);
    out.usage[b * N + i] = u;
    uu[i] = T(kEps) + T(1.0 - kEps) * u;
  }
  __syncthreads();
  rank_sort(uu, N, order);
  if (threadIdx.x == 0) {
    T run = 1;
    for (int64_t j = 0; j < N; ++j) {
      aux.alloc[order[j]] = (T(1) - uu[order[j]]) * run;
      run *= uu[order[j]];
    }
  }
  const T* M0 = in.memory + b * N * W;
  content_forward(M0, in.write_key + b * W, in.write_strength[b], N, W, aux.cw, smem);
  const T ga = in.allocation_gate[b], gw = in.write_gate[b];
  T wsum = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    wsum += (ww[i] = gw * (ga * aux.alloc[i] + (T(1) - ga) * aux.cw[i]));
  wsum = block_reduce(wsum, smem);
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    out.precedence[b * N + i] = (T(1) - wsum) * in.precedence[b * N + i] + ww[i];
  const T *e = in.erase + b * W, *v = in.write_vector + b * W;
  for (int64_t idx = threadIdx.x; idx < N * W; idx += blockDim.x) {
    const int64_t i = idx / W, k = idx % W;
    out.memory[b * N * W + idx] = M0[idx] * (T(1) - ww[i] * e[k]) + ww[i] * v[k];
  }
}

template <typename T>
__device__ T link_value(const T* L0, const T* ww, const T* p0, int64_t N, int64_t i, int64_t j) {
  return i == j ? T(0) : (T(1) - ww[i] - ww[j]) * L0[i * N + j] + ww[i] * p0[j];
}

template <typename T>
__global__ void link_rows_kernel(Dims d, StepInputs<T> in, StepOutputs<T> out) {
  __shared__ T smem[33];
  const int64_t i = blockIdx.x, b = blockIdx.y, N = d.N;
  const T *L0 = in.link + b * N * N, *p0 = in.precedence + b * N;
  const T *ww = out.write_weights + b * N, *wr0 = in.read_weights + b * d.R * N;
  T* L = out.link + b * N * N;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) L[i * N + j] = link_value(L0, ww, p0, N, i, j);
  Aux<T> aux(out.aux, d, b);
  for (int64_t r = 0; r < d.R; ++r) {
    T f = 0;
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) f += L[i * N + j] * wr0[r * N + j];
    f = block_reduce(f, smem);
    if (threadIdx.x == 0) aux.F[r * N + i] = f;
  }
}

template <typename T>
__global__ void link_cols_kernel(Dims d, StepInputs<T> in, StepOutputs<T> out) {
  const int64_t j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y, N = d.N, R = d.R;
  if (j >= N) return;
  const T *L = out.link + b * N * N, *wr0 = in.read_weights + b * R * N;
  T acc[kMaxR] = {};
  for (int64_t i = 0; i < N; ++i) {
    const T l = L[i * N + j];
    for (int64_t r = 0; r < R; ++r) acc[r] += l * wr0[r * N + i];
  }
  Aux<T> aux(out.aux, d, b);
  for (int64_t r = 0; r < R; ++r) aux.Bk[r * N + j] = acc[r];
}

template <typename T>
__global__ void read_kernel(Dims d, StepInputs<T> in, StepOutputs<T> out) {
  __shared__ T smem[33];
  const int64_t r = blockIdx.x, b = blockIdx.y, N = d.N, W = d.W;
  const T* M = out.memory + b * N * W;
  Aux<T> aux(out.aux, d, b);
  T* cr = aux.cr + r * N;
  content_forward(M, in.read_keys + (b * d.R + r) * W, in.read_strengths[b * d.R + r], N, W, cr,
                  smem);
  const T* pi = in.read_modes + (b * d.R + r) * 3;
  T* wr = out.read_weights + (b * d.R + r) * N;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    wr[i] = pi[0] * aux.Bk[r * N + i] + pi[1] * cr[i] + pi[2] * aux.F[r * N + i];
  __syncthreads();
  for (int64_t k = threadIdx.x; k < W; k += blockDim.x) {
    T acc = 0;
    for (int64_t i = 0; i < N; ++i) acc += wr[i] * M[i * W + k];
    out.reads[(b * d.R + r) * W + k] = acc;
  }
}

// ---------------------------------------------------------------- backward workspace
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

// ---------------------------------------------------------------- backward kernels
template <typename T>
__global__ void read_backward_kernel(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                     OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  __shared__ T smem[33];
  const int64_t b = blockIdx.x, N = d.N, W = d.W, R = d.R;
  BackWs<T> ws(ws_base, d, b);
  const T *M = saved.memory + b * N * W, *wr = saved.read_weights + b * R * N;
  const T* greads = g.reads ? g.reads + b * R * W : nullptr;
  Aux<T> aux(saved.aux, d, b);
  for (int64_t idx = threadIdx.x; idx < N * W; idx += blockDim.x) {
    const int64_t i = idx / W, k = idx % W;
    T acc = g.memory ? g.memory[b * N * W + idx] : T(0);
    if (greads)
      for (int64_t r = 0; r < R; ++r) acc += wr[r * N + i] * greads[r * W + k];
    ws.gM[idx] = acc;
  }
  for (int64_t idx = threadIdx.x; idx < R * N; idx += blockDim.x) {
    const int64_t r = idx / N, i = idx % N;
    T acc = g.read_weights ? g.read_weights[b * R * N + idx] : T(0);
    if (greads)
      for (int64_t k = 0; k < W; ++k) acc += greads[r * W + k] * M[i * W + k];
    ws.gwr[idx] = acc;
  }
  __syncthreads();
  for (int64_t r = 0; r < R; ++r) {
    const T* pi = in.read_modes + (b * R + r) * 3;
    T sb = 0, sc = 0, sf = 0;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
      const int64_t idx = r * N + i;
      const T gw = ws.gwr[idx];
      sb += gw * aux.Bk[idx];
      sc += gw * aux.cr[idx];
      sf += gw * aux.F[idx];
      ws.gBk[idx] = pi[0] * gw;
      ws.gF[idx] = pi[2] * gw;
      ws.gwr[idx] = pi[1] * gw;  // now ∂/∂c^r
    }
    sb = block_reduce(sb, smem);
    sc = block_reduce(sc, smem);
    sf = block_reduce(sf, smem);
    if (threadIdx.x == 0) {
      T* gpi = gi.read_modes + (b * R + r) * 3;
      gpi[0] = sb, gpi[1] = sc, gpi[2] = sf;
    }
    const T gbeta = content_backward(M, in.read_keys + (b * R + r) * W,
                                     in.read_strengths[b * R + r], aux.cr + r * N,
                                     ws.gwr + r * N, N, W, ws.gM,
                                     gi.read_keys + (b * R + r) * W, ws.gdot, ws.gmn, smem);
    if (threadIdx.x == 0) gi.read_strengths[b * R + r] = gbeta;
  }
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
__global__ void link_backward_rows(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                   OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  __shared__ T smem[33];
  const int64_t i = blockIdx.x, b = blockIdx.y, N = d.N, R = d.R;
  BackWs<T> ws(ws_base, d, b);
  const T *L0 = in.link + b * N * N, *p0 = in.precedence + b * N;
  const T *ww = saved.write_weights + b * N, *wr0 = in.read_weights + b * R * N;
  const T* gL = g.link ? g.link + b * N * N : nullptr;
  T acc_ww = 0, acc_r[kMaxR] = {};
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const T gij = link_grad(gL, ws.gF, ws.gBk, wr0, N, R, i, j);
    const T lij = link_value(L0, ww, p0, N, i, j);
    gi.link[b * N * N + i * N + j] = gij * (T(1) - ww[i] - ww[j]);
    acc_ww += gij * (p0[j] - L0[i * N + j]);
    for (int64_t r = 0; r < R; ++r) acc_r[r] += lij * ws.gBk[r * N + j];
  }
  acc_ww = block_reduce(acc_ww, smem);
  if (threadIdx.x == 0) ws.row_ww[i] = acc_ww;
  for (int64_t r = 0; r < R; ++r) {
    const T s = block_reduce(acc_r[r], smem);
    if (threadIdx.x == 0) ws.row_wr[r * N + i] = s;
  }
}

template <typename T>
__global__ void link_backward_cols(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                   OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  const int64_t j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y, N = d.N, R = d.R;
  if (j >= N) return;
  BackWs<T> ws(ws_base, d, b);
  const T *L0 = in.link + b * N * N, *p0 = in.precedence + b * N;
  const T *ww = saved.write_weights + b * N, *wr0 = in.read_weights + b * R * N;
  const T* gL = g.link ? g.link + b * N * N : nullptr;
  T col_ww = 0, gp0 = 0, acc_r[kMaxR] = {};
  for (int64_t i = 0; i < N; ++i) {
    const T gij = link_grad(gL, ws.gF, ws.gBk, wr0, N, R, i, j);
    const T lij = link_value(L0, ww, p0, N, i, j);
    col_ww -= gij * L0[i * N + j];
    gp0 += gij * ww[i];
    for (int64_t r = 0; r < R; ++r) acc_r[r] += ws.gF[r * N + i] * lij;
  }
  ws.col_ww[j] = col_ww;
  gi.precedence[b * N + j] = gp0;
  for (int64_t r = 0; r < R; ++r) ws.col_wr[r * N + j] = acc_r[r];
}

template <typename T>
__global__ void write_backward_kernel(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                      OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  __shared__ T smem[33];
  const int64_t b = blockIdx.x, N = d.N, W = d.W, R = d.R;
  BackWs<T> ws(ws_base, d, b);
  Aux<T> aux(saved.aux, d, b);
  const T *ww = saved.write_weights + b * N, *p0 = in.precedence + b * N;
  const T* gp = g.precedence ? g.precedence + b * N : nullptr;
  T wsum = 0, gpp = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    wsum += ww[i];
    if (gp) gpp += gp[i] * p0[i];
  }
  wsum = block_reduce(wsum, smem);
  gpp = block_reduce(gpp, smem);
  // Steps 5 and 4: precedence, link partial sums, erase/add.
  const T *M0 = in.memory + b * N * W, *e = in.erase + b * W, *v = in.write_vector + b * W;
  T* gM0 = gi.memory + b * N * W;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    T gw = (g.write_weights ? g.write_weights[b * N + i] : T(0)) + ws.row_ww[i] + ws.col_ww[i];
    if (gp) {
      gw += gp[i] - gpp;
      gi.precedence[b * N + i] += (T(1) - wsum) * gp[i];
    }
    for (int64_t k = 0; k < W; ++k) {
      const T gm = ws.gM[i * W + k], m0 = M0[i * W + k];
      gM0[i * W + k] = gm * (T(1) - ww[i] * e[k]);
      gw += gm * (v[k] - m0 * e[k]);
    }
    ws.gww[i] = gw;
  }
  for (int64_t k = threadIdx.x; k < W; k += blockDim.x) {
    T ge = 0, gv = 0;
    for (int64_t i = 0; i < N; ++i) {
      const T gm = ws.gM[i * W + k];
      ge -= gm * M0[i * W + k] * ww[i];
      gv += gm * ww[i];
    }
    gi.erase[b * W + k] = ge;
    gi.write_vector[b * W + k] = gv;
  }
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
  const T gbeta = content_backward(M0, in.write_key + b * W, in.write_strength[b], aux.cw, ws.gcw,
                                   N, W, gM0, gi.write_key + b * W, ws.gdot, ws.gmn, smem);
  if (threadIdx.x == 0) gi.write_strength[b] = gbeta;
  // Step 2: allocation through the (recomputed) sorted usage; suffix recurrence, one thread.
  T psi, q;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    ws.uu[i] = T(kEps) + T(1.0 - kEps) * usage_at(in, d, b, i, &psi, &q);
    ws.gu[i] = g.usage ? g.usage[b * N + i] : T(0);
  }
  __syncthreads();
  rank_sort(ws.uu, N, ws.order);
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

}  // namespace

std::size_t forward_workspace_bytes(const Dims& d, std::size_t scalar_size) {
  return static_cast<std::size_t>(d.B * d.N) * (scalar_size + sizeof(int));
}

std::size_t backward_workspace_bytes(const Dims& d, std::size_t scalar_size) {
  return static_cast<std::size_t>(d.B) *
         (BackWs<double>::values(d) * scalar_size + d.N * sizeof(int));
}

template <typename T>
cudaError_t forward_cuda(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& out,
                         void* workspace, cudaStream_t stream) {
  if (d.R > kMaxR) return cudaErrorInvalidValue;
  T* uu = static_cast<T*>(workspace);
  int* order = reinterpret_cast<int*>(uu + d.B * d.N);
  const dim3 rows(d.N, d.B), cols((d.N + kRowBlock - 1) / kRowBlock, d.B), heads(d.R, d.B);
  write_kernel<T><<<d.B, kBlock, 0, stream>>>(d, in, out, uu, order);
  link_rows_kernel<T><<<rows, kRowBlock, 0, stream>>>(d, in, out);
  link_cols_kernel<T><<<cols, kRowBlock, 0, stream>>>(d, in, out);
  read_kernel<T><<<heads, kBlock, 0, stream>>>(d, in, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_cuda(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& saved,
                          const OutputGrads<T>& g, const InputGrads<T>& gi, void* workspace,
                          cudaStream_t stream) {
  if (d.R > kMaxR) return cudaErrorInvalidValue;
  const dim3 rows(d.N, d.B), cols((d.N + kRowBlock - 1) / kRowBlock, d.B);
  read_backward_kernel<T><<<d.B, kBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  link_backward_rows<T><<<rows, kRowBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  link_backward_cols<T><<<cols, kRowBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  write_backward_kernel<T><<<d.B, kBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  return cudaGetLastError();
}

template cudaError_t forward_cuda<float>(const Dims&, const StepInputs<float>&,
                                         const StepOutputs<float>&, void*, cudaStream_t);
template cudaError_t forward_cuda<double>(const Dims&, const StepInputs<double>&,
                                          const StepOutputs<double>&, void*, cudaStream_t);
template cudaError_t backward_cuda<float>(const Dims&, const StepInputs<float>&,
                                          const StepOutputs<float>&, const OutputGrads<float>&,
                                          const InputGrads<float>&, void*, cudaStream_t);
template cudaError_t backward_cuda<double>(const Dims&, const StepInputs<double>&,
                                           const StepOutputs<double>&, const OutputGrads<double>&,
                                           const InputGrads<double>&, void*, cudaStream_t);

}  // namespace dpbench_dnc
