// Torch-free hot loops, compiled apart (-fno-math-errno, AVX-512/AVX2/baseline clones chosen at
// run time) so that sqrt, division and dot products vectorise. Library-private.
#pragma once

#include <cstdint>

namespace cora::kernels {

struct AdamScalars {
  float beta1, beta2, eps;
  float l2;         ///< weight decay added to the gradient (Adam), 0 for AdamW
  float shrink;     ///< 1 - lr·wd (AdamW), 1 for Adam
  float step_size;  ///< lr / (1 - beta1^t)
  float bc2_sqrt;   ///< sqrt(1 - beta2^t)
};

/// Adam over [begin, end): p, m, v updated in place, g read.
void adam_update(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end,
                 const AdamScalars& s);

/// Adam over rows [row_begin, row_end) of a [rows, d] parameter whose gradient is wd-free
/// except on rows with slot[r] >= 0, which add vals[slot[r], :] (a coalesced sparse gradient).
void adam_update_rows(float* p, float* m, float* v, int64_t d, const int32_t* slot,
                      const float* vals, int64_t row_begin, int64_t row_end, const AdamScalars& s);

/// out[b] = <a[ia[b]], c[ic[b]]> over rows of width d for b in [begin, end); a row index
/// >= its table's row count gives 0 (unknown-id fallback).
void gathered_dot(const float* a, int64_t na, const int64_t* ia, const float* c, int64_t nc,
                  const int64_t* ic, int64_t d, float* out, int64_t begin, int64_t end);

/// out[b, :] = g[b] · c[ic[b], :] (zero for unknown ids) for b in [begin, end).
void scaled_rows(const float* g, const float* c, int64_t nc, const int64_t* ic, int64_t d,
                 float* out, int64_t begin, int64_t end);

/// Counter-based dropout: y[i] = x[i] · scale if u(seed, i) >= threshold else 0, where u is a
/// 16-bit uniform derived from splitmix64(seed, i / 4). Same mask for the same (seed, i),
/// whatever the thread split, so the backward pass regenerates it instead of storing it.
void dropout_apply(const float* x, float* y, int64_t begin, int64_t end, uint64_t seed,
                   uint32_t threshold, float scale);

}  // namespace cora::kernels
