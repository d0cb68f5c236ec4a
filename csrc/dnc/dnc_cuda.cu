// CUDA forward and hand-written backward of the DNC access step (Graves et al. 2016, Methods;
// step numbers and semantics as in dpbench/ops/dnc_reference.py, tie rule included).
// CUDA headers only: raw pointers and a stream come from the torch bindings.
//
// Forward : write_kernel (grid B) -> link_rows_warp_kernel (ceil(N/8) x B) ->
//           link_cols_tile_kernel (ceil(N/32) x B) -> read_kernel (R x B).
// Backward: read_heads_backward (R x B) -> gmem_backward (ceil(NW/256) x B) ->
//           link_backward_rows_warp (ceil(N/8) x B) -> link_backward_cols_tile (ceil(N/32) x B)
//           -> write_rows_backward (ceil(N/8) x B) -> erase_add_backward (ceil(W/32) x B) ->
//           write_tail_backward (B) -> write_content_gmem (ceil(NW/256) x B).
// The N x N link is read twice in the forward (rows, columns) and L_{t-1} and dL_t twice in the
// backward; nothing of size N x N is stored besides the op's inputs/outputs. Version 1
// (DPBENCH_DNC_CUDA_VERSION=1, first_version()) is kept as the simple fallback.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

#include "dnc_cuda.h"
#include "dnc_cuda_device.cuh"
#include "dnc_cuda_v1.cuh"

