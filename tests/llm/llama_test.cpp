// The LLaMA core: the real stories260K checkpoint reproduces llama2.c's greedy ids, config
// refusals, and the forward-pass invariants (padding, batching, frozen weights).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/llm/loader.h"
#include "test_util.h"

namespace cora::llm {
namespace {
using cora::testing::error_of;
using cora::testing::TempDir;
using cora::testing::write_text;

const std::string kStories = std::string(CORA_SOURCE_DIR) + "/tests/fixtures/stories260K-hf";

std::vector<int64_t> read_ids(const std::string& path) {
  std::vector<int64_t> ids;
  std::stringstream ss(io::read_file(path));
  std::string tok;
  while (std::getline(ss, tok, ',')) ids.push_back(std::stoll(tok));
  return ids;
}

TEST(Llama, Stories260KGreedyMatchesLlama2c) {
  Llama m = load_llama(kStories);
  auto expected = read_ids(kStories + "/greedy_from_bos_64.txt");
  ASSERT_EQ(expected.size(), 64u);
  EXPECT_EQ(m->generate({1}, 64), expected);
  for (auto& p : m->parameters()) EXPECT_FALSE(p.requires_grad());
}

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 50;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500.0;
  return c;
}

TEST(Llama, PaddedBatchEqualsSingleRows) {
  Llama m(tiny_config());
  m->init_random(1);
  m->eval();
  torch::NoGradGuard ng;
  auto a = torch::tensor({1, 5, 7, 9, 11}, torch::kInt64);
  auto b = torch::tensor({1, 4, 2}, torch::kInt64);
  auto ha = m->hidden_at({a.unsqueeze(0)}, torch::tensor({4}));
  auto hb = m->hidden_at({b.unsqueeze(0)}, torch::tensor({2}));
  // Right padding (b padded at the end) and left padding (b padded at the start).
  auto right = torch::stack({a, torch::cat({b, torch::zeros({2}, torch::kInt64)})});
  auto right_mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}});
  auto hr = m->hidden_at({right, right_mask}, torch::tensor({4, 2}));
  EXPECT_TRUE(torch::allclose(hr[0], ha[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(hr[1], hb[0], 1e-5, 1e-6));
  auto left = torch::stack({a, torch::cat({torch::zeros({2}, torch::kInt64), b})});
  auto left_mask = torch::tensor({{1, 1, 1, 1, 1}, {0, 0, 1, 1, 1}});
  auto hl = m->hidden_at({left, left_mask}, torch::tensor({4, 4}));
  EXPECT_TRUE(torch::allclose(hl[1], hb[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::isfinite(m->forward_hidden({left, left_mask})).all().item<bool>());
}

TEST(Llama, LogitRowsEqualFullLogits) {
  Llama m(tiny_config());
  m->init_random(2);
  torch::NoGradGuard ng;
  auto h = m->hidden_at({torch::tensor({{1, 3, 5}}, torch::kInt64)}, torch::tensor({2}));
  auto rows = torch::tensor({7, 3}, torch::kInt64);
  EXPECT_TRUE(torch::allclose(m->logits(h, rows), m->logits(h).index_select(1, rows)));
}

TEST(Llama, ConfigRefusesUnsupportedKeys) {
  auto base = std::string(R"({"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1,
    "num_attention_heads": 4, "vocab_size": 10)");
  auto err = [&](const std::string& extra) {
    return error_of([&] { parse_config(base + extra + "}", "config.json"); });
  };
  EXPECT_EQ(err(""), "");
  EXPECT_NE(err(R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4})").find("'rope_scaling': type 'yarn'"),
            std::string::npos);
  EXPECT_NE(err(R"(, "rope_scaling": {"type": "linear"})").find("'rope_scaling.factor' is required"),
            std::string::npos);
  EXPECT_NE(err(R"(, "hidden_act": "gelu")").find("'hidden_act'"), std::string::npos);
  EXPECT_NE(err(R"(, "mlp_bias": true)").find("'mlp_bias'"), std::string::npos);
  EXPECT_NE(err(R"(, "pretraining_tp": 2)").find("'pretraining_tp'"), std::string::npos);
  EXPECT_NE(err(R"(, "sliding_window": 16)").find("'sliding_window'"), std::string::npos);
  // Today's families: accepted and read.
  EXPECT_EQ(err(R"(, "sliding_window": 16, "use_sliding_window": false)"), "");
  LlamaConfig c = parse_config(base + R"(, "head_dim": 16, "attention_bias": true,
    "architectures": ["Qwen3ForCausalLM"], "rope_scaling": {"rope_type": "llama3", "factor": 8,
    "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}})", "c.json");
  EXPECT_EQ(c.head_dim(), 16);
  EXPECT_EQ(c.q_width(), 64);
  EXPECT_TRUE(c.qkv_bias && c.o_bias && c.qk_norm);
  EXPECT_EQ(c.rope_type, "llama3");
  EXPECT_EQ(c.rope_original_max_positions, 8192);
  LlamaConfig q2 = parse_config(base + R"(, "architectures": ["Qwen2ForCausalLM"]})", "c.json");
  EXPECT_TRUE(q2.qkv_bias && !q2.o_bias && !q2.qk_norm);
  LlamaConfig back = parse_config(to_json(c), "back.json");  // what cora writes reads back the same
  EXPECT_EQ(back.head_dim(), 16);
  EXPECT_TRUE(back.qkv_bias && back.o_bias && back.qk_norm);
  EXPECT_EQ(back.rope_type, "llama3");
  EXPECT_NE(err(R"(, "architectures": ["GPT2LMHeadModel"])").find("'architectures'"), std::string::npos);
  EXPECT_EQ(err(R"(, "torch_dtype": "bfloat16", "use_cache": true, "transformers_version": "4.40"})").find("unsupported"), std::string::npos);
  EXPECT_NE(error_of([] { parse_config(R"({"hidden_size": 32})", "c.json"); }).find("missing"), std::string::npos);
}

TEST(Llama, LoaderErrors) {
  TempDir t;
  LlamaConfig c = tiny_config();
  write_text(t.file("m/config.json"), to_json(c));
  EXPECT_NE(error_of([&] { load_llama(t.file("m")); }).find("no model.safetensors"), std::string::npos);
  write_text(t.file("m/pytorch_model.bin"), "x");
  EXPECT_NE(error_of([&] { load_llama(t.file("m")); }).find("hint: convert"), std::string::npos);
  // A checkpoint with one tensor of the wrong shape.
  Llama m(c);
  m->init_random(3);
  std::vector<std::pair<std::string, torch::Tensor>> ts;
  for (auto& p : m->named_parameters()) ts.emplace_back(p.key(), p.value());
  ts[0].second = torch::zeros({3, 3});
  io::save_safetensors(t.file("m/model.safetensors"), ts);
  auto msg = error_of([&] { load_llama(t.file("m")); });
  EXPECT_NE(msg.find("has shape [3, 3]"), std::string::npos) << msg;
  ts[0].second = m->named_parameters()[ts[0].first];
  ts.pop_back();
  io::save_safetensors(t.file("m/model.safetensors"), ts);
  msg = error_of([&] { load_llama(t.file("m")); });
  EXPECT_NE(msg.find("is missing from the checkpoint"), std::string::npos) << msg;
}

TEST(Llama, ShardedBf16CheckpointLoads) {
  TempDir t;
  LlamaConfig c = tiny_config();
  Llama m(c);
  m->init_random(6);
  // Two shards in bf16, bound through model.safetensors.index.json.
  std::vector<std::pair<std::string, torch::Tensor>> a, b;
  nlohmann::json map;
  int k = 0;
  for (auto& p : m->named_parameters()) {
    auto& shard = (k++ % 2) ? b : a;
    shard.emplace_back(p.key(), p.value().to(torch::kBFloat16));
    map[p.key()] = (&shard == &a) ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  io::save_safetensors(t.file("m/model-00001-of-00002.safetensors"), a);
  io::save_safetensors(t.file("m/model-00002-of-00002.safetensors"), b);
  write_text(t.file("m/model.safetensors.index.json"), nlohmann::json{{"weight_map", map}}.dump());
  write_text(t.file("m/config.json"), to_json(c));
  Llama back = load_llama(t.file("m"));
  for (auto& p : back->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), m->named_parameters()[p.key()].to(torch::kBFloat16).to(torch::kFloat32)))
        << p.key();
  map["model.norm.weight"] = "../escape.safetensors";
  write_text(t.file("m/model.safetensors.index.json"), nlohmann::json{{"weight_map", map}}.dump());
  EXPECT_NE(error_of([&] { load_llama(t.file("m")); }).find("plain file name"), std::string::npos);
}

TEST(Llama, RoundTripThroughSafetensorsAndTiedHead) {
  TempDir t;
  LlamaConfig c = tiny_config();
  c.tie_word_embeddings = true;
  Llama m(c);
  m->init_random(4);
  std::vector<std::pair<std::string, torch::Tensor>> ts;
  for (auto& p : m->named_parameters())
    if (p.key() != "lm_head.weight") ts.emplace_back(p.key(), p.value());
  io::save_safetensors(t.file("m/model.safetensors"), ts);
  write_text(t.file("m/config.json"), to_json(c));
  Llama back = load_llama(t.file("m"));
  torch::NoGradGuard ng;
  auto ids = torch::tensor({{1, 2, 3, 4}}, torch::kInt64);
  auto pos = torch::tensor({3});
  EXPECT_TRUE(torch::equal(back->logits(back->hidden_at({ids}, pos)), m->logits(m->hidden_at({ids}, pos))));
  EXPECT_TRUE(torch::equal(back->lm_head->weight, back->model->embed_tokens->weight));
}

TEST(Llama, RandomInitKeepsTiedWeightsSharedAcrossADtypeChange) {
  // The CUDA path loads in bf16: converting each parameter apart must not untie the head.
  TempDir t;
  LlamaConfig c = tiny_config();
  c.tie_word_embeddings = true;
  write_text(t.file("m/config.json"), to_json(c));
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    Llama m = load_llama(t.file("m"), {.dtype = dtype, .random_init = true, .seed = 2});
    EXPECT_EQ(m->lm_head->weight.scalar_type(), dtype);
    EXPECT_EQ(m->lm_head->weight.data_ptr(), m->model->embed_tokens->weight.data_ptr()) << dtype;
  }
}

}  // namespace
}  // namespace cora::llm

