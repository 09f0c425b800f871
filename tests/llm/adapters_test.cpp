// The delta invariants: zero B changes nothing; a batch of per-sample deltas equals each sample
// alone; the delta equals the merged weight W + s·B·A; frozen weights get no gradient; LoRA
// leaves the base weights untouched.
#include "cora/llm/adapters.h"

#include <gtest/gtest.h>

namespace cora::llm {
namespace {

LlamaConfig cfg() {
  LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 30;
  return c;
}

struct Fixture {
  Llama m{cfg()};
  PerSampleLowRank ad{cfg(), LowRankOptions{.rank = 4, .alpha = 8, .dropout = 0.0}};
  torch::Tensor ids = torch::tensor({{1, 4, 6, 8, 2}, {1, 9, 3, 5, 7}, {1, 2, 2, 2, 2}}, torch::kInt64);
  torch::Tensor pos = torch::tensor({4, 4, 4});
  Fixture() {
    m->init_random(7);
    m->freeze();
    m->eval();
    ad->eval();
  }
  void randomize_b() {
    torch::NoGradGuard ng;
    for (auto& p : ad->parameters()) p.normal_(0, 0.5);
  }
  torch::Tensor yes_logits(const torch::Tensor& wc, const torch::Tensor& rows) {
    LlmInput in{rows.dim() ? ids.index_select(0, rows) : ids, {}, ad.get(), nullptr, wc};
    return m->logits(m->hidden_at(in, pos.index_select(0, rows)));
  }
};

TEST(Adapters, ZeroBLeavesLogitsUnchanged) {
  Fixture f;
  torch::NoGradGuard ng;
  auto all = torch::arange(3);
  auto wc = torch::randn({3, 32, 4});
  auto base = f.m->logits(f.m->hidden_at({f.ids}, f.pos));
  EXPECT_TRUE(torch::equal(f.yes_logits(wc, all), base));
}

TEST(Adapters, BatchEqualsEachSampleAloneAndMergedWeight) {
  Fixture f;
  f.randomize_b();
  torch::NoGradGuard ng;
  auto wc = torch::randn({3, 32, 4});
  auto batch = f.yes_logits(wc, torch::arange(3));
  for (int64_t s = 0; s < 3; ++s) {
    auto one = f.yes_logits(wc.narrow(0, s, 1), torch::tensor({s}));
    EXPECT_TRUE(torch::allclose(batch[s], one[0], 1e-5, 1e-5)) << "sample " << s;
  }
  // Merged weights for sample 1: W' = W + (α/r)·B·W_cᵀ on every target projection.
  Llama merged(cfg());
  merged->init_random(7);
  auto named = f.ad->named_parameters();
  for (int64_t l = 0; l < 2; ++l) {
    auto& layer = *merged->model->layers[l]->as<DecoderLayerImpl>();
    for (auto [lin, name] : {std::pair{layer.self_attn->q_proj, "q_proj"}, {layer.self_attn->k_proj, "k_proj"},
                             {layer.self_attn->v_proj, "v_proj"}, {layer.self_attn->o_proj, "o_proj"}}) {
      auto b = named["layers." + std::to_string(l) + "." + name + ".lora_B"];
      lin->weight.add_(2.0 * b.matmul(wc[1].t()));
    }
  }
  auto via_merged = merged->logits(merged->hidden_at({f.ids.narrow(0, 1, 1)}, torch::tensor({4})));
  EXPECT_TRUE(torch::allclose(batch[1], via_merged[0], 1e-4, 1e-4));
}

TEST(Adapters, GradientsReachOnlyBAndWc) {
  Fixture f;
  f.randomize_b();
  f.ad->train();
  auto wc = torch::randn({3, 32, 4}, torch::requires_grad());
  auto logits = f.yes_logits(wc, torch::arange(3));
  logits.select(1, 5).sum().backward();
  for (auto& p : f.m->parameters()) EXPECT_FALSE(p.grad().defined());
  for (auto& p : f.ad->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_GT(p.grad().abs().sum().item<float>(), 0.f);
  }
  ASSERT_TRUE(wc.grad().defined());
  EXPECT_GT(wc.grad().abs().sum().item<float>(), 0.f);
}

TEST(Adapters, DownProjIsRefusedForPerSample) {
  EXPECT_THROW(PerSampleLowRank(cfg(), LowRankOptions{.targets = {Proj::down}}), std::exception);
  EXPECT_EQ(parse_targets({"q", "v_proj"}, "k"), (std::vector<Proj>{Proj::q, Proj::v}));
  EXPECT_THROW(parse_targets({"x_proj"}, "k"), std::exception);
}

TEST(Adapters, LoraTrainsOnlyItsOwnWeights) {
  Llama m(cfg());
  m->init_random(8);
  m->freeze();
  SharedLowRank lora(cfg(), LowRankOptions{.targets = {Proj::q, Proj::v}, .rank = 4, .alpha = 8});
  auto before = m->model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->weight.clone();
  auto ids = torch::tensor({{1, 3, 5}}, torch::kInt64);
  auto base = m->logits(m->hidden_at({ids}, torch::tensor({2}))).detach();
  auto out = m->logits(m->hidden_at({ids, {}, lora.get()}, torch::tensor({2})));
  EXPECT_TRUE(torch::allclose(out, base));  // B = 0 at init
  out.sum().backward();
  int with_grad = 0;
  for (auto& p : lora->named_parameters())
    if (p.value().grad().defined() && p.key().find("lora_B") != std::string::npos) ++with_grad;
  EXPECT_EQ(with_grad, 4);  // q and v of both layers
  EXPECT_TRUE(torch::equal(m->model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->weight, before));
}

}  // namespace
}  // namespace cora::llm

