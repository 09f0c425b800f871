// Counter-based dropout with a regenerate-in-backward autograd function.
#include "cora/core/dropout.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "core/kernels.h"

namespace cora {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Tensor apply_mask(const torch::Tensor& x, uint64_t seed, uint32_t threshold, float scale) {
  auto xc = x.contiguous();
  auto y = torch::empty_like(xc);
  const float* xp = xc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  // The mask of element i depends only on (seed, i): any split over threads gives the same mask.
  at::parallel_for(0, xc.numel(), 1 << 16, [&](int64_t b, int64_t e) {
    kernels::dropout_apply(xp, yp, b, e, seed, threshold, scale);
  });
  return y;
}

struct Dropout : torch::autograd::Function<Dropout> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t seed,
                               int64_t threshold, double scale) {
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["threshold"] = threshold;
    ctx->saved_data["scale"] = scale;
    return apply_mask(x, static_cast<uint64_t>(seed), static_cast<uint32_t>(threshold),
                      static_cast<float>(scale));
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    auto gx = apply_mask(g[0], static_cast<uint64_t>(ctx->saved_data["seed"].toInt()),
                         static_cast<uint32_t>(ctx->saved_data["threshold"].toInt()),
                         static_cast<float>(ctx->saved_data["scale"].toDouble()));
    return {gx, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32)
    return torch::dropout(x, p, training);
  const int64_t seed =
      torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kInt64).item<int64_t>();
  const int64_t threshold = std::llround(p * 65536.0);
  // Exact keep probability of the 16-bit test is 1 - threshold/65536; scale by its inverse.
  const double scale = 65536.0 / (65536.0 - static_cast<double>(threshold));
  return Dropout::apply(x, seed, threshold, scale);
}

}  // namespace cora
