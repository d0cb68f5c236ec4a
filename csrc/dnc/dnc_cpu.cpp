// Fused CPU forward and hand-written backward of the DNC access step (Graves et al. 2016,
// Methods; step numbers refer to dpbench/ops/dnc_reference.py). Parallel over the batch with
// at::parallel_for; every sample is processed by plain loops over raw pointers, one pass over
// the N x N link matrix in the forward and one in the backward.
#include "dnc_kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

// Vectorise a reduction loop (honoured with -fopenmp / -fopenmp-simd; ignored otherwise).
#define DNC_SIMD_SUM(var) _Pragma(DNC_STR(omp simd reduction(+ : var)))
#define DNC_STR(x) #x

namespace dpbench_dnc {
namespace {

template <typename T>
struct Sample {  // per-sample views of the batched arrays
  int64_t b;
  const T* at(const T* p, int64_t len) const { return p ? p + b * len : nullptr; }
  T* at(T* p, int64_t len) const { return p + b * len; }
};

// ‖m_i‖ = sqrt(Σ_k m_ik² + ε) for every row of M [N, W].
template <typename T>
void row_norms(const T* m, int64_t n, int64_t w, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    T s = 0;
    for (int64_t k = 0; k < w; ++k) s += m[i * w + k] * m[i * w + k];
    out[i] = std::sqrt(s + T(kEps));
  }
}

template <typename T>
T key_norm(const T* key, int64_t w) {
  T s = 0;
  for (int64_t k = 0; k < w; ++k) s += key[k] * key[k];
  return std::sqrt(s + T(kEps));
}

// cos_i = k·m_i / (‖k‖‖m_i‖ + ε) for every row; returns ‖k‖.
template <typename T>
T cosines(const T* m, const T* mnorm, const T* key, int64_t n, int64_t w, T* cos) {
  const T kn = key_norm(key, w);
  for (int64_t i = 0; i < n; ++i) {
    T dot = 0;
    DNC_SIMD_SUM(dot)
    for (int64_t k = 0; k < w; ++k) dot += key[k] * m[i * w + k];
    cos[i] = dot / (kn * mnorm[i] + T(kEps));
  }
  return kn;
}

// Content weighting softmax_i(β cos_i) (steps 3 and 6).
template <typename T>
void content_forward(const T* m, const T* mnorm, const T* key, T beta, int64_t n, int64_t w,
                     T* out) {
  cosines(m, mnorm, key, n, w, out);
  T top = -INFINITY;
  for (int64_t i = 0; i < n; ++i) top = std::max(top, beta * out[i]);
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (out[i] = std::exp(beta * out[i] - top));
  for (int64_t i = 0; i < n; ++i) out[i] /= sum;
}

// Backward of content_forward given its output c and grad gc: adds into gm [N, W], writes
// gkey [W] and returns dβ. `scratch` holds N values.
template <typename T>
T content_backward(const T* m, const T* mnorm, const T* key, T beta, const T* c, const T* gc,
                   int64_t n, int64_t w, T* gm, T* gkey, T* scratch) {
  const T kn = cosines(m, mnorm, key, n, w, scratch);
  T s = 0;
  for (int64_t i = 0; i < n; ++i) s += gc[i] * c[i];
  T gbeta = 0, gkn = 0;
  std::fill(gkey, gkey + w, T(0));
  for (int64_t i = 0; i < n; ++i) {
    const T cos = scratch[i];
    const T gz = c[i] * (gc[i] - s);
    gbeta += gz * cos;
    const T gcos = beta * gz;
    const T denom = kn * mnorm[i] + T(kEps);
    const T gdot = gcos / denom;
    const T gden = -gcos * cos / denom;
    gkn += gden * mnorm[i];
    const T gmn_over = gden * kn / mnorm[i];
    const T* mi = m + i * w;
    T* gmi = gm + i * w;
    for (int64_t k = 0; k < w; ++k) {
      gkey[k] += gdot * mi[k];
      gmi[k] += gdot * key[k] + gmn_over * mi[k];
    }
  }
  for (int64_t k = 0; k < w; ++k) gkey[k] += gkn * key[k] / kn;
  return gbeta;
}

// Step 1: ψ_i = Π_r (1 − f_r w^r_{r,i}); u_i = (u0 + ww0 − u0 ww0) ψ_i.
template <typename T>
void usage_forward(const Dims& d, const T* u0, const T* ww0, const T* fg, const T* wr0, T* u) {
  for (int64_t i = 0; i < d.N; ++i) {
    T psi = 1;
    for (int64_t r = 0; r < d.R; ++r) psi *= T(1) - fg[r] * wr0[r * d.N + i];
    u[i] = (u0[i] + ww0[i] - u0[i] * ww0[i]) * psi;
  }
}

// Step 2 helpers: squashed usage and its ascending order (ties: lower index first, NaN last).
template <typename T>
void sorted_usage(const T* u, int64_t n, T* uu, int64_t* order) {
  const T one_minus = T(1.0 - kEps);
  for (int64_t i = 0; i < n; ++i) uu[i] = T(kEps) + one_minus * u[i];
  std::iota(order, order + n, int64_t(0));
  std::sort(order, order + n,
            [uu](int64_t a, int64_t b) { return usage_before(uu[a], a, uu[b], b); });
}

template <typename T>
void allocation_forward(const T* u, int64_t n, T* uu, int64_t* order, T* alloc) {
  sorted_usage(u, n, uu, order);
  T run = 1;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = order[j];
    alloc[i] = (T(1) - uu[i]) * run;
    run *= uu[i];
  }
}

