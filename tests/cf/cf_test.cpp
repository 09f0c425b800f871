// The behavioural suite over every CF model (planted structure must be learned), model
// invariants (unknown ids, empty histories, LightGCN's normalisation), and the trainer's
// run directory: eval reproduces train's numbers, resume reproduces an uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cf/models.h"
#include "cora/method/cf_run.h"
#include "cora/method/registry.h"
#include "cora/method/train.h"
#include "cora/io/files.h"
#include "synthetic.h"
#include "test_util.h"

namespace cora::cf {
namespace {
using cora::testing::TempDir;

config::Config small_config(const std::string& method, const std::string& dir) {
  // Only the keys the model reads: the registry refuses the others.
  const std::string extra = method == "sasrec"     ? R"(, "layers": 2, "heads": 2, "max_len": 8, "dropout": 0.1)"
                            : method == "lightgcn" ? R"(, "layers": 2)"
                                                   : "";
  std::string json = R"({"method": ")" + method + R"(", "data": {"dir": ")" + dir + R"("},
    "cf": {"dim": 16, "init_std": 0.1)" + extra + R"(},
    "train": {"lr": 0.01, "batch_size": 128, "epochs": 60, "patience": 15},
    "threads": 2, "log_level": "warn"})";
  return config::parse(json, "test");
}

class EveryCfModel : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryCfModel, LearnsPlantedStructure) {
  TempDir t;
  cora::testing::write_planted_split(t.file("data"));
  auto s = method::train(small_config(GetParam(), t.file("data")), t.file("run"), false);
  EXPECT_GE(s.test.auc, 0.85) << GetParam();
  EXPECT_GE(s.test.uauc, 0.80) << GetParam();
  for (auto f : {"config.resolved.json", "metrics.jsonl", "metrics.json", "eval/test.json",
                 "eval/test_scores.tsv", "ckpt/best.safetensors", "ckpt/latest.safetensors",
                 "ckpt/progress.json", "export/cf_repr.safetensors"})
    EXPECT_TRUE(io::exists(t.file("run/") + f)) << f;
  // cora eval recomputes the same numbers from the saved weights.
  auto again = method::evaluate_run(t.file("run"), "test");
  EXPECT_DOUBLE_EQ(again.auc, s.test.auc);
  EXPECT_DOUBLE_EQ(again.uauc, s.test.uauc);
  // The frozen model loaded for LLM methods scores exactly as the run did.
  auto data = data::load_dataset(t.file("data"));
  auto frozen = method::load_cf_run(t.file("run"), data, torch::kCPU);
  for (auto& p : frozen->parameters()) EXPECT_FALSE(p.requires_grad());
  auto scores = predict(*frozen, make_rows(data.test, frozen->history_len()), 4096, torch::kCPU);
  EXPECT_DOUBLE_EQ(eval::auc(scores, data.test.label), s.test.auc);
}

INSTANTIATE_TEST_SUITE_P(Models, EveryCfModel, ::testing::Values("mf", "lightgcn", "sasrec"));

TEST(CfModels, UnknownIdsFallBackToZero) {
  TempDir t;
  cora::testing::write_planted_split(t.path());
  auto d = data::load_dataset(t.path());
  for (std::string m : {"mf", "lightgcn", "sasrec"}) {
    auto model = method::find_method(m).cf_factory(small_config(m, t.path()).cf, d.n_users, d.n_items, d.train);
    model->eval();
    Rows r = make_rows(d.test, model->history_len()).index(torch::arange(4));
    r.uid[0] = d.n_users + 5;  // unknown user
    r.iid[1] = d.n_items + 5;  // unknown item
    auto s = model->score(r);
    EXPECT_TRUE(torch::isfinite(s).all().item<bool>()) << m;
    EXPECT_EQ(s[1].item<float>(), 0.f) << m;
    if (m != "sasrec") EXPECT_EQ(s[0].item<float>(), 0.f) << m;  // SASRec reads the history
  }
}

TEST(CfModels, SasRecEmptyHistoryIsFinite) {
  TempDir t;
  cora::testing::write_planted_split(t.path());
  auto d = data::load_dataset(t.path());
  SasRecImpl model(small_config("sasrec", t.path()).cf, d.n_users, d.n_items);
  model.eval();
  torch::NoGradGuard ng;
  model.last_norm->bias.normal_();  // as after training
  Rows r = make_rows(d.train, model.history_len()).index(torch::arange(3));
  r.hist.zero_();
  auto u = model.user_repr(r);
  // Defined representation of an empty history: every position is masked to zero, so the
  // final LayerNorm returns its bias β.
  EXPECT_TRUE(torch::isfinite(u).all().item<bool>());
  EXPECT_TRUE(torch::allclose(u, model.last_norm->bias.expand_as(u)));
}

