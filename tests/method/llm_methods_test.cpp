// The behavioural suite over every LLM method × the CF sources it takes: {ICL, TALLRec} alone,
// {CoLLM, CoRA} × {MF, LightGCN, SASRec}. Each trains on a small split through `cora train`'s
// recipe, resumes bitwise after an interruption, leaves the LLM and CF weights untouched even
// when they are handed to the optimiser by mistake, and (CoLLM, CoRA) scores through the CF
// embeddings.
#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include <ATen/CPUGeneratorImpl.h>

#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/llm/loader.h"
#include "cora/method/cf_run.h"
#include "cora/method/llm_method.h"
#include "cora/method/registry.h"
#include "cora/method/train.h"
#include "cora/text/tokenizer.h"
#include "cora/train/adam.h"
#include "method/llm_world.h"

namespace cora::method {
namespace {
using cora::testing::World;

struct Case {
  std::string method, cf;  // cf: "" = no CF source
};
std::string case_name(const ::testing::TestParamInfo<Case>& i) {
  return i.param.method + (i.param.cf.empty() ? "" : "_" + i.param.cf);
}

// One world for the suite: the split, the tokenizer, and a finished run of each CF model.
World& world() {
  static World w;
  static bool extra = [] {
    for (std::string m : {"lightgcn", "sasrec"}) {
      auto cfg = config::parse(R"({"method": ")" + m + R"(", "data": {"dir": ")" + w.t.file("data") +
                                   R"("}, "cf": {"dim": 8, "layers": 1}, "train": {"epochs": 2, "lr": 0.01},
                                   "log_level": "warn", "threads": 2})", "test");
      train(cfg, w.t.file("cf_" + m), false);
    }
    return true;
  }();
  (void)extra;
  return w;
}

std::string cf_dir(const std::string& kind) {
  return kind == "mf" ? world().t.file("cf") : world().t.file("cf_" + kind);
}

config::Config config_of(const Case& k, const std::string& train_extra = "") {
  World& w = world();
  std::string sections;
  if (k.method == "cora")
    sections = R"(, "cora": {"layers": 1, "heads": 2, "intermediate": 32, "rank": 4, "alpha": 8})";
  if (k.method == "collm") sections = R"(, "collm": {"hidden": 16})";
  if (k.method == "tallrec") sections = R"(, "lora": {"rank": 4, "alpha": 8})";
  std::string cf = k.cf.empty() ? "" : R"("cf": {"run": ")" + cf_dir(k.cf) + R"(", "dim": 8},)";
  std::string train = k.method == "icl"
                          ? R"("train": {"eval_batch_size": 32, "valid_split": "valid_small")"
                          : R"("train": {"batch_size": 4, "micro_batch_size": 2, "iterations": 3,
                               "epochs": 3, "lr": 0.003, "weight_decay": 0.001, "warmup_steps": 2,
                               "min_lr": 0.0001, "eval_batch_size": 32, "valid_split": "valid_small",
                               "patience": 5, "grad_clip": 1.0)";
  return config::parse(R"({"method": ")" + k.method + R"(", "data": {"dir": ")" + w.t.file("data") +
                           R"("}, )" + cf + R"( "llm": {"dir": ")" + w.t.file("llm") +
                           R"(", "random_init": true})" + sections + ", " + train + train_extra +
                           R"(}, "log_level": "warn", "threads": 2})",
                       "test");
}

// A case's method built directly (as the recipe does), with its data, tokenizer and CF model.
struct Built {
  config::Config c;
  data::Dataset data;
  text::Tokenizer tok;
  llm::Llama llm;
  cf::CfModel cf;
  std::unique_ptr<LlmMethod> method;
  PromptOptions prompt;
  explicit Built(const Case& k, torch::ScalarType llm_dtype = torch::kFloat32)
      : c(config_of(k)), data(data::load_dataset(c.data.dir)), tok(c.llm.dir + "/tokenizer.model"),
        llm(llm::load_llama(c.llm.dir, {.dtype = llm_dtype, .random_init = true, .seed = 3})),
        cf(k.cf.empty() ? nullptr : load_cf_run(c.cf.run, data, torch::kCPU)),
        method(make_llm_method(c, llm, cf, answer_token(tok, "Yes"), torch::kCPU)) {
    prompt.templ = find_method(k.method).default_template;
  }
  PromptBatch batch(const data::Split& split, const std::vector<int64_t>& rows) const {
    auto tk = tokenize_split(split, data.items, tok, prompt, tok.bos_id());
    return make_batch(tk, cf::make_rows(split, cf ? cf->history_len() : 0), rows, torch::kCPU);
  }
};

