// Fused CPU forward and hand-written backward of the DNC access step (Graves et al. 2016,
// Methods; step numbers refer to dpbench/ops/dnc_reference.py). Parallel over the batch with
// at::parallel_for; every sample is processed by plain loops over raw pointers, one pass over
// the N x N link matrix in the forward and one in the backward.
#include "dnc_kernels.h"

#include <ATen/Parallel.h>

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

// Vectorise a loop whose pointers the compiler cannot prove disjoint (they are).
#define DNC_SIMD _Pragma("omp simd")

namespace dpbench_dnc {
namespace {

template <typename T>
struct Sample {  // per-sample views of the batched arrays
  int64_t b;
  const T* at(const T* p, int64_t len) const { return p ? p + b * len : nullptr; }
  T* at(T* p, int64_t len) const { return p + b * len; }
};

// ---- Vector helpers: fixed-size chunks and partial sums the compiler keeps in registers ----

// Columns per chunk: one vector register's worth. With AVX-512 that is 64 bytes (a cache
// line). Otherwise 32 bytes (one AVX2 ymm register; two SSE/NEON registers): with 64-byte
// chunks the backward's 4-head link-row loop keeps 5 sums of 2 ymm each plus 10 broadcast
// factors live, more than AVX2's 16 registers, and GCC spilled the sums to the stack on every
// chunk (issue 19).
#ifdef __AVX512F__
constexpr int64_t kChunkBytes = 64;
#else
constexpr int64_t kChunkBytes = 32;
#endif
template <typename T>
constexpr int64_t kLanes = kChunkBytes / sizeof(T);
constexpr int kHeadBlock = 4;

template <int G>
using Heads = std::integral_constant<int, G>;

// Calls f(Heads<G>{}, r0) for consecutive head groups [r0, r0 + G) covering [0, R).
template <class F>
void for_head_groups(int64_t R, F&& f) {
  int64_t r0 = 0;
  for (; r0 + kHeadBlock <= R; r0 += kHeadBlock) f(Heads<kHeadBlock>{}, r0);
  switch (R - r0) {
    case 1: f(Heads<1>{}, r0); break;
    case 2: f(Heads<2>{}, r0); break;
    case 3: f(Heads<3>{}, r0); break;
    default: break;
  }
}

// Calls body(j0, len) over [0, n) in chunks: full ones with a compile-time len (so their
// inner loops vectorise without remainder code), then the tail with a runtime one.
template <typename T, class Body>
__attribute__((always_inline)) inline void for_chunks(int64_t n, Body&& body) {
  constexpr int64_t V = kLanes<T>;
  int64_t j0 = 0;
  for (; j0 + V <= n; j0 += V) body(j0, std::integral_constant<int64_t, V>{});
  if (j0 < n) body(j0, n - j0);
}

// Sum of kLanes partial sums, pairwise (a serial sum is a kLanes-add latency chain). Unrolled so
// each level is one vector add in registers; as a loop GCC kept acc in memory.
template <typename T>
__attribute__((always_inline)) inline T lane_sum(T* acc) {
#pragma GCC unroll 8
  for (int64_t half = kLanes<T> / 2; half > 0; half /= 2)
    for (int64_t k = 0; k < half; ++k) acc[k] += acc[k + half];
  return acc[0];
}

// Σ_k a_k b_k in kLanes partial sums, added pairwise. (With `omp simd reduction` GCC added its
// vector of partial sums up through the stack in a serial chain of scalar adds: ~10% of the
// backward's time outside the link loops, for dots of only W = 32 terms.)
template <typename T>
__attribute__((always_inline)) inline T dot(const T* a, const T* b, int64_t n) {
  T acc[kLanes<T>] = {};
  for_chunks<T>(n, [&](int64_t j0, auto len) {
    DNC_SIMD
    for (int64_t k = 0; k < len; ++k) acc[k] += a[j0 + k] * b[j0 + k];
  });
  return lane_sum(acc);
}

// out[i] = Σ_k term(i, k) for i < n, k < w (a row reduction of an [n, w] expression). When
// w fills whole vector chunks, per row in chunks with a vector of partial sums (as dot()). When
// it does not (W = 20: one chunk and a 4-wide tail, then the horizontal sum, per row), a vector
// of rows at a time, their words gathered and summed over k in order: the training sequence at
// N = 128, W = 20 takes 16 % less, but at W = 32 it took 15 % more (the gathers), hence both.
template <typename T, class Term>
__attribute__((always_inline)) inline void row_sums(int64_t n, int64_t w, T* out, Term&& term) {
  if (w % kLanes<T> != 0) {
    DNC_SIMD
    for (int64_t i = 0; i < n; ++i) {
      T acc = 0;
      for (int64_t k = 0; k < w; ++k) acc += term(i, k);
      out[i] = acc;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    T acc[kLanes<T>] = {};
    for_chunks<T>(w, [&](int64_t k0, auto len) {
      DNC_SIMD
      for (int64_t c = 0; c < len; ++c) acc[c] += term(i, k0 + c);
    });
    out[i] = lane_sum(acc);
  }
}

// ‖m_i‖ = sqrt(Σ_k m_ik² + ε) for every row of M [N, W].
template <typename T>
void row_norms(const T* m, int64_t n, int64_t w, T* out) {
  row_sums(n, w, out, [&](int64_t i, int64_t k) { return m[i * w + k] * m[i * w + k]; });
  for (int64_t i = 0; i < n; ++i) out[i] = std::sqrt(out[i] + T(kEps));
}


template <typename T>
T key_norm(const T* key, int64_t w) {
  return std::sqrt(dot(key, key, w) + T(kEps));
}

// cos_i = k·m_i / (‖k‖‖m_i‖ + ε) for every row; returns ‖k‖.
template <typename T>
T cosines(const T* m, const T* mnorm, const T* key, int64_t n, int64_t w, T* cos) {
  const T kn = key_norm(key, w);
  row_sums(n, w, cos, [&](int64_t i, int64_t k) { return m[i * w + k] * key[k]; });
  DNC_SIMD
  for (int64_t i = 0; i < n; ++i) cos[i] /= kn * mnorm[i] + T(kEps);
  return kn;
}

// Content weighting softmax_i(β cos_i) (steps 3 and 6); the cosines are kept in `cos` [N] for
// the backward.
template <typename T>
void content_forward(const T* m, const T* mnorm, const T* key, T beta, int64_t n, int64_t w,
                     T* cos, T* out) {
  cosines(m, mnorm, key, n, w, cos);
  // Max and sum in kLanes partial results (a running one is a serial latency chain over N).
  T top_l[kLanes<T>], sum_l[kLanes<T>] = {};
  std::fill(top_l, top_l + kLanes<T>, T(-INFINITY));
  for_chunks<T>(n, [&](int64_t j0, auto len) {
    for (int64_t k = 0; k < len; ++k) top_l[k] = std::max(top_l[k], beta * cos[j0 + k]);
  });
  T top = -INFINITY;
  for (const T t : top_l) top = std::max(top, t);
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp(beta * cos[i] - top);
  for_chunks<T>(n, [&](int64_t j0, auto len) {
    for (int64_t k = 0; k < len; ++k) sum_l[k] += out[j0 + k];
  });
  const T sum = lane_sum(sum_l);
  for (int64_t i = 0; i < n; ++i) out[i] /= sum;
}

// Backward of content_forward given its cosines `cosv`, output c and grad gc (all [N]): adds
// into gm [N, W], writes gkey [W] and returns dβ.
template <typename T>
T content_backward(const T* m, const T* mnorm, const T* key, T beta, const T* cosv, const T* c,
                   const T* gc, int64_t n, int64_t w, T* gm, T* gkey) {
  const T kn = key_norm(key, w);
  const T s = dot(gc, c, n);
  T gbeta = 0, gkn = 0;
  std::fill(gkey, gkey + w, T(0));
  for (int64_t i = 0; i < n; ++i) {
    const T cos = cosv[i];
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
    DNC_SIMD  // gkey, gmi, m, key are distinct arrays
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

// Order-preserving unsigned image of a float under usage_before: ascending, −0 == +0, every
// NaN last (equal keys are then ordered by index by a stable sort).
inline uint32_t usage_key(float x) {
  if (x != x) return ~0u;
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits << 1) == 0) return 0x80000000u;                  // ±0
  return (bits >> 31) ? ~bits : (bits | 0x80000000u);      // negatives reversed, below positives
}

// The indices [0, n) ordered by usage_key(uu[i]) with a stable LSD radix sort, one byte per pass
// (a pass whose byte is the same for every key is skipped). Starting from index order, it gives
// exactly std::sort with usage_before, about 5× faster at N = 256: the comparison sort (run in
// the forward and again in the backward) was ~5% of a training step.
inline void radix_order(const float* uu, int64_t n, int64_t* order) {
  if (n == 0) return;
  thread_local std::vector<uint64_t> buf_a, buf_b;  // (key << 32 | index), ping-pong
  buf_a.resize(n), buf_b.resize(n);
  uint64_t *src = buf_a.data(), *dst = buf_b.data();
  uint32_t count[4][256] = {};
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t k = usage_key(uu[i]);
    src[i] = uint64_t(k) << 32 | uint64_t(i);
    for (int p = 0; p < 4; ++p) ++count[p][(k >> (8 * p)) & 255];
  }
  for (int p = 0; p < 4; ++p) {
    const int shift = 32 + 8 * p;
    uint32_t* c = count[p];
    if (int64_t(c[(src[0] >> shift) & 255]) == n) continue;
    uint32_t sum = 0;  // bucket counts -> start offsets
    for (int v = 0; v < 256; ++v) {
      const uint32_t cv = c[v];
      c[v] = sum;
      sum += cv;
    }
    for (int64_t j = 0; j < n; ++j) dst[c[(src[j] >> shift) & 255]++] = src[j];
    std::swap(src, dst);
  }
  for (int64_t j = 0; j < n; ++j) order[j] = int64_t(src[j] & 0xFFFFFFFFu);
}

// Step 2 helpers: squashed usage and its ascending order (ties: lower index first, NaN last).
template <typename T>
void sorted_usage(const T* u, int64_t n, T* uu, int64_t* order) {
  const T one_minus = T(1.0 - kEps);
  for (int64_t i = 0; i < n; ++i) uu[i] = T(kEps) + one_minus * u[i];
  if constexpr (std::is_same_v<T, float>) {
    radix_order(uu, n, order);
  } else {
    std::iota(order, order + n, int64_t(0));
    std::sort(order, order + n,
              [uu](int64_t a, int64_t b) { return usage_before(uu[a], a, uu[b], b); });
  }
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

// ---- Link-matrix rows (steps 5-6): the B·N² part, shared by the forward and the backward ----
//
// Every pass over link data works on one row at a time (it stays in L1) in chunks of kLanes
// columns, with the read heads in groups of up to kHeadBlock whose partial sums are fixed-size
// arrays the compiler keeps in vector registers. (One running sum per head is bound by FMA
// latency, and a separate pass per head reloads the row and the accumulators R times.)

// Software prefetch of the link rows a few rows ahead. In training each step's L_{t-1} (read)
// and L_t / ∂L_{t-1} (written) are 4 MB at B=16, N=256 and come from memory, not cache: the
// hardware prefetcher stops at 4 KB pages (4 rows) and ramps up again on each, so perf showed
// the row loops waiting on the first L_{t-1} loads and on the RFOs of the fresh output rows
// (~40-60% of their samples). Training sequence at B=16, N=256: 144 -> 121 ms; 1 and 2 rows
// ahead were equal, 4 and 8 a little slower (more lines in flight than the core can track).
constexpr int64_t kPrefetchRows = 2;

// Prefetches row `ahead` rows past `row` ([n] elements; `Write`: for ownership, i.e. PREFETCHW,
// so the stores that follow hit in cache). Past the end of the array it prefetches the next
// sample's rows (or nothing useful), never faults: the address is formed as an integer.
template <bool Write, typename T>
inline void prefetch_row(const T* row, int64_t n, int64_t ahead = kPrefetchRows) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(row) + uintptr_t(ahead * n) * sizeof(T);
  for (uintptr_t off = 0; off < uintptr_t(n) * sizeof(T); off += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(p + off), Write ? 1 : 0, 3);
}

// Step 5 for row i: l = (1 − w_i − w) ∘ l0 + w_i p0, diagonal exactly 0. All [N].
template <typename T>
void link_row(int64_t N, int64_t i, const T* __restrict__ ww, const T* __restrict__ l0,
              const T* __restrict__ p0, T* __restrict__ l) {
  const T wi = ww[i];
  DNC_SIMD
  for (int64_t j = 0; j < N; ++j) l[j] = (T(1) - wi - ww[j]) * l0[j] + wi * p0[j];
  l[i] = 0;
}

// Step 6 for the Q consecutive link rows l = L_t[i, i + Q) ([Q, N]) and heads [r0, r0 + G):
// F[r, i+q] = l_q · w^r, Bk[r] += Σ_q w^r_{i+q} l_q. With Q = 2 each load of w^r and each
// load/store of Bk[r] serves two rows (the Bk read-modify-write was most of the pass's L1
// traffic); the Bk sums keep the row order, so the result does not depend on Q.
// wr0 (previous read weights), F, Bk: [R, N].
template <typename T, int G, int Q>
void link_rows_heads_forward(Heads<G>, std::integral_constant<int, Q>, int64_t r0, int64_t N,
                             int64_t i, const T* l, const T* wr0, T* F, T* Bk) {
  constexpr int64_t V = kLanes<T>;
  const T* w[G];
  T* bk[G];
  T wi[Q][G], acc[Q][G][V] = {};
  for (int g = 0; g < G; ++g) {
    w[g] = wr0 + (r0 + g) * N, bk[g] = Bk + (r0 + g) * N;
    for (int q = 0; q < Q; ++q) wi[q][g] = w[g][i + q];
  }
  for_chunks<T>(N, [&](int64_t j0, auto len) {
    DNC_SIMD
    for (int64_t k = 0; k < len; ++k) {
      T lj[Q];
      for (int q = 0; q < Q; ++q) lj[q] = l[q * N + j0 + k];
      for (int g = 0; g < G; ++g) {
        const T wj = w[g][j0 + k];
        T b = bk[g][j0 + k];
        for (int q = 0; q < Q; ++q) {
          acc[q][g][k] += lj[q] * wj;
          b += wi[q][g] * lj[q];
        }
        bk[g][j0 + k] = b;
      }
    }
  });
  for (int q = 0; q < Q; ++q)
    for (int g = 0; g < G; ++g) F[(r0 + g) * N + i + q] = lane_sum(acc[q][g]);
}

// Steps 5-6 of one sample in two passes. First every new link row (one stream over L_{t-1}
// and the fresh L_t, prefetched, see prefetch_row), then the head passes over L_t, which is
// now in L2 (N² floats: 256 KB at N = 256), two rows at a time. Interleaving the two per row
// kept L_t's row in L1 but left memory idle while the heads computed: separating them took
// the forward kernel from 66-94 to 51-76 ms per training sequence at B = 16, N = 256, one
// thread (Zen 4, alternating builds); the results are bit-identical (same sums, same order).
template <typename T>
void link_forward(int64_t N, int64_t R, const T* ww, const T* L0, const T* p0, const T* wr0,
                  T* L, T* F, T* Bk) {
  for (int64_t i = 0; i < N; ++i) {
    prefetch_row<false>(L0 + i * N, N);
    prefetch_row<true>(L + i * N, N);
    link_row(N, i, ww, L0 + i * N, p0, L + i * N);
  }
  std::fill(Bk, Bk + R * N, T(0));
  auto rows = [&](auto q, int64_t i) {
    for_head_groups(R, [&](auto heads, int64_t r0) {
      link_rows_heads_forward(heads, q, r0, N, i, L + i * N, wr0, F, Bk);
    });
  };
  int64_t i = 0;
  for (; i + 2 <= N; i += 2) rows(std::integral_constant<int, 2>{}, i);
  if (i < N) rows(std::integral_constant<int, 1>{}, i);
}

// reads[r] = Σ_i w^r_i M_i for heads [r0, r0 + G): one pass over M with the sums in registers,
// G × kLanes per chunk of columns. (A running sum in reads[r] was a store-to-load latency
// chain over i: ~9% of the forward's time outside the link loops.) wr: [R, N], reads: [R, W].
template <typename T, int G>
void read_vectors(Heads<G>, int64_t r0, int64_t N, int64_t W, const T* M, const T* wr,
                  T* reads) {
  for_chunks<T>(W, [&](int64_t k0, auto len) {
    T acc[G][kLanes<T>] = {};
    for (int64_t i = 0; i < N; ++i) {
      T wi[G];
      for (int g = 0; g < G; ++g) wi[g] = wr[(r0 + g) * N + i];
      DNC_SIMD
      for (int64_t k = 0; k < len; ++k)
        for (int g = 0; g < G; ++g) acc[g][k] += wi[g] * M[i * W + k0 + k];
    }
    for (int g = 0; g < G; ++g)
      for (int64_t k = 0; k < len; ++k) reads[(r0 + g) * W + k0 + k] = acc[g][k];
  });
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
  T *cosw = Bk + R * N, *cosr = cosw + N;
  T *mnorm = buf.data(), *uu = buf.data() + N;

  usage_forward(d, s.at(in.usage, N), s.at(in.write_weights, N), s.at(in.free_gates, R), wr0, u);
  allocation_forward(u, N, uu, order.data(), alloc);
  row_norms(M0, N, W, mnorm);
  content_forward(M0, mnorm, s.at(in.write_key, W), in.write_strength[b], N, W, cosw, cw);
  T wsum = 0;
  for (int64_t i = 0; i < N; ++i) wsum += (ww[i] = gw * (ga * alloc[i] + (T(1) - ga) * cw[i]));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < W; ++k)
      M[i * W + k] = M0[i * W + k] * (T(1) - ww[i] * e[k]) + ww[i] * v[k];
  for (int64_t i = 0; i < N; ++i) p[i] = (T(1) - wsum) * p0[i] + ww[i];
  // Steps 5-6. (Non-temporal stores for the new rows were slower in training: 53 -> 63 ms per
  // forward sequence, since the next step then reads L_{t-1} from DRAM instead of cache.)
  link_forward(N, R, ww, L0, p0, wr0, L, F, Bk);
  row_norms(M, N, W, mnorm);
  for (int64_t r = 0; r < R; ++r) {
    content_forward(M, mnorm, kr + r * W, br[r], N, W, cosr + r * N, cr + r * N);
    const T *m = pi + 3 * r, *c = cr + r * N, *f = F + r * N, *bk = Bk + r * N;
    T* w = wr + r * N;
    for (int64_t i = 0; i < N; ++i) w[i] = m[0] * bk[i] + m[1] * c[i] + m[2] * f[i];
  }
  for_head_groups(R, [&](auto heads, int64_t r0) { read_vectors(heads, r0, N, W, M, wr, reads); });
}

#include "dnc_cpu_backward.inc"

// Samples per task: small problems run on one thread (a parallel region costs more than
// they do, especially on a loaded machine); ~32K element-ops per task as in ATen's GRAIN_SIZE.
int64_t grain(const Dims& d) {
  const int64_t work = d.N * (d.N * (2 * d.R + 2) + d.W * (d.R + 1)) + 1;
  return std::max<int64_t>(1, 32768 / work);
}

// First-touch page faults. Every training step allocates a fresh B·N² link (forward), 4 MB
// at B=16, N=256, and frees them all in the backward. glibc serves blocks above its mmap
// threshold with fresh mmaps, and trims the heap top once more than its trim threshold is free,
// so a sequence can page-fault ~1000 zeroed 4 KB pages per link. Raising the mmap threshold to
// its maximum (32 MB) and the trim threshold to 1 GB keeps freed blocks for reuse instead (cost:
// up to 1 GB of freed memory stays mapped). That setting is process-wide and cannot be undone
// (mallopt has no getter, and any mallopt call switches off glibc's dynamic threshold), so it
// is opt-in: DPBENCH_MALLOPT=1 applies it when the library loads (and is ignored when the user
// tunes malloc through MALLOC_*_ / GLIBC_TUNABLES). By default the library leaves the
// allocator alone: the link buffers come from the DNC's own cache (dnc_link_pool.h) and the
// backward reuses ∂L_t's buffer for ∂L_{t-1} (dnc_access_autograd.h).
struct MallocTuning {
  MallocTuning() {
#ifdef M_MMAP_THRESHOLD
    const char* opt = std::getenv("DPBENCH_MALLOPT");
    if (!opt || std::string(opt) != "1") return;
    for (const char* v : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"})
      if (std::getenv(v)) return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  }
};
const MallocTuning malloc_tuning;

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
