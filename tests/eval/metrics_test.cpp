// Hand-computed AUC/UAUC cases, including ties, single-class users and warm/cold subsets.
#include "cora/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace cora::eval {
namespace {

TEST(Metrics, AucPerfectAndInverted) {
  std::vector<float> y{0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(auc(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}, y), 1.0);
  EXPECT_DOUBLE_EQ(auc(std::vector<float>{0.4f, 0.3f, 0.2f, 0.1f}, y), 0.0);
}

TEST(Metrics, AucHandComputedWithTies) {
  // pos scores {0.8, 0.5}, neg {0.5, 0.2, 0.9}: pairs (pos>neg) = 0.8>{0.5,0.2}=2,
  // 0.5>0.2=1, 0.5==0.5 tie=0.5 → 3.5 / 6.
  std::vector<float> s{0.8f, 0.5f, 0.5f, 0.2f, 0.9f}, y{1, 1, 0, 0, 0};
  EXPECT_NEAR(auc(s, y), 3.5 / 6.0, 1e-12);
  // All tied → 0.5.
  EXPECT_DOUBLE_EQ(auc(std::vector<float>{1, 1, 1, 1}, std::vector<float>{1, 0, 1, 0}), 0.5);
}

TEST(Metrics, AucSingleClassIsNaN) {
  EXPECT_TRUE(std::isnan(auc(std::vector<float>{0.1f, 0.2f}, std::vector<float>{1, 1})));
}

TEST(Metrics, AucRejectsNonFiniteScores) {
  EXPECT_THROW(auc(std::vector<float>{NAN, 0.2f}, std::vector<float>{1, 0}), std::exception);
}

TEST(Metrics, UaucIsUnweightedAndSkipsSingleClassUsers) {
  // user 1: 4 rows, AUC 1.0; user 2: 2 rows, AUC 0.0; user 3: positives only (skipped).
  std::vector<int64_t> u{1, 1, 1, 1, 2, 2, 3, 3};
  std::vector<float> s{0.9f, 0.8f, 0.1f, 0.2f, 0.1f, 0.9f, 0.5f, 0.6f};
  std::vector<float> y{1, 1, 0, 0, 1, 0, 1, 1};
  auto r = uauc(u, s, y);
  EXPECT_DOUBLE_EQ(r.uauc, 0.5);  // (1.0 + 0.0) / 2, not row-weighted (which would give 2/3)
  EXPECT_EQ(r.users, 2);
  EXPECT_EQ(r.skipped, 1);
}

TEST(Metrics, UaucWithTiesAndInterleavedUsers) {
  std::vector<int64_t> u{2, 1, 2, 1};
  std::vector<float> s{0.3f, 0.7f, 0.3f, 0.2f};
  std::vector<float> y{1, 1, 0, 0};
  auto r = uauc(u, s, y);
  EXPECT_DOUBLE_EQ(r.uauc, (1.0 + 0.5) / 2);
}

TEST(Metrics, EvaluateSplitsWarmAndCold) {
  data::Split sp;
  sp.name = "test";
  std::vector<int64_t> none;
  // warm rows: user 1 (AUC 1); cold rows: user 2 (AUC 0).
  sp.push_row(1, 1, 1, 0, 1, none);
  sp.push_row(1, 2, 0, 0, 1, none);
  sp.push_row(2, 1, 1, 0, 0, none);
  sp.push_row(2, 2, 0, 0, 0, none);
  std::vector<float> s{0.9f, 0.1f, 0.2f, 0.8f};
  auto r = evaluate(sp, s);
  EXPECT_EQ(r.n_rows, 4);
  EXPECT_DOUBLE_EQ(r.auc, 0.75);  // pairs: .9>.1, .9>.8, .2>.1, .2<.8
  EXPECT_DOUBLE_EQ(r.uauc, 0.5);
  EXPECT_EQ(r.uauc_users, 2);
  EXPECT_EQ(r.warm.n_rows, 2);
  EXPECT_DOUBLE_EQ(r.warm.auc, 1.0);
  EXPECT_DOUBLE_EQ(r.cold.auc, 0.0);
  auto back = from_json(to_json(r));
  EXPECT_DOUBLE_EQ(back.warm.auc, 1.0);
  EXPECT_EQ(back.uauc_users, 2);
}

TEST(Metrics, EvaluateRejectsMisalignedScores) {
  data::Split sp;
  sp.push_row(1, 1, 1, 0, 1, {});
  EXPECT_THROW(evaluate(sp, std::vector<float>{0.1f, 0.2f}), std::exception);
}

}  // namespace
}  // namespace cora::eval