class EveryLlmMethod : public ::testing::TestWithParam<Case> {};

TEST_P(EveryLlmMethod, LearnsOnASmallSplitAndResumesBitwise) {
  cora::testing::TempDir t;
  const Case k = GetParam();
  auto full = train(config_of(k), t.file("full"), false);
  ASSERT_TRUE(full.finished);
  EXPECT_GT(full.test.auc, 0.0);
  EXPECT_LT(full.test.auc, 1.0);
  for (auto f : {"metrics.json", "metrics.jsonl", "eval/test_scores.tsv", "ckpt/progress.json"})
    EXPECT_TRUE(io::exists(t.file("full/") + f)) << f;
  if (k.method != "icl") {
    // The trained state differs from the initial one (a run of zero epochs keeps the initial).
    train(config_of(k, R"(, "epochs": 0)"), t.file("init"), false);
    auto init = io::load_safetensors(t.file("init/ckpt/best.safetensors"));
    auto best = io::load_safetensors(t.file("full/ckpt/best.safetensors"));
    ASSERT_FALSE(best.empty());
    int changed = 0;
    for (auto& [name, v] : best) changed += !torch::equal(v, init.at(name));
    EXPECT_GT(changed, 0);
  }
  // Interrupted after one epoch (epochs_per_invocation), then resumed: the same scores, bit for bit.
  auto part = train(config_of(k, R"(, "epochs_per_invocation": 1)"), t.file("part"), false);
  EXPECT_EQ(part.finished, k.method == "icl");  // ICL has one evaluation and nothing to train
  auto resumed = train(config_of(k, R"(, "epochs_per_invocation": 1)"), t.file("part"), true);
  if (!resumed.finished) resumed = train(config_of(k), t.file("part"), true);
  ASSERT_TRUE(resumed.finished);
  EXPECT_EQ(io::read_file(t.file("part/eval/test_scores.tsv")),
            io::read_file(t.file("full/eval/test_scores.tsv")));
  EXPECT_EQ(resumed.best_epoch, full.best_epoch);
}

TEST_P(EveryLlmMethod, FrozenWeightsStayFrozenEvenInTheOptimizer) {
  const Case k = GetParam();
  Built w(k);
  auto& m = w.llm;
  auto& cf = w.cf;
  auto& method = w.method;
  // The mistake: every tensor of the LLM and the CF model handed to AdamW with weight decay.
  std::vector<torch::Tensor> all, frozen;
  std::vector<torch::Tensor> before;
  for (auto& p : m->parameters()) frozen.push_back(p);
  if (cf)
    for (auto& p : cf->parameters()) frozen.push_back(p);
  for (auto& p : frozen) before.push_back(p.detach().clone());
  all = frozen;
  for (auto& [n, p] : method->trainable()) all.push_back(p);
  std::vector<torch::Tensor> trained_before;
  for (auto& [n, p] : method->trainable()) trained_before.push_back(p.detach().clone());
  train::Adam opt(all, {.weight_decay = 0.1, .decoupled = true});
  method->set_training(true);
  for (int s = 0; s < 2; ++s) {
    opt.zero_grad();
    auto b = w.batch(w.data.train, {s * 4 + 0, s * 4 + 1, s * 4 + 2, s * 4 + 3});
    auto loss = torch::binary_cross_entropy_with_logits(method->score(b), b.rows.label);
    if (loss.requires_grad()) loss.backward();
    opt.step(1e-2);
  }
  for (size_t i = 0; i < frozen.size(); ++i) {
    EXPECT_FALSE(frozen[i].requires_grad());
    EXPECT_TRUE(torch::equal(frozen[i], before[i])) << "frozen tensor " << i << " moved";
  }
  int moved = 0;
  auto trained = method->trainable();
  for (size_t i = 0; i < trained.size(); ++i) moved += !torch::equal(trained[i].second, trained_before[i]);
  EXPECT_EQ(moved > 0, k.method != "icl");
}

class EveryCfLlmMethod : public ::testing::TestWithParam<Case> {};  // CoLLM, CoRA