// Backward of the allocation: gu[i] += ∂/∂u_i given ga = ∂/∂a. With s_j the sorted squashed
// usage and P_j = Π_{i<j} s_i: ∂/∂s_j = P_j (T_j − ga_j), T_j = Σ_{m>j} ga_m (1−s_m) Π_{j<i<m} s_i
// (suffix recurrence, no division); the permutation itself gets no gradient.
template <typename T>
void allocation_backward(const T* u, int64_t n, const T* ga, T* uu, int64_t* order, T* prefix,
                         T* gu) {
  sorted_usage(u, n, uu, order);
  T run = 1;
  for (int64_t j = 0; j < n; ++j) {
    prefix[j] = run;
    run *= uu[order[j]];
  }
  T suffix = 0;
  const T one_minus = T(1.0 - kEps);
  for (int64_t j = n - 1; j >= 0; --j) {
    const int64_t i = order[j];
    gu[i] += one_minus * prefix[j] * (suffix - ga[i]);
    suffix = ga[i] * (T(1) - uu[i]) + uu[i] * suffix;
  }
}

template <typename T>
void forward_sample(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& out,
                    int64_t b, std::vector<T>& buf, std::vector<int64_t>& order) {
  const int64_t N = d.N, W = d.W, R = d.R;
  const Sample<T> s{b};
  const T *M0 = s.at(in.memory, N * W), *L0 = s.at(in.link, N * N);
  const T *p0 = s.at(in.precedence, N), *wr0 = s.at(in.read_weights, R * N);
  const T *kr = s.at(in.read_keys, R * W), *br = s.at(in.read_strengths, R);
  const T *e = s.at(in.erase, W), *v = s.at(in.write_vector, W), *pi = s.at(in.read_modes, R * 3);
  const T ga = in.allocation_gate[b], gw = in.write_gate[b];
  T *M = s.at(out.memory, N * W), *u = s.at(out.usage, N), *L = s.at(out.link, N * N);
  T *p = s.at(out.precedence, N), *ww = s.at(out.write_weights, N);
  T *wr = s.at(out.read_weights, R * N), *reads = s.at(out.reads, R * W);
  T* aux = s.at(out.aux, d.aux());
  T *cw = aux, *alloc = aux + N, *cr = aux + 2 * N, *F = cr + R * N, *Bk = F + R * N;
  T *mnorm = buf.data(), *uu = buf.data() + N;

  usage_forward(d, s.at(in.usage, N), s.at(in.write_weights, N), s.at(in.free_gates, R), wr0, u);
  allocation_forward(u, N, uu, order.data(), alloc);
  row_norms(M0, N, W, mnorm);
  content_forward(M0, mnorm, s.at(in.write_key, W), in.write_strength[b], N, W, cw);
  T wsum = 0;
  for (int64_t i = 0; i < N; ++i) wsum += (ww[i] = gw * (ga * alloc[i] + (T(1) - ga) * cw[i]));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < W; ++k)
      M[i * W + k] = M0[i * W + k] * (T(1) - ww[i] * e[k]) + ww[i] * v[k];
  for (int64_t i = 0; i < N; ++i) p[i] = (T(1) - wsum) * p0[i] + ww[i];
  // Step 5-6: link row i, then its contributions to forward (row) and backward (column) reads.
  std::fill(Bk, Bk + R * N, T(0));
  for (int64_t i = 0; i < N; ++i) {
    const T wi = ww[i];
    const T* l0 = L0 + i * N;
    T* l = L + i * N;
    for (int64_t j = 0; j < N; ++j) l[j] = (T(1) - wi - ww[j]) * l0[j] + wi * p0[j];
    l[i] = 0;
    for (int64_t r = 0; r < R; ++r) {
      const T* w = wr0 + r * N;
      T f = 0;
      DNC_SIMD_SUM(f)
      for (int64_t j = 0; j < N; ++j) f += l[j] * w[j];
      F[r * N + i] = f;
      const T wi_r = w[i];
      T* bk = Bk + r * N;
      for (int64_t j = 0; j < N; ++j) bk[j] += wi_r * l[j];
    }
  }
  row_norms(M, N, W, mnorm);
  for (int64_t r = 0; r < R; ++r) {
    content_forward(M, mnorm, kr + r * W, br[r], N, W, cr + r * N);
    const T *m = pi + 3 * r, *c = cr + r * N, *f = F + r * N, *bk = Bk + r * N;
    T* w = wr + r * N;
    for (int64_t i = 0; i < N; ++i) w[i] = m[0] * bk[i] + m[1] * c[i] + m[2] * f[i];
    T* rv = reads + r * W;
    std::fill(rv, rv + W, T(0));
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < W; ++k) rv[k] += w[i] * M[i * W + k];
  }
}