namespace dpbench_dnc {
namespace {

using namespace cuda_detail;

// ---------------------------------------------------------------- forward kernels
template <typename T>
__global__ void write_kernel(Dims d, StepInputs<T> in, StepOutputs<T> out, T* ws_uu,
                             int* ws_order, bool serial_scan) {
  __shared__ T smem[33];
  __shared__ T scan[kBlock];
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
  if (serial_scan) {  // the first version, kept to compare against (DPBENCH_DNC_CUDA_VERSION=1)
    if (threadIdx.x == 0) {
      T run = 1;
      for (int64_t j = 0; j < N; ++j) {
        aux.alloc[order[j]] = (T(1) - uu[order[j]]) * run;
        run *= uu[order[j]];
      }
    }
  } else {
    sorted_prefix_products(uu, order, N, scan, [&](int64_t j, T prefix) {
      aux.alloc[order[j]] = (T(1) - uu[order[j]]) * prefix;
    });
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

// Forward link rows: a warp per row, restrict pointers, the row's w_i in a register.
template <typename T>
__global__ void link_rows_warp_kernel(Dims d, StepInputs<T> in, StepOutputs<T> out) {
  const int lane = threadIdx.x & 31;
  const int64_t i = warp_row(), b = blockIdx.y;
  const int64_t N = d.N, R = d.R;
  if (i >= N) return;  // the whole warp
  const T* __restrict__ l0 = in.link + b * N * N + i * N;
  const T* __restrict__ p0 = in.precedence + b * N;
  const T* __restrict__ ww = out.write_weights + b * N;
  const T* __restrict__ wr0 = in.read_weights + b * R * N;
  T* __restrict__ l = out.link + b * N * N + i * N;
  const T wi = ww[i];
  T f[kMaxR] = {};
  for (int64_t j = lane; j < N; j += 32) {
    const T v = j == i ? T(0) : (T(1) - wi - ww[j]) * l0[j] + wi * p0[j];
    l[j] = v;
#pragma unroll
    for (int r = 0; r < kMaxR; ++r)
      if (r < R) f[r] += v * wr0[r * N + j];
  }
  store_warp_sums(f, R, N, i, Aux<T>(out.aux, d, b).F);
}

template <typename T>
__global__ void link_cols_tile_kernel(Dims d, StepInputs<T> in, StepOutputs<T> out) {
  __shared__ T tile[kWarps][32];
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int64_t j = int64_t(blockIdx.x) * 32 + tx, b = blockIdx.y, N = d.N, R = d.R;
  const T *L = out.link + b * N * N, *wr0 = in.read_weights + b * R * N;
  T acc[kMaxR] = {};
  if (j < N)
    for (int64_t i = ty; i < N; i += kWarps) {
      const T l = L[i * N + j];
#pragma unroll
      for (int r = 0; r < kMaxR; ++r)
        if (r < R) acc[r] += l * wr0[r * N + i];
    }
  store_phase_sums(acc, R, N, j, j < N, tile, Aux<T>(out.aux, d, b).Bk);
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

// ---------------------------------------------------------------- backward, current version
// The read heads' backward on R x B blocks instead of B (one head per block); the memory
// gradient, which sums over the heads, in its own elementwise kernel over every (slot, word).
// Each head's content-backward row scalars (gdot, gmn) are parked in the row_wr / col_wr
// scratch, which the link kernels only fill after gmem_backward has read them.
template <typename T>
__global__ void read_heads_backward(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                    OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  __shared__ T smem[33];
  const int64_t r = blockIdx.x, b = blockIdx.y, N = d.N, W = d.W, R = d.R;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  BackWs<T> ws(ws_base, d, b);
  const T* M = saved.memory + b * N * W;
  const T* greads = g.reads ? g.reads + (b * R + r) * W : nullptr;
  const T* gwr_out = g.read_weights ? g.read_weights + (b * R + r) * N : nullptr;
  Aux<T> aux(saved.aux, d, b);
  T* gw = ws.gwr + r * N;
  for (int64_t i = warp; i < N; i += kWarps) {  // ∂/∂w^r_i: a warp per slot, lanes over words
    T acc = 0;
    if (greads)
      for (int64_t k = lane; k < W; k += 32) acc += greads[k] * M[i * W + k];
    acc = warp_sum(acc);
    if (lane == 0) gw[i] = acc + (gwr_out ? gwr_out[i] : T(0));
  }
  __syncthreads();
  read_modes_backward(d, in, gi, ws, aux, b, r, smem);
  const T gbeta = content_backward_rows(M, in.read_keys + (b * R + r) * W,
                                        in.read_strengths[b * R + r], aux.cr + r * N, gw, N, W,
                                        gi.read_keys + (b * R + r) * W, ws.row_wr + r * N,
                                        ws.col_wr + r * N, smem);
  if (threadIdx.x == 0) gi.read_strengths[b * R + r] = gbeta;
}

// ∂/∂M_t[i,k] = g.memory + Σ_r (w^r_i ∂reads_rk + gdot_ri key_rk + gmn_ri M_ik).
template <typename T>
__global__ void gmem_backward(Dims d, StepInputs<T> in, StepOutputs<T> saved, OutputGrads<T> g,
                              void* ws_base) {
  const int64_t b = blockIdx.y, N = d.N, W = d.W, R = d.R;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= N * W) return;
  BackWs<T> ws(ws_base, d, b);
  const int64_t i = idx / W, k = idx % W;
  const T *wr = saved.read_weights + b * R * N, *keys = in.read_keys + b * R * W;
  const T* greads = g.reads ? g.reads + b * R * W : nullptr;
  const T m = saved.memory[b * N * W + idx];
  T acc = g.memory ? g.memory[b * N * W + idx] : T(0);
  for (int64_t r = 0; r < R; ++r) {
    if (greads) acc += wr[r * N + i] * greads[r * W + k];
    acc += ws.row_wr[r * N + i] * keys[r * W + k] + ws.col_wr[r * N + i] * m;
  }
  ws.gM[idx] = acc;
}

// Link backward with the row (resp. column) invariants held in registers and restrict
// pointers, so each element costs 4 + 2R loads instead of ~6 + 4R.
template <typename T>
__global__ void link_backward_rows_warp(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                      OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  const int lane = threadIdx.x & 31;
  const int64_t i = warp_row(), b = blockIdx.y;
  const int64_t N = d.N, R = d.R;
  if (i >= N) return;  // the whole warp
  BackWs<T> ws(ws_base, d, b);
  const T* __restrict__ l0 = in.link + b * N * N + i * N;
  const T* __restrict__ gl = g.link ? g.link + b * N * N + i * N : nullptr;
  const T* __restrict__ p0 = in.precedence + b * N;
  const T* __restrict__ ww = saved.write_weights + b * N;
  const T* __restrict__ wr0 = in.read_weights + b * R * N;
  const T* __restrict__ gBk = ws.gBk;
  T* __restrict__ gl0 = gi.link + b * N * N + i * N;
  T gFi[kMaxR], wri[kMaxR], acc_r[kMaxR];
#pragma unroll
  for (int r = 0; r < kMaxR; ++r) {
    gFi[r] = r < R ? ws.gF[r * N + i] : T(0);
    wri[r] = r < R ? wr0[r * N + i] : T(0);
    acc_r[r] = 0;
  }
  const T wi = ww[i];
  T acc_ww = 0;
  for (int64_t j = lane; j < N; j += 32) {
    const T a = l0[j], wj = ww[j], pj = p0[j];
    const bool diag = j == i;
    const T lij = diag ? T(0) : (T(1) - wi - wj) * a + wi * pj;
    T gij = gl ? gl[j] : T(0);
#pragma unroll
    for (int r = 0; r < kMaxR; ++r)
      if (r < R) {
        const T bk = gBk[r * N + j];
        gij += gFi[r] * wr0[r * N + j] + wri[r] * bk;
        acc_r[r] += lij * bk;
      }
    if (diag) gij = 0;
    gl0[j] = gij * (T(1) - wi - wj);
    acc_ww += gij * (pj - a);
  }
  acc_ww = warp_sum(acc_ww);
  if (lane == 0) ws.row_ww[i] = acc_ww;
  store_warp_sums(acc_r, R, N, i, ws.row_wr);
}

template <typename T>
__global__ void link_backward_cols_tile(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                      OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  __shared__ T tile[kWarps][32];
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int64_t j = int64_t(blockIdx.x) * 32 + tx, b = blockIdx.y, N = d.N, R = d.R;
  const bool col = j < N;
  BackWs<T> ws(ws_base, d, b);
  const T* __restrict__ L0 = in.link + b * N * N;
  const T* __restrict__ gL = g.link ? g.link + b * N * N : nullptr;
  const T* __restrict__ ww = saved.write_weights + b * N;
  const T* __restrict__ wr0 = in.read_weights + b * R * N;
  const T* __restrict__ gF = ws.gF;
  T wrj[kMaxR], gBkj[kMaxR], acc_r[kMaxR];
#pragma unroll
  for (int r = 0; r < kMaxR; ++r) {
    wrj[r] = col && r < R ? wr0[r * N + j] : T(0);
    gBkj[r] = col && r < R ? ws.gBk[r * N + j] : T(0);
    acc_r[r] = 0;
  }
  const T wj = col ? ww[j] : T(0), pj = col ? in.precedence[b * N + j] : T(0);
  T col_ww = 0, gp0 = 0;
  if (col)
    for (int64_t i = ty; i < N; i += kWarps) {
      const T a = L0[i * N + j], wi = ww[i];
      const bool diag = i == j;
      const T lij = diag ? T(0) : (T(1) - wi - wj) * a + wi * pj;
      T gij = gL ? gL[i * N + j] : T(0);
#pragma unroll
      for (int r = 0; r < kMaxR; ++r)
        if (r < R) {
          const T f = gF[r * N + i];
          gij += f * wrj[r] + wr0[r * N + i] * gBkj[r];
          acc_r[r] += f * lij;
        }
      if (diag) gij = 0;
      col_ww -= gij * a;
      gp0 += gij * wi;
    }
  col_ww = phase_sum(col_ww, tile);
  gp0 = phase_sum(gp0, tile);
  if (ty == 0 && col) ws.col_ww[j] = col_ww, gi.precedence[b * N + j] = gp0;
  store_phase_sums(acc_r, R, N, j, col, tile, ws.col_wr);
}

// Current version: step 4 spread over the GPU — a warp per memory row (∂M_{t-1} and the row's part of
// ∂w), 32-word tiles for ∂e and ∂v — then the per-sample tail, then the write content
// weighting's memory gradient as an elementwise kernel.
template <typename T>
__global__ void write_rows_backward(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                    OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  const int lane = threadIdx.x & 31;
  const int64_t i = warp_row(), b = blockIdx.y;
  const int64_t N = d.N, W = d.W;
  if (i >= N) return;  // the whole warp
  BackWs<T> ws(ws_base, d, b);
  const T *M0 = in.memory + b * N * W + i * W, *e = in.erase + b * W, *v = in.write_vector + b * W;
  const T *gM = ws.gM + i * W, wi = saved.write_weights[b * N + i];
  T* gM0 = gi.memory + b * N * W + i * W;
  T acc = 0;
  for (int64_t k = lane; k < W; k += 32) {
    const T gm = gM[k];
    gM0[k] = gm * (T(1) - wi * e[k]);
    acc += gm * (v[k] - M0[k] * e[k]);
  }
  acc = warp_sum(acc);
  if (lane == 0)
    ws.gww[i] = acc + (g.write_weights ? g.write_weights[b * N + i] : T(0)) + ws.row_ww[i] +
                ws.col_ww[i];
}

template <typename T>
__global__ void erase_add_backward(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                   InputGrads<T> gi, void* ws_base) {
  __shared__ T tile[kWarps][32];
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int64_t k = int64_t(blockIdx.x) * 32 + tx, b = blockIdx.y, N = d.N, W = d.W;
  BackWs<T> ws(ws_base, d, b);
  const T *M0 = in.memory + b * N * W, *ww = saved.write_weights + b * N;
  T ge = 0, gv = 0;
  if (k < W)
    for (int64_t i = ty; i < N; i += kWarps) {
      const T gm = ws.gM[i * W + k] * ww[i];
      ge -= gm * M0[i * W + k];
      gv += gm;
    }
  ge = phase_sum(ge, tile);
  gv = phase_sum(gv, tile);
  if (ty == 0 && k < W) gi.erase[b * W + k] = ge, gi.write_vector[b * W + k] = gv;
}

template <typename T>
__global__ void write_tail_backward(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                    OutputGrads<T> g, InputGrads<T> gi, void* ws_base) {
  __shared__ T smem[33];
  __shared__ T scanA[kBlock], scanB[kBlock];
  BackWs<T> ws(ws_base, d, blockIdx.x);
  write_backward_tail(d, in, saved, g, gi, ws, blockIdx.x, false, false, smem, scanA, scanB);
}

// ∂M_{t-1}[i,k] += gdot_i key_k + gmn_i M_{t-1}[i,k] (the write content weighting).
template <typename T>
__global__ void write_content_gmem(Dims d, StepInputs<T> in, InputGrads<T> gi, void* ws_base) {
  const int64_t b = blockIdx.y, N = d.N, W = d.W;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= N * W) return;
  BackWs<T> ws(ws_base, d, b);
  const int64_t i = idx / W, k = idx % W;
  gi.memory[b * N * W + idx] +=
      ws.gdot[i] * in.write_key[b * W + k] + ws.gmn[i] * in.memory[b * N * W + idx];
}

// DPBENCH_DNC_CUDA_VERSION=1 selects the first version of the kernels, kept as the simple
// fallback and to time against: one thread runs the allocation's product and suffix
// recurrence, one 128-thread block per link row, one thread per link column, one block per
// sample for the whole read and write backward. (Version 2, measured on the H100 and recorded
// in results/kernels-h100/, was version 3's link kernels without the register-held invariants,
// with the per-sample read and write backward.)
bool first_version() {
  static const bool v1 = [] {
    const char* v = std::getenv("DPBENCH_DNC_CUDA_VERSION");
    return v != nullptr && v[0] == '1';
  }();
  return v1;
}

unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

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
  const bool v1 = first_version();
  const dim3 heads(d.R, d.B);
  write_kernel<T><<<d.B, kBlock, 0, stream>>>(d, in, out, uu, order, v1);
  if (v1) {
    cuda_v1::link_rows_kernel<T><<<dim3(d.N, d.B), kRowBlock, 0, stream>>>(d, in, out);
    cuda_v1::link_cols_kernel<T><<<dim3(ceil_div(d.N, kRowBlock), d.B), kRowBlock, 0, stream>>>(
        d, in, out);
  } else {
    link_rows_warp_kernel<T><<<dim3(ceil_div(d.N, kWarps), d.B), kBlock, 0, stream>>>(d, in, out);
    link_cols_tile_kernel<T><<<dim3(ceil_div(d.N, 32), d.B), kBlock, 0, stream>>>(d, in, out);
  }
  read_kernel<T><<<heads, kBlock, 0, stream>>>(d, in, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_cuda(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& saved,
                          const OutputGrads<T>& g, const InputGrads<T>& gi, void* workspace,
                          cudaStream_t stream) {
  if (d.R > kMaxR) return cudaErrorInvalidValue;
  const dim3 rows(ceil_div(d.N, kWarps), d.B), cols(ceil_div(d.N, 32), d.B);
  const dim3 elems(ceil_div(d.N * d.W, kBlock), d.B);
  if (first_version()) {
    cuda_v1::read_backward_kernel<T><<<d.B, kBlock, 0, stream>>>(d, in, saved, g, gi,
                                                                 workspace);
    cuda_v1::link_backward_rows<T><<<dim3(d.N, d.B), kRowBlock, 0, stream>>>(d, in, saved, g, gi,
                                                                   workspace);
    cuda_v1::link_backward_cols<T><<<dim3(ceil_div(d.N, kRowBlock), d.B), kRowBlock, 0, stream>>>(
        d, in, saved, g, gi, workspace);
    cuda_v1::write_backward_kernel<T><<<d.B, kBlock, 0, stream>>>(d, in, saved, g, gi,
                                                                  workspace, true);
    return cudaGetLastError();
  }
  read_heads_backward<T><<<dim3(d.R, d.B), kBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  gmem_backward<T><<<elems, kBlock, 0, stream>>>(d, in, saved, g, workspace);
  link_backward_rows_warp<T><<<rows, kBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  link_backward_cols_tile<T><<<cols, kBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  write_rows_backward<T><<<rows, kBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  erase_add_backward<T><<<dim3(ceil_div(d.W, 32), d.B), kBlock, 0, stream>>>(d, in, saved, gi,
                                                                           workspace);
  write_tail_backward<T><<<d.B, kBlock, 0, stream>>>(d, in, saved, g, gi, workspace);
  write_content_gmem<T><<<elems, kBlock, 0, stream>>>(d, in, gi, workspace);
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