TEST_P(EveryCfLlmMethod, ScoresFollowTheCfEmbeddings) {
  const Case k = GetParam();
  Built w(k);
  auto& cf = w.cf;
  auto& method = w.method;
  torch::NoGradGuard ng;
  for (auto& [n, p] : method->trainable()) p.normal_(0, 0.2);  // CoRA's B start at zero
  auto b = w.batch(w.data.test, {0, 1, 2, 3});
  method->set_training(false);
  auto base = method->score(b);
  EXPECT_TRUE(torch::equal(method->score(b), base));  // deterministic in eval mode
  for (auto& p : cf->parameters()) p.add_(torch::randn_like(p) * 0.5);
  cf->eval();  // LightGCN caches its propagation in eval mode; this drops the cache
  auto moved = method->score(b);
  EXPECT_FALSE(torch::allclose(moved, base, 1e-4, 1e-4)) << k.method << " ignores the CF model";
}

INSTANTIATE_TEST_SUITE_P(Methods, EveryLlmMethod,
                         ::testing::Values(Case{"icl", ""}, Case{"tallrec", ""}, Case{"collm", "mf"},
                                           Case{"collm", "lightgcn"}, Case{"collm", "sasrec"},
                                           Case{"cora", "mf"}, Case{"cora", "lightgcn"},
                                           Case{"cora", "sasrec"}),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Methods, EveryCfLlmMethod,
                         ::testing::Values(Case{"collm", "mf"}, Case{"collm", "lightgcn"},
                                           Case{"collm", "sasrec"}, Case{"cora", "mf"},
                                           Case{"cora", "lightgcn"}, Case{"cora", "sasrec"}),
                         case_name);

// The CUDA path runs the frozen LLM in bf16 while the trained tensors and AdamW's moments stay
// fp32 (master weights). On CPU: CoRA's scores in bf16 follow fp32's, and a training step keeps
// every trained tensor, gradient and moment fp32 and finite.
TEST(LlmMethodsBf16, CoraScoresFollowFp32WithFp32MasterWeights) {
  const Case k{"cora", "mf"};
  seed_everything(0);
  Built f32(k);
  seed_everything(0);
  Built b16(k, torch::kBFloat16);
  auto p32 = f32.method->trainable(), p16 = b16.method->trainable();
  ASSERT_EQ(p32.size(), p16.size());
  {
    torch::NoGradGuard ng;
    auto g = at::detail::createCPUGenerator(5);
    for (size_t i = 0; i < p32.size(); ++i) {
      if (p32[i].first.find(".B") != std::string::npos || p32[i].first.rfind("B", 0) == 0)
        p32[i].second.normal_(0.0, 0.05, g);  // non-zero deltas: the low-rank path is compared too
      p16[i].second.copy_(p32[i].second);
      EXPECT_EQ(p16[i].second.scalar_type(), torch::kFloat32) << p16[i].first;
    }
  }
  const auto& valid = f32.data.split("valid_small");
  std::vector<int64_t> rows(std::min<size_t>(12, valid.size()));
  std::iota(rows.begin(), rows.end(), 0);
  f32.method->set_training(false);
  b16.method->set_training(false);
  torch::Tensor s32, s16;
  {
    torch::NoGradGuard ng;
    s32 = f32.method->score(f32.batch(valid, rows));
    s16 = b16.method->score(b16.batch(valid, rows));
  }
  EXPECT_EQ(s16.scalar_type(), torch::kFloat32);
  const double worst = (s16 - s32).abs().max().item<double>(), scale = s32.abs().max().item<double>();
  // bf16 keeps 8 bits of mantissa: ~0.4 % per rounding; two layers and the answer row stay within 3 %.
  EXPECT_LE(worst, 0.03 * std::max(1.0, scale)) << "bf16 " << s16 << " fp32 " << s32;
  // A training step: gradients and AdamW moments of the trained tensors are fp32 and finite.
  b16.method->set_training(true);
  std::vector<torch::Tensor> ts;
  for (auto& [n, t] : p16) ts.push_back(t);
  train::Adam opt(ts, {.weight_decay = 0.01, .decoupled = true});
  auto batch = b16.batch(b16.data.train, rows);
  torch::binary_cross_entropy_with_logits(b16.method->score(batch), batch.rows.label).backward();
  for (auto& [n, t] : p16) {
    ASSERT_TRUE(t.grad().defined()) << n;
    EXPECT_EQ(t.grad().scalar_type(), torch::kFloat32) << n;
    EXPECT_TRUE(torch::isfinite(t.grad()).all().item<bool>()) << n;
  }
  opt.step(1e-3);
  for (auto& [n, t] : opt.state()) {
    if (n == "steps") continue;
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << n;
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << n;
  }
  for (auto& p : b16.llm->parameters()) EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
}

}  // namespace
}  // namespace cora::method
