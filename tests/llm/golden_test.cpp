// Golden test against an independent Python reference (tests/fixtures/make_llama_golden.py):
// a random GQA model with non-default rope_theta and rms_norm_eps, padded on both sides,
// without and with CoRA's per-sample deltas on q, k, v, o; and the same for a Llama-3.2-shaped
// model (rope_scaling llama3, tied embeddings), a Qwen2-shaped one (q/k/v biases, an inactive
// sliding window) and a Qwen3-shaped one (head_dim apart from hidden/heads, q/k norms, tied).
#include <gtest/gtest.h>

#include <cstring>

#include "cora/io/safetensors.h"
#include "cora/llm/adapters.h"
#include "cora/llm/loader.h"

namespace cora::llm {
namespace {

const std::string kDir = std::string(CORA_SOURCE_DIR) + "/tests/fixtures/llama_golden";

TEST(LlamaGolden, ReadsTheReferenceConfig) {
  Llama m = load_llama(kDir);
  EXPECT_EQ(m->config().num_key_value_heads, 2);
  EXPECT_DOUBLE_EQ(m->config().rope_theta, 5000.0);
}

struct Variant {
  const char* dir;
  const char* targets;
};

class FamilyGolden : public ::testing::TestWithParam<Variant> {};

TEST_P(FamilyGolden, LogitsWithAndWithoutDeltasMatchReference) {
  const std::string dir = std::string(CORA_SOURCE_DIR) + "/tests/fixtures/" + GetParam().dir;
  Llama m = load_llama(dir);
  auto g = io::load_safetensors(dir + "/golden.safetensors");
  torch::NoGradGuard ng;
  auto logits = m->logits(m->hidden_at({g["ids"], g["mask"]}, g["last"]));
  EXPECT_TRUE(torch::allclose(logits, g["logits"], 1e-4, 1e-4))
      << (logits - g["logits"]).abs().max().item<float>();
  LowRankOptions o{.rank = 4, .alpha = 8, .dropout = 0.0};
  std::vector<std::string> names;
  for (const char* p = GetParam().targets; *p;) {
    const char* e = std::strchr(p, ',');
    names.emplace_back(p, e ? e - p : std::strlen(p));
    p = e ? e + 1 : p + std::strlen(p);
  }
  o.targets = parse_targets(names, "targets");
  PerSampleLowRank ad(m->config(), o);
  for (auto& p : ad->named_parameters()) p.value().copy_(g.at("delta." + p.key()));
  ad->eval();
  auto with = m->logits(m->hidden_at({g["ids"], g["mask"], ad.get(), nullptr, g["wc"]}, g["last"]));
  EXPECT_TRUE(torch::allclose(with, g["logits_delta"], 1e-4, 1e-4))
      << (with - g["logits_delta"]).abs().max().item<float>();
  EXPECT_FALSE(torch::allclose(with, g["logits"], 1e-3, 1e-3));  // the deltas matter
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyGolden,
                         ::testing::Values(Variant{"llama_golden", "q_proj,k_proj,v_proj,o_proj"},
                                           Variant{"llama3_golden", "q_proj,k_proj,v_proj,o_proj"},
                                           Variant{"qwen2_golden", "q_proj,k_proj,v_proj,o_proj"},
                                           Variant{"qwen3_golden", "q_proj,k_proj,v_proj,up_proj"}),
                         [](const auto& info) { return std::string(info.param.dir); });

}  // namespace
}  // namespace cora::llm