#include "dnc_cpu_backward.inc"

// Samples per task: small problems run on one thread (a parallel region costs more than
// they do, especially on a loaded machine); ~32K element-ops per task as in ATen's GRAIN_SIZE.
int64_t grain(const Dims& d) {
  const int64_t work = d.N * (d.N * (2 * d.R + 2) + d.W * (d.R + 1)) + 1;
  return std::max<int64_t>(1, 32768 / work);
}

}  // namespace

template <typename T>
void forward_cpu(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& out) {
  at::parallel_for(0, d.B, grain(d), [&](int64_t begin, int64_t end) {
    std::vector<T> buf(2 * d.N);
    std::vector<int64_t> order(d.N);
    for (int64_t b = begin; b < end; ++b) forward_sample(d, in, out, b, buf, order);
  });
}

template <typename T>
void backward_cpu(const Dims& d, const StepInputs<T>& in, const StepOutputs<T>& saved,
                  const OutputGrads<T>& g, const InputGrads<T>& gi) {
  at::parallel_for(0, d.B, grain(d), [&](int64_t begin, int64_t end) {
    BackwardScratch<T> scratch(d);
    for (int64_t b = begin; b < end; ++b) backward_sample(d, in, saved, g, gi, b, scratch);
  });
}

template void forward_cpu<float>(const Dims&, const StepInputs<float>&, const StepOutputs<float>&);
template void forward_cpu<double>(const Dims&, const StepInputs<double>&,
                                  const StepOutputs<double>&);
template void backward_cpu<float>(const Dims&, const StepInputs<float>&,
                                  const StepOutputs<float>&, const OutputGrads<float>&,
                                  const InputGrads<float>&);
template void backward_cpu<double>(const Dims&, const StepInputs<double>&,
                                   const StepOutputs<double>&, const OutputGrads<double>&,
                                   const InputGrads<double>&);

}  // namespace dpbench_dnc