namespace cora::llm {
namespace {

TEST(Adapters, ActivationCheckpointingGivesTheSameGradients) {
  auto grads = [](bool checkpoint, bool lora) {
    Llama m(cfg());
    m->init_random(9);
    m->freeze();
    m->set_checkpointing(checkpoint);
    torch::manual_seed(11);
    PerSampleLowRank cora_ad(cfg(), LowRankOptions{.rank = 4, .alpha = 8, .dropout = 0.3});
    SharedLowRank lora_ad(cfg(), LowRankOptions{.targets = {Proj::q, Proj::v}, .rank = 4, .alpha = 8, .dropout = 0.3});
    torch::nn::Module& mod = lora ? static_cast<torch::nn::Module&>(*lora_ad) : *cora_ad;
    {
      torch::NoGradGuard ng;
      for (auto& p : mod.parameters()) p.normal_(0, 0.3);
    }
    auto wc = torch::randn({2, 32, 4}).requires_grad_();
    Adapter* ad = lora ? static_cast<Adapter*>(lora_ad.get()) : cora_ad.get();
    torch::manual_seed(42);  // dropout masks
    auto ids = torch::tensor({{1, 4, 6, 8}, {1, 9, 3, 5}}, torch::kInt64);
    auto y = m->logits(m->hidden_at({ids, {}, ad, nullptr, lora ? torch::Tensor() : wc},
                                    torch::tensor({3, 3})),
                       torch::tensor({5}));
    y.sum().backward();
    std::vector<torch::Tensor> g;
    for (auto& p : mod.parameters()) g.push_back(p.grad().clone());
    if (!lora) g.push_back(wc.grad().clone());
    return g;
  };
  for (bool lora : {false, true}) {
    auto plain = grads(false, lora), ckpt = grads(true, lora);
    ASSERT_EQ(plain.size(), ckpt.size());
    for (size_t i = 0; i < plain.size(); ++i)
      EXPECT_TRUE(torch::allclose(plain[i], ckpt[i], 1e-5, 1e-6)) << "lora=" << lora << " grad " << i;
  }
}

}  // namespace
}  // namespace cora::llm
