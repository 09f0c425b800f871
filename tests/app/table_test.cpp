// `cora table`: spec validation, aggregation (mean, sample std, improvement, paired t-test) on
// known inputs, and the t distribution against closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "cora/app/table.h"
#include "cora/config/config.h"
#include "cora/eval/stats.h"
#include "cora/io/files.h"
#include "synthetic.h"
#include "test_util.h"

namespace cora::app {
namespace {
using cora::testing::error_of;
using cora::testing::TempDir;
using cora::testing::write_text;

TEST(Stats, PairedTTestMatchesClosedForms) {
  // df = 2: p = 1 - |t| / sqrt(t^2 + 2). Differences 0.02, 0.03, 0.01: t = 0.02 / (0.01/sqrt 3).
  std::vector<double> a{0.70, 0.72, 0.71}, b{0.68, 0.69, 0.70};
  auto r = eval::paired_t_test(a, b);
  double t = 0.02 / (0.01 / std::sqrt(3.0));
  EXPECT_NEAR(r.t, t, 1e-9);
  EXPECT_EQ(r.df, 2);
  EXPECT_NEAR(r.p, 1 - t / std::sqrt(t * t + 2), 1e-9);
  // df = 1: p = 1 - (2/pi) atan(|t|).
  for (double tt : {0.3, 1.0, 4.0, 25.0})
    EXPECT_NEAR(eval::student_t_two_sided(tt, 1), 1 - 2 / M_PI * std::atan(tt), 1e-9) << tt;
  // Large df approaches the normal: p(1.96) ~ 0.05.
  EXPECT_NEAR(eval::student_t_two_sided(1.959964, 1e6), 0.05, 1e-4);
  EXPECT_NEAR(eval::sample_std(std::vector<double>{1, 2, 3, 4}), std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_TRUE(std::isnan(eval::paired_t_test(std::vector<double>{1}, std::vector<double>{0}).p));
}

TEST(Table, AggregatesKnownResults) {
  TableSpec spec;
  spec.title = "T";
  spec.reference = "CoRA";
  std::vector<RowResult> rows(3);
  rows[0] = {"MF", {0, 1, 2}, {0.68, 0.69, 0.70}, {0.60, 0.61, 0.62}, "auc", 3, true, 0.6486, 0.6396};
  rows[1] = {"TALLRec", {0, 2}, {0.60, 0.64}, {0.55, 0.57}, "auc", 3, false, 0, 0};
  rows[2] = {"CoRA", {0, 1, 2}, {0.70, 0.72, 0.71}, {0.65, 0.66, 0.64}, "uauc", 3, true, 0.7361, 0.6884};
  auto t = render_table(spec, rows, "the paper");
  // MF: mean 0.69, std 0.01; CoRA vs MF: +2.9 % AUC (0.71 / 0.69), paired p over 3 seeds (df 2).
  EXPECT_NE(t.markdown.find("| MF | 3 | 0.6900 ± 0.0100 | 0.6100 ± 0.0100 | 0.6486 | 0.6396 | +2.9% | +6.6% | 0.074 |"),
            std::string::npos) << t.markdown;
  // TALLRec finished 2 of 3 seeds: paired on seeds 0 and 2 only (df 1).
  double tt = 0.085 / (0.0212132034 / std::sqrt(2.0));  // diffs 0.10, 0.07: sd 0.0212
  char p[16];
  std::snprintf(p, sizeof p, "%.3f", 1 - 2 / M_PI * std::atan(tt));
  EXPECT_NE(t.markdown.find("| TALLRec | 2/3 | 0.6200 ± 0.0283 |"), std::string::npos) << t.markdown;
  EXPECT_NE(t.markdown.find(std::string("| ") + p + " |"), std::string::npos) << p << "\n" << t.markdown;
  EXPECT_NE(t.markdown.find("| CoRA | 3 | 0.7100 ± 0.0100 | 0.6500 ± 0.0100 | 0.7361 | 0.6884 | (reference) |"),
            std::string::npos) << t.markdown;
  EXPECT_NE(t.markdown.find("valid uauc"), std::string::npos);
  EXPECT_NE(t.csv.find("MF,3,3,0.690000,0.010000,0.610000,0.010000,0.648600,0.639600,2.898551,"), std::string::npos)
      << t.csv;
}

TEST(Table, SpecErrorsNameTheFileAndKey) {
  TempDir t;
  write_text(t.file("a.json"), R"({"rows": [{"name": "A", "config": "x.json", "runs": {"cf.run": "B"}}]})");
  EXPECT_NE(error_of([&] { load_table(t.file("a.json")); }).find("'B' is not an earlier row"), std::string::npos);
  write_text(t.file("b.json"), R"({"rows": [{"name": "A", "config": "x.json", "sets": []}]})");
  EXPECT_NE(error_of([&] { load_table(t.file("b.json")); }).find("unknown key 'rows[0].sets'"), std::string::npos);
  write_text(t.file("c.json"), R"({"reference": "Z", "rows": [{"name": "A", "config": "x.json"}]})");
  EXPECT_NE(error_of([&] { load_table(t.file("c.json")); }).find("reference 'Z' is not a row"), std::string::npos);
  write_text(t.file("d.json"), R"({"rows": [{"name": "A", "config": "x.json"}, {"name": "A", "config": "y.json"}]})");
  EXPECT_NE(error_of([&] { load_table(t.file("d.json")); }).find("duplicate row name 'A'"), std::string::npos);
}

TEST(Table, DryRunChecksEveryInputWithoutTraining) {
  TempDir t;
  cora::testing::write_planted_split(t.file("data"));  // any split: nothing trains
  // Spec paths are relative to the working directory, like every config path: the repository.
  struct Cwd {
    std::filesystem::path was = std::filesystem::current_path();
    Cwd() { std::filesystem::current_path(CORA_SOURCE_DIR); }
    ~Cwd() { std::filesystem::current_path(was); }
  } cwd;
  // The paper-scale table names a Vicuna-7B directory that is not here: every LLM row is listed.
  TableArgs a{std::string(CORA_SOURCE_DIR) + "/configs/tables/ml1m_paper.json", t.file("out"),
              {"data.dir=" + t.file("data"), "llm.dir=" + t.file("nope")}, true};
  std::string e = error_of([&] { table(a); });
  EXPECT_NE(e.find("problem(s)"), std::string::npos) << e;
  EXPECT_NE(e.find("TALLRec: llm.dir"), std::string::npos) << e;
  EXPECT_NE(e.find("CoRA-SASRec: llm.dir"), std::string::npos) << e;
  EXPECT_EQ(e.find("- MF: "), std::string::npos) << e;  // CF rows need no LLM
  // With an LLM directory that has config.json and tokenizer.model, the plan is complete.
  write_text(t.file("llm/config.json"), "{}");
  write_text(t.file("llm/tokenizer.model"), "x");
  a.overrides.back() = "llm.dir=" + t.file("llm");
  EXPECT_EQ(error_of([&] { table(a); }), "");
  EXPECT_FALSE(std::filesystem::exists(t.file("out")));  // nothing trained or written
}

TEST(Table, RunsSeedBySeedWithOnceExtrasLast) {
  TempDir t;
  cora::testing::write_planted_split(t.file("data"));
  write_text(t.file("mf.json"), R"({"method": "mf", "data": {"dir": ")" + t.file("data") + R"("}})");
  write_text(t.file("icl.json"), R"({"method": "icl", "data": {"dir": ")" + t.file("data") +
                                     R"("}, "llm": {"dir": ")" + t.file("llm") + R"("}})");
  write_text(t.file("llm/config.json"), "{}");
  write_text(t.file("llm/tokenizer.model"), "x");
  write_text(t.file("spec.json"), R"({"seeds": [3, 1], "rows": [
      {"name": "MF", "config": ")" + t.file("mf.json") + R"("},
      {"name": "MF long", "config": ")" + t.file("mf.json") + R"(", "once": true},
      {"name": "ICL", "config": ")" + t.file("icl.json") + R"("}]})");
  TableArgs a{t.file("spec.json"), t.file("out"), {}, true};
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(error_of([&] { table(a); }), "");
  std::string plan = ::testing::internal::GetCapturedStderr(), order;
  std::istringstream in(plan);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("  new\t", 0) == 0) order += l.substr(6, l.find('\t', 6) - 6) + ";";
  EXPECT_EQ(order, "MF seed 3;ICL seed 3;MF seed 1;ICL seed 1;MF long seed 3;") << plan;

  // --collect: the table of what is finished (MF seed 3 here, written by hand); nothing trains.
  auto c = config::load(t.file("mf.json"), {"train.seed=3"});
  write_text(t.file("out/runs/mf/seed3/config.resolved.json"), config::to_json(c));
  write_text(t.file("out/runs/mf/seed3/metrics.json"), R"({"test": {"auc": 0.61, "uauc": 0.59}, "selection_metric": "auc"})");
  TableArgs collect{t.file("spec.json"), t.file("out"), {}, false, true};
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(error_of([&] { table(collect); }), "");
  ::testing::internal::GetCapturedStderr();
  EXPECT_NE(io::read_file(t.file("out/table.md")).find("| MF | 1/2 | 0.6100 | 0.5900 |"), std::string::npos)
      << io::read_file(t.file("out/table.md"));
  EXPECT_FALSE(std::filesystem::exists(t.file("out/runs/mf/seed1")));
  EXPECT_FALSE(std::filesystem::exists(t.file("out/runs/icl")));
}

