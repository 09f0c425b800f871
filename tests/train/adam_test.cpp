// The fused Adam kernel against the tensor-op formulation of torch.optim.Adam / AdamW.
#include "cora/train/adam.h"

#include <gtest/gtest.h>

namespace cora::train {
namespace {

// Reference: the textbook update with tensor ops (torch.optim.Adam's algorithm).
void reference_step(torch::Tensor p, torch::Tensor g, torch::Tensor m, torch::Tensor v, int t,
                    double lr, double wd, bool decoupled) {
  if (!decoupled) g = g + wd * p;
  if (decoupled) p.mul_(1 - lr * wd);
  m.mul_(0.9).add_(g, 0.1);
  v.mul_(0.999).addcmul_(g, g, 0.001);
  double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.999, t);
  p.addcdiv_(m, v.sqrt() / std::sqrt(bc2) + 1e-8, -lr / bc1);
}

TEST(Adam, FusedMatchesReferenceForAdamAndAdamW) {
  for (bool decoupled : {false, true}) {
    torch::manual_seed(0);
    auto p = torch::randn({300, 70}).requires_grad_();
    auto q = torch::randn({5}).requires_grad_();  // excluded from decay
    auto rp = p.detach().clone(), rq = q.detach().clone();
    auto m1 = torch::zeros_like(rp), v1 = torch::zeros_like(rp), m2 = torch::zeros_like(rq),
         v2 = torch::zeros_like(rq);
    Adam opt({p, q}, {.weight_decay = 0.1, .decoupled = decoupled}, {true, false});
    for (int t = 1; t <= 5; ++t) {
      auto gp = torch::randn_like(rp), gq = torch::randn_like(rq);
      p.mutable_grad() = gp.clone();
      q.mutable_grad() = gq.clone();
      opt.step(1e-2);
      reference_step(rp, gp, m1, v1, t, 1e-2, 0.1, decoupled);
      reference_step(rq, gq, m2, v2, t, 1e-2, 0.0, decoupled);
    }
    EXPECT_TRUE(torch::allclose(p.detach(), rp, 1e-5, 1e-6)) << "decoupled=" << decoupled;
    EXPECT_TRUE(torch::allclose(q.detach(), rq, 1e-5, 1e-6)) << "decoupled=" << decoupled;
  }
}

TEST(Adam, SparseRowGradientEqualsDense) {
  torch::manual_seed(2);
  auto a = torch::randn({10, 6}).requires_grad_();
  auto b = a.detach().clone().requires_grad_();
  Adam oa({a}, {.weight_decay = 0.05}), ob({b}, {.weight_decay = 0.05});
  for (int t = 0; t < 3; ++t) {
    auto idx = torch::tensor({3, 7, 3, 0}, torch::kInt64);  // duplicate row 3
    auto vals = torch::randn({4, 6});
    a.mutable_grad() = torch::sparse_coo_tensor(idx.unsqueeze(0), vals, {10, 6});
    b.mutable_grad() = torch::zeros({10, 6}).index_add_(0, idx, vals);
    oa.step(0.01);
    ob.step(0.01);
    oa.zero_grad();
  }
  EXPECT_TRUE(torch::allclose(a.detach(), b.detach(), 1e-6, 1e-7));
}

TEST(Adam, StateRoundTripContinuesIdentically) {
  torch::manual_seed(1);
  auto a = torch::randn({64}).requires_grad_();
  auto b = a.detach().clone().requires_grad_();
  Adam oa({a}, {.weight_decay = 0.01});
  for (int t = 0; t < 3; ++t) {
    a.mutable_grad() = torch::ones_like(a) * t;
    oa.step(0.1);
  }
  { torch::NoGradGuard ng; b.copy_(a); }
  Adam ob({b}, {.weight_decay = 0.01});
  std::map<std::string, torch::Tensor> s;
  for (auto& [k, v] : oa.state()) s[k] = v.clone();
  ob.load_state(s);
  a.mutable_grad() = torch::full_like(a, 0.5);
  b.mutable_grad() = torch::full_like(b, 0.5);
  oa.step(0.1);
  ob.step(0.1);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(ob.steps(), 4);
}

}  // namespace
}  // namespace cora::train