TEST(CfModels, SasRecHistoryIsLeftPaddedMostRecentLast) {
  data::Split s;
  std::vector<int64_t> h{5, 6, 7};
  s.push_row(1, 2, 1, 0, 1, h);
  auto r = make_rows(s, 5);
  EXPECT_TRUE(torch::equal(r.hist[0], torch::tensor({0, 0, 5, 6, 7}, torch::kInt64)));
  r = make_rows(s, 2);
  EXPECT_TRUE(torch::equal(r.hist[0], torch::tensor({6, 7}, torch::kInt64)));
}

TEST(CfModels, LightGcnMatchesDensePropagation) {
  TempDir t;
  cora::testing::write_planted_split(t.path(), 10, 8, 2, 10);
  auto d = data::load_dataset(t.path());
  auto cfg = small_config("lightgcn", t.path()).cf;
  LightGcnImpl m(cfg, d.n_users, d.n_items, d.train);
  m.eval();
  // Dense reference: A from unique train positives, Â = D^-1/2 A D^-1/2, mean of K+1 layers.
  const int64_t U = d.n_users, I = d.n_items, N = U + I;
  auto A = torch::zeros({N, N});
  for (size_t r = 0; r < d.train.size(); ++r)
    if (d.train.label[r] > 0.5f) {
      A[d.train.uid[r]][U + d.train.iid[r]] = 1;
      A[U + d.train.iid[r]][d.train.uid[r]] = 1;
    }
  auto deg = A.sum(1);
  auto inv = torch::where(deg > 0, deg.pow(-0.5), torch::zeros_like(deg));
  auto Ahat = inv.unsqueeze(1) * A * inv.unsqueeze(0);
  auto x = torch::cat({m.embedding_user->weight, m.embedding_item->weight}).detach();
  auto sum = x.clone();
  for (int k = 0; k < cfg.layers; ++k) sum += (x = Ahat.mm(x));
  auto [users, items] = m.propagate();
  EXPECT_TRUE(torch::allclose(users, (sum / (cfg.layers + 1)).narrow(0, 0, U), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(items, (sum / (cfg.layers + 1)).narrow(0, U, I), 1e-5, 1e-6));
}

TEST(CfTrainer, ResumeEqualsUninterruptedRun) {
  TempDir t;
  cora::testing::write_planted_split(t.file("data"));
  auto cfg = small_config("sasrec", t.file("data"));  // dropout: exercises the RNG too
  cfg.train.epochs = 6;
  cfg.train.patience = 100;
  auto full = method::train(cfg, t.file("full"), false);
  // Interrupted run: stop after 3 epochs, then resume with the full budget.
  auto part_cfg = cfg;
  part_cfg.train.epochs = 3;
  method::train(part_cfg, t.file("part"), false);
  // Make the checkpoint look interrupted (not done) and resume with the full budget.
  auto progress = io::read_file(t.file("part/ckpt/progress.json"));
  auto j = nlohmann::json::parse(progress);
  j["done"] = false;
  io::write_file_atomic(t.file("part/ckpt/progress.json"), j.dump());
  auto resumed = method::train(cfg, t.file("part"), true);
  EXPECT_EQ(resumed.test.auc, full.test.auc);
  EXPECT_EQ(resumed.test.uauc, full.test.uauc);
  EXPECT_EQ(resumed.best_epoch, full.best_epoch);
  EXPECT_EQ(io::read_file(t.file("part/eval/test_scores.tsv")),
            io::read_file(t.file("full/eval/test_scores.tsv")));
}

TEST(CfTrainer, RefusesToOverwriteARun) {
  TempDir t;
  cora::testing::write_planted_split(t.file("data"));
  auto cfg = small_config("mf", t.file("data"));
  cfg.train.epochs = 1;
  method::train(cfg, t.file("run"), false);
  auto msg = cora::testing::error_of([&] { method::train(cfg, t.file("run"), false); });
  EXPECT_NE(msg.find("already holds a run"), std::string::npos) << msg;
}

}  // namespace
}  // namespace cora::cf