TEST(Table, ReuseComparesOnlyTheKeysTheMethodReads) {
  TempDir t;
  cora::testing::write_planted_split(t.file("data"));
  write_text(t.file("icl.json"), R"({"method": "icl", "data": {"dir": ")" + t.file("data") +
                                     R"("}, "llm": {"dir": ")" + t.file("llm") + R"("}})");
  write_text(t.file("llm/config.json"), "{}");
  write_text(t.file("llm/tokenizer.model"), "x");
  write_text(t.file("spec.json"), R"({"seeds": [0], "rows": [{"name": "ICL", "config": ")" +
                                      t.file("icl.json") + R"("}]})");
  // A finished run made with another lr (ICL never reads it) is reused; another prompt is not.
  auto c = config::load(t.file("icl.json"), {"train.seed=0", "train.lr=0.5"});
  write_text(t.file("out/runs/icl/seed0/config.resolved.json"), config::to_json(c));
  write_text(t.file("out/runs/icl/seed0/metrics.json"), "{}");
  TableArgs a{t.file("spec.json"), t.file("out"), {}, true};
  EXPECT_EQ(error_of([&] { table(a); }), "");
  c = config::load(t.file("icl.json"), {"train.seed=0", "prompt.max_history=3"});
  write_text(t.file("out/runs/icl/seed0/config.resolved.json"), config::to_json(c));
  auto e = error_of([&] { table(a); });
  EXPECT_NE(e.find("was run with a different 'prompt.max_history'"), std::string::npos) << e;
}

}  // namespace
}  // namespace cora::app
