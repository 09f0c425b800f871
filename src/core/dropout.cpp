// Counter-based dropout with a regenerate-in-backward autograd function, per-call or per-sample
// seeds.
#include "cora/core/dropout.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "core/kernels.h"
#include "cora/core/runtime.h"

namespace cora {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

thread_local DropoutState t_state;

// Row r of x (viewed as [rows, width]) masked with seeds[r]; the mask of element j of a row
// depends only on (seeds[r], j), so any split over threads gives the same mask.
torch::Tensor apply_mask(const torch::Tensor& x, const std::vector<int64_t>& seeds,
                         uint32_t threshold, float scale) {
  auto xc = x.contiguous();
  auto y = torch::empty_like(xc);
  const float* xp = xc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t rows = static_cast<int64_t>(seeds.size()), width = xc.numel() / rows;
  if (rows == 1) {
    at::parallel_for(0, width, 1 << 16, [&](int64_t b, int64_t e) {
      kernels::dropout_apply(xp, yp, b, e, static_cast<uint64_t>(seeds[0]), threshold, scale);
    });
  } else {
    at::parallel_for(0, rows, 1, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        kernels::dropout_apply(xp + r * width, yp + r * width, 0, width,
                               static_cast<uint64_t>(seeds[r]), threshold, scale);
    });
  }
  return y;
}

struct Dropout : torch::autograd::Function<Dropout> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, std::vector<int64_t> seeds,
                               int64_t threshold, double scale) {
    ctx->saved_data["seeds"] = seeds;
    ctx->saved_data["threshold"] = threshold;
    ctx->saved_data["scale"] = scale;
    return apply_mask(x, seeds, static_cast<uint32_t>(threshold), static_cast<float>(scale));
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    auto gx = apply_mask(g[0], ctx->saved_data["seeds"].toIntVector(),
                         static_cast<uint32_t>(ctx->saved_data["threshold"].toInt()),
                         static_cast<float>(ctx->saved_data["scale"].toDouble()));
    return {gx, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// Logical right shift of int64 lanes (torch's >> is arithmetic).
torch::Tensor lsr(const torch::Tensor& z, int k) {
  return torch::bitwise_and(torch::bitwise_right_shift(z, k), (int64_t{1} << (64 - k)) - 1);
}
int64_t as_i64(uint64_t v) { return static_cast<int64_t>(v); }

}  // namespace

DropoutState dropout_state() { return t_state; }

ScopedDropoutState::ScopedDropoutState(DropoutState state) : saved_(t_state) {
  t_state = std::move(state);
}
ScopedDropoutState::~ScopedDropoutState() { t_state = std::move(saved_); }

torch::Tensor keyed_keep_mask(const std::vector<uint64_t>& row_seeds, int64_t width,
                              uint32_t threshold, const torch::Device& device) {
  // splitmix64(seed ^ block·C) per block of 4 elements; element j takes 16 bits (j & 3).
  const int64_t R = static_cast<int64_t>(row_seeds.size()), nb = (width + 3) / 4;
  auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  std::vector<int64_t> s(row_seeds.begin(), row_seeds.end());
  auto seeds = torch::tensor(s, torch::kInt64).to(device).unsqueeze(1);        // [R, 1]
  auto block = torch::arange(nb, i64).unsqueeze(0);                             // [1, nb]
  auto z = torch::bitwise_xor(seeds, block * as_i64(0xD1B54A32D192ED03ull));   // [R, nb]
  z = z + as_i64(0x9E3779B97F4A7C15ull);
  z = torch::bitwise_xor(z, lsr(z, 30)) * as_i64(0xBF58476D1CE4E5B9ull);
  z = torch::bitwise_xor(z, lsr(z, 27)) * as_i64(0x94D049BB133111EBull);
  z = torch::bitwise_xor(z, lsr(z, 31));
  auto lanes = torch::tensor({0, 16, 32, 48}, torch::kInt64).to(device);        // [4]
  auto u = torch::bitwise_and(torch::bitwise_right_shift(z.unsqueeze(-1), lanes), 0xFFFF);
  return u.reshape({R, nb * 4}).narrow(1, 0, width) >= static_cast<int64_t>(threshold);
}

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  const int64_t threshold = std::llround(p * 65536.0);
  // Exact keep probability of the 16-bit test is 1 - threshold/65536; scale by its inverse.
  const double scale = 65536.0 / (65536.0 - static_cast<double>(threshold));
  std::vector<int64_t> seeds;
  if (t_state.keys) {
    const auto& keys = *t_state.keys;
    TORCH_CHECK(x.dim() >= 1 && x.size(0) == static_cast<int64_t>(keys.size()),
                "keyed dropout: the first dimension (", x.dim() ? x.size(0) : 0,
                ") must be the batch of ", keys.size(), " samples");
    const int64_t call = t_state.calls++;
    for (uint64_t k : keys) seeds.push_back(static_cast<int64_t>(seed_mix(k, call)));
  } else if (x.device().is_cpu() && x.scalar_type() == torch::kFloat32) {
    seeds.push_back(torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kInt64)
                        .item<int64_t>());
  } else {
    return torch::dropout(x, p, training);
  }
  if (x.device().is_cpu() && x.scalar_type() == torch::kFloat32)
    return Dropout::apply(x, seeds, threshold, scale);
  std::vector<uint64_t> us(seeds.begin(), seeds.end());
  auto keep = keyed_keep_mask(us, x.numel() / x.size(0), static_cast<uint32_t>(threshold),
                              x.device());                                      // [B, width]
  return x * keep.to(x.scalar_type()).view(x.sizes()) * scale;
}

}  // namespace cora
