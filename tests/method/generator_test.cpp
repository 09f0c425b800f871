// The collaborative query generator: W_c's shape, a unit Frobenius norm per sample, different
// CF inputs give different W_c, and eval mode is deterministic (training mode is not: dropout).
#include "cora/method/generator.h"

#include <gtest/gtest.h>

#include <cmath>

namespace cora::method {
namespace {

CollabQueryGenerator make(int64_t d_cf = 8, int64_t d_model = 32, int64_t rank = 4) {
  torch::manual_seed(0);
  return CollabQueryGenerator(GeneratorOptions{.n_queries = 3, .layers = 2, .heads = 2,
                                               .hidden = 0, .intermediate = 24, .dropout = 0.1},
                              d_cf, d_model, rank);
}

TEST(Generator, ShapeAndUnitFrobeniusNormPerSample) {
  auto g = make();
  g->eval();
  auto user = torch::randn({5, 8}), item = torch::randn({5, 8});
  auto wc = g(user, item);
  ASSERT_EQ(wc.sizes(), (std::vector<int64_t>{5, 32, 4}));
  auto norms = wc.reshape({5, -1}).norm(2, 1);  // Frobenius norm of each [D, r]
  EXPECT_TRUE(torch::allclose(norms, torch::ones({5}), 1e-5, 1e-5)) << norms;
}

TEST(Generator, InitialisesAsTheReference) {
  // Q-Former layers: BERT's N(0, 0.02) weights and zero biases. The output layer: the official
  // weight generator's Kaiming-uniform (a = sqrt 5) weight, bound 1/sqrt(fan_in), and nn.Linear's
  // default uniform bias in the same bound.
  CollabQueryGenerator g = make(64, 32, 4);  // fan_in of the head: 2 x 64 = 128
  const double bound = 1.0 / std::sqrt(128.0);
  auto w = g->head->weight, b = g->head->bias;
  EXPECT_LE(w.abs().max().item<double>(), bound);
  EXPECT_NEAR(w.std().item<double>(), bound / std::sqrt(3.0), 0.1 * bound);  // uniform(-c, c): c/sqrt 3
  EXPECT_LE(b.abs().max().item<double>(), bound);
  EXPECT_GT(b.abs().max().item<double>(), 0.5 * bound);
  for (auto& p : g->named_parameters()) {
    const auto& k = p.key();
    if (k.rfind("layers.", 0) != 0 || k.find("norm") != std::string::npos) continue;
    if (k.size() >= 4 && k.substr(k.size() - 4) == "bias")
      EXPECT_EQ(p.value().abs().max().item<double>(), 0.0) << k;
    else
      EXPECT_NEAR(p.value().std().item<double>(), 0.02, 0.004) << k;
  }
}

TEST(Generator, DifferentCfInputsGiveDifferentWeights) {
  auto g = make();
  g->eval();
  auto user = torch::randn({2, 8}), item = torch::randn({2, 8});
  auto a = g(user, item);
  auto other_user = g(user + 1.0, item), other_item = g(user, item * -1.0);
  EXPECT_FALSE(torch::allclose(a, other_user, 1e-4, 1e-4));
  EXPECT_FALSE(torch::allclose(a, other_item, 1e-4, 1e-4));
  // Rows are independent samples: each W_c depends on its own row only.
  auto swapped = g(user.flip(0), item.flip(0));
  EXPECT_TRUE(torch::allclose(swapped, a.flip(0), 1e-5, 1e-6));
}

TEST(Generator, DeterministicInEvalModeAndNotInTraining) {
  auto g = make();
  auto user = torch::randn({3, 8}), item = torch::randn({3, 8});
  g->eval();
  EXPECT_TRUE(torch::equal(g(user, item), g(user, item)));
  g->train();
  EXPECT_FALSE(torch::equal(g(user, item), g(user, item)));  // dropout draws new masks
}

}  // namespace
}  // namespace cora::method
