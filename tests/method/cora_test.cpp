// CoRA end to end on a tiny random LLM with a trained tokenizer: zero deltas reproduce the
// frozen LLM, gradients reach only the generator and the B's, the run directory is complete,
// a resumed run equals an uninterrupted one, and bad inputs fail before training.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cora/method/cf_run.h"
#include "cora/io/files.h"
#include "cora/llm/loader.h"
#include "cora/method/llm_method.h"
#include "cora/method/train.h"
#include "cora/text/tokenizer.h"
#include "method/llm_world.h"
#include "synthetic.h"
#include "test_util.h"

namespace cora::method {
namespace {
using cora::testing::error_of;
using cora::testing::TempDir;
using cora::testing::write_text;
using cora::testing::World;

TEST(Cora, ZeroDeltasEqualFrozenLlmAndOnlyGeneratorAndBTrain) {
  World w;
  auto c = w.cora_config();
  auto data = data::load_dataset(c.data.dir);
  text::Tokenizer tok(c.llm.dir + "/tokenizer.model");
  auto m = llm::load_llama(c.llm.dir, {.random_init = true, .seed = 3});
  auto cf = load_cf_run(c.cf.run, data, torch::kCPU);
  int32_t yes = answer_token(tok, "Yes");
  auto cora = make_llm_method(c, m, cf, yes, torch::kCPU);
  c.method = "icl";
  auto icl = make_llm_method(c, m, nullptr, yes, torch::kCPU);
  auto tk = tokenize_split(data.test, data.items, tok, {}, tok.bos_id());
  auto batch = make_batch(tk, cf::make_rows(data.test, 0), {0, 1, 2, 3, 4}, torch::kCPU);
  cora->set_training(false);
  torch::Tensor a, b;
  {
    torch::NoGradGuard ng;
    a = cora->score(batch);
    b = icl->score(batch);
  }
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-6));
  // One backward pass: gradients reach every B (zero-initialised, so the generator's are zero
  // at this step) and never the LLM or the CF model.
  cora->set_training(true);
  cora->score(batch).sum().backward();
  int b_with_grad = 0, generator = 0;
  for (auto& [name, p] : cora->trainable()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    if (name.rfind("deltas.", 0) == 0) b_with_grad += p.grad().abs().sum().item<float>() > 0;
    else ++generator;
  }
  EXPECT_EQ(b_with_grad, 8);  // q, k, v, o × 2 layers
  EXPECT_GT(generator, 0);
  for (auto& p : m->parameters()) EXPECT_FALSE(p.grad().defined());
  for (auto& p : cf->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Cora, TrainsEvaluatesAndResumesExactly) {
  World w;
  auto c = w.cora_config();
  auto full = train(c, w.t.file("full"), false);
  for (auto f : {"metrics.json", "metrics.jsonl", "eval/test.json", "eval/test_scores.tsv",
                 "ckpt/best.safetensors", "ckpt/latest.safetensors", "config.resolved.json"})
    EXPECT_TRUE(io::exists(w.t.file("full/") + f)) << f;
  EXPECT_TRUE(std::isfinite(full.test.auc));
  auto again = evaluate_run(w.t.file("full"), "test");
  EXPECT_DOUBLE_EQ(again.auc, full.test.auc);
  // Interrupted after 2 of 3 epochs (the state a kill -9 after that checkpoint leaves), resumed.
  auto part = c;
  part.train.epochs_per_invocation = 2;
  train(part, w.t.file("part"), false);
  EXPECT_FALSE(io::exists(w.t.file("part/metrics.json")));
  auto resumed = train(c, w.t.file("part"), true);
  EXPECT_EQ(io::read_file(w.t.file("part/eval/test_scores.tsv")),
            io::read_file(w.t.file("full/eval/test_scores.tsv")));
  EXPECT_EQ(resumed.best_epoch, full.best_epoch);
}

TEST(Cora, BadInputsFailBeforeTraining) {
  World w;
  auto c = w.cora_config();
  c.cf.dim = 16;
  EXPECT_NE(error_of([&] { train(c, w.t.file("a"), false); }).find("'cf.dim'"), std::string::npos);
  c = w.cora_config();
  c.llm.dir = w.t.file("nope");
  EXPECT_NE(error_of([&] { train(c, w.t.file("b"), false); }).find("'llm.dir'"), std::string::npos);
  EXPECT_FALSE(io::exists(w.t.file("b")));  // nothing written for a run that cannot start
  c = w.cora_config();
  std::filesystem::remove(w.t.file("llm/tokenizer.model"));
  EXPECT_NE(error_of([&] { train(c, w.t.file("b"), false); }).find("holds neither tokenizer.model"),
            std::string::npos);
  std::filesystem::copy_file(w.t.file("llm/tokenizer.model.bak"), w.t.file("llm/tokenizer.model"));
  c = w.cora_config();
  c.cf.run = w.t.file("data");
  EXPECT_NE(error_of([&] { train(c, w.t.file("c"), false); }).find("config.resolved.json"),
            std::string::npos);
  c = w.cora_config();
  c.cf.run = "";
  EXPECT_NE(error_of([&] { train(c, w.t.file("e"), false); }).find("'cf.run'"), std::string::npos);
  c = w.cora_config();
  c.cora.targets = "q_proj,down_proj";
  EXPECT_NE(error_of([&] { train(c, w.t.file("d"), false); }).find("down_proj"), std::string::npos);
}

TEST(Cora, LearningRateSchedule) {
  train::EngineOptions t;
  t.schedule = train::Schedule::warmup_cosine;
  t.lr = 1e-3, t.warmup_steps = 200, t.warmup_start_lr = 1e-5, t.min_lr = 8e-5;
  EXPECT_DOUBLE_EQ(train::learning_rate(t, 0, 1000), 1e-5);
  EXPECT_NEAR(train::learning_rate(t, 100, 1000), 1e-5 + 0.5 * (1e-3 - 1e-5), 1e-12);
  EXPECT_DOUBLE_EQ(train::learning_rate(t, 200, 1000), 1e-3);
  EXPECT_NEAR(train::learning_rate(t, 600, 1000), 8e-5 + 0.5 * (1e-3 - 8e-5), 1e-12);
  EXPECT_NEAR(train::learning_rate(t, 1000, 1000), 8e-5, 1e-12);
}

}  // namespace
}  // namespace cora::method
