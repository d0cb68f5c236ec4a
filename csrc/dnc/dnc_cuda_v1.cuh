// Version 1 of the CUDA DNC kernels (selected by DPBENCH_DNC_CUDA_VERSION=1): one 128-thread
// block per link row, one thread per link column, one block per sample for the whole read and
// write backward, one thread for the allocation's product and suffix recurrence. The simple
// fallback, kept to time against (results/kernels-h100/). Included by dnc_cuda.cu only.
#pragma once
#include "dnc_cuda_device.cuh"

namespace dpbench_dnc {
namespace cuda_v1 {

using namespace cuda_detail;

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
    read_modes_backward(d, in, gi, ws, aux, b, r, smem);
    const T gbeta = content_backward(M, in.read_keys + (b * R + r) * W,
                                     in.read_strengths[b * R + r], aux.cr + r * N,
                                     ws.gwr + r * N, N, W, ws.gM,
                                     gi.read_keys + (b * R + r) * W, ws.gdot, ws.gmn, smem);
    if (threadIdx.x == 0) gi.read_strengths[b * R + r] = gbeta;
  }
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

// Version 1: the whole write backward on one block per sample.
template <typename T>
__global__ void write_backward_kernel(Dims d, StepInputs<T> in, StepOutputs<T> saved,
                                      OutputGrads<T> g, InputGrads<T> gi, void* ws_base,
                                      bool serial_scan) {
  __shared__ T smem[33];
  __shared__ T scanA[kBlock], scanB[kBlock];
  const int64_t b = blockIdx.x, N = d.N, W = d.W;
  BackWs<T> ws(ws_base, d, b);
  const T* ww = saved.write_weights + b * N;
  // Step 4, erase/add M_t = M_{t-1} (1 - w e^T) + w v^T, and the link's partial sums.
  const T *M0 = in.memory + b * N * W, *e = in.erase + b * W, *v = in.write_vector + b * W;
  T* gM0 = gi.memory + b * N * W;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    T gw = (g.write_weights ? g.write_weights[b * N + i] : T(0)) + ws.row_ww[i] + ws.col_ww[i];
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
  __syncthreads();
  write_backward_tail(d, in, saved, g, gi, ws, b, serial_scan, true, smem, scanA, scanB);
}

}  // namespace cuda_v1
}  // namespace dpbench_dnc
