// The counter-based dropout: keep rate, scaling, determinism under a seed, and a backward pass
// that applies the same mask as the forward pass.
#include "cora/core/dropout.h"

#include <gtest/gtest.h>

namespace cora {
namespace {

TEST(Dropout, KeepRateScaleAndIdentityAtEval) {
  torch::manual_seed(0);
  auto x = torch::ones({1000, 100});
  auto y = cora::dropout(x, 0.2, true);
  double kept = (y != 0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(kept, 0.8, 0.01);
  EXPECT_NEAR(y.max().item<float>(), 65536.0 / (65536.0 - 13107.0), 1e-5);
  EXPECT_NEAR(y.mean().item<float>(), 1.0, 0.02);  // inverted dropout keeps the expectation
  EXPECT_TRUE(torch::equal(cora::dropout(x, 0.2, false), x));
  EXPECT_TRUE(torch::equal(cora::dropout(x, 0.0, true), x));
}

TEST(Dropout, DeterministicUnderSeedAndIndependentOfThreads) {
  auto x = torch::randn({333, 77});
  torch::manual_seed(5);
  auto a = cora::dropout(x, 0.3, true);
  int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  torch::manual_seed(5);
  auto b = cora::dropout(x, 0.3, true);
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(a, b));
  auto c = cora::dropout(x, 0.3, true);  // next draw: another mask
  EXPECT_FALSE(torch::equal(a, c));
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  torch::manual_seed(3);
  auto x = torch::randn({64, 33}).requires_grad_();
  auto y = cora::dropout(x, 0.5, true);
  auto w = torch::randn({64, 33});
  (y * w).sum().backward();
  // d(y·w)/dx = w · mask · scale = w · y / x where kept.
  auto expected = torch::where(y != 0, w * 2.0, torch::zeros_like(w));
  EXPECT_TRUE(torch::allclose(x.grad(), expected, 1e-4, 1e-5));
}

}  // namespace
}  // namespace cora
