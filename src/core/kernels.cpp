// Vectorised element loops for the optimizer and the gathered dot-product score.
#include "core/kernels.h"

#include <algorithm>
#include <cmath>

#define CORA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace cora::kernels {

// One Adam element: g already holds the gradient (without L2); m, v, p updated in place.
static inline __attribute__((always_inline)) void adam_elem(float& p, float g, float& m, float& v,
                                                            const AdamScalars& s) {
  g += s.l2 * p;
  m = s.beta1 * m + (1.f - s.beta1) * g;
  v = s.beta2 * v + (1.f - s.beta2) * g * g;
  p = p * s.shrink - s.step_size * m / (std::sqrt(v) / s.bc2_sqrt + s.eps);
}

CORA_CLONES void adam_update(float* __restrict p, const float* __restrict g, float* __restrict m,
                             float* __restrict v, int64_t begin, int64_t end,
                             const AdamScalars& s) {
  const AdamScalars c = s;
  for (int64_t i = begin; i < end; ++i) adam_elem(p[i], g[i], m[i], v[i], c);
}

CORA_CLONES void adam_update_rows(float* __restrict p, float* __restrict m, float* __restrict v,
                                  int64_t d, const int32_t* slot, const float* __restrict vals,
                                  int64_t row_begin, int64_t row_end, const AdamScalars& s) {
  const AdamScalars c = s;
  for (int64_t r = row_begin; r < row_end; ++r) {
    float* pr = p + r * d;
    float* mr = m + r * d;
    float* vr = v + r * d;
    if (slot[r] >= 0) {
      const float* g = vals + static_cast<int64_t>(slot[r]) * d;
      for (int64_t k = 0; k < d; ++k) adam_elem(pr[k], g[k], mr[k], vr[k], c);
    } else {  // weight decay only
      for (int64_t k = 0; k < d; ++k) adam_elem(pr[k], 0.f, mr[k], vr[k], c);
    }
  }
}

CORA_CLONES void gathered_dot(const float* __restrict a, int64_t na, const int64_t* ia,
                              const float* __restrict c, int64_t nc, const int64_t* ic, int64_t d,
                              float* __restrict out, int64_t begin, int64_t end) {
  for (int64_t b = begin; b < end; ++b) {
    const int64_t i = ia[b], j = ic[b];
    if (i < 0 || i >= na || j < 0 || j >= nc) {
      out[b] = 0.f;
      continue;
    }
    const float* x = a + i * d;
    const float* y = c + j * d;
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t k = 0; k < d; ++k) acc += x[k] * y[k];
    out[b] = acc;
  }
}

CORA_CLONES void scaled_rows(const float* __restrict g, const float* __restrict c, int64_t nc,
                             const int64_t* ic, int64_t d, float* __restrict out, int64_t begin,
                             int64_t end) {
  for (int64_t b = begin; b < end; ++b) {
    const int64_t j = ic[b];
    float* o = out + b * d;
    if (j < 0 || j >= nc) {
      for (int64_t k = 0; k < d; ++k) o[k] = 0.f;
      continue;
    }
    const float* y = c + j * d;
    const float s = g[b];
    for (int64_t k = 0; k < d; ++k) o[k] = s * y[k];
  }
}

static inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

CORA_CLONES void dropout_apply(const float* __restrict x, float* __restrict y, int64_t begin,
                               int64_t end, uint64_t seed, uint32_t threshold, float scale) {
  int64_t i = begin;
  while (i < end) {
    const int64_t block = i >> 2;
    const uint64_t r = splitmix64(seed ^ (static_cast<uint64_t>(block) * 0xD1B54A32D192ED03ull));
    const int64_t stop = std::min<int64_t>(end, (block + 1) << 2);
    for (; i < stop; ++i) {
      const uint32_t u = static_cast<uint32_t>(r >> (16 * (i & 3))) & 0xFFFFu;
      y[i] = u >= threshold ? x[i] * scale : 0.f;
    }
  }
}

}  // namespace cora::kernels
