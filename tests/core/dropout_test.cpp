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

namespace cora {
namespace {

TEST(Dropout, KeyedRowsDependOnTheirKeyNotTheirBatch) {
  auto x = torch::randn({3, 5, 7});
  torch::Tensor all, one;
  {
    SampleKeys keys({11, 22, 33});
    all = cora::dropout(x, 0.4, true);
    auto second = cora::dropout(x, 0.4, true);  // the next call: other masks
    EXPECT_FALSE(torch::equal(all, second));
  }
  {
    SampleKeys keys({22});
    one = cora::dropout(x.narrow(0, 1, 1), 0.4, true);
  }
  EXPECT_TRUE(torch::equal(one[0], all[1]));
  // Padding a row (a longer T, as in a batch with longer prompts) keeps its first positions' masks.
  auto longer = torch::cat({x.narrow(0, 1, 1), torch::randn({1, 2, 7})}, 1);  // [1, 7, 7]
  {
    SampleKeys keys({22});
    auto y = cora::dropout(longer, 0.4, true);
    EXPECT_TRUE(torch::equal(y.narrow(1, 0, 5)[0], all[1]));
  }
  // A batch whose first dimension is not the keyed samples is an error, not a silent mix-up.
  SampleKeys keys({1, 2});
  EXPECT_THROW(cora::dropout(torch::ones({3, 4}), 0.5, true), c10::Error);
}

TEST(Dropout, TensorPathMasksEqualTheKernelMasks) {
  // bf16 (or CUDA) tensors take the tensor-op mask: it must keep exactly the kernel's elements.
  auto x = torch::ones({4, 37});
  torch::Tensor f32, b16;
  {
    SampleKeys keys({5, 6, 7, 8});
    f32 = cora::dropout(x, 0.3, true);
  }
  {
    SampleKeys keys({5, 6, 7, 8});
    b16 = cora::dropout(x.to(torch::kBFloat16), 0.3, true);
  }
  EXPECT_TRUE(torch::equal(f32 != 0, b16 != 0));
  EXPECT_GT((f32 == 0).sum().item<int64_t>(), 0);
  auto keep = keyed_keep_mask({123}, 1000, 19661, torch::kCPU);
  EXPECT_NEAR(keep.to(torch::kFloat64).mean().item<double>(), 0.7, 0.05);
}

TEST(Dropout, KeyedBackwardUsesTheForwardMask) {
  auto x = torch::randn({2, 33}).requires_grad_();
  SampleKeys keys({9, 10});
  auto y = cora::dropout(x, 0.5, true);
  auto w = torch::randn({2, 33});
  (y * w).sum().backward();
  auto expected = torch::where(y != 0, w * 2.0, torch::zeros_like(w));
  EXPECT_TRUE(torch::allclose(x.grad(), expected, 1e-4, 1e-5));
}

}  // namespace
}  // namespace cora