namespace cora::llm {
namespace {

TEST(Llama, EmbeddingOverrideReplacesExactlyThatPosition) {
  Llama m(tiny_config());
  m->init_random(5);
  torch::NoGradGuard ng;
  auto ids = torch::tensor({{1, 4, 6, 8}, {1, 3, 5, 7}}, torch::kInt64);
  auto base = m->forward_hidden({ids});
  // Overriding with the token's own embedding changes nothing.
  EmbedOverride same{torch::tensor({{1, 2}}, torch::kInt64),
                     m->model->embed_tokens->weight[5].unsqueeze(0)};
  EXPECT_TRUE(torch::allclose(m->forward_hidden({ids, {}, nullptr, &same}), base));
  // A new vector at (row 0, position 2) changes row 0 from position 2 on, and nothing else.
  EmbedOverride other{torch::tensor({{0, 2}}, torch::kInt64), torch::randn({1, 32})};
  auto out = m->forward_hidden({ids, {}, nullptr, &other});
  EXPECT_TRUE(torch::allclose(out[1], base[1]));
  EXPECT_TRUE(torch::allclose(out[0].narrow(0, 0, 2), base[0].narrow(0, 0, 2)));
  EXPECT_FALSE(torch::allclose(out[0].narrow(0, 2, 2), base[0].narrow(0, 2, 2)));
}

}  // namespace
}  // namespace cora::llm
