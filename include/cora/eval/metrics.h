// AUC and UAUC as the CoLLM/CoRA papers compute them, plus the EVAL record of the contract.
// AUC: ROC-AUC over all rows, tied scores count half. UAUC: per-user AUC averaged UNWEIGHTED over
// users with at least one positive and one negative row; other users are skipped and counted.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "cora/data/split.h"

namespace cora::eval {

/// ROC-AUC in O(n log n) with ties counted half; NaN when only one class is present.
double auc(std::span<const float> scores, std::span<const float> labels);

struct UaucResult {
  double uauc = 0;      ///< NaN when no user has both classes
  int64_t users = 0;    ///< users with both classes (averaged over)
  int64_t skipped = 0;  ///< users with one class only
};
UaucResult uauc(std::span<const int64_t> uids, std::span<const float> scores,
                std::span<const float> labels);

struct SubsetMetrics {
  int64_t n_rows = 0;
  double auc = 0, uauc = 0;
  int64_t uauc_users = 0;
};

/// The contract's EVAL object.
struct EvalResult {
  std::string split;
  int64_t n_rows = 0;
  double auc = 0, uauc = 0;
  int64_t uauc_users = 0, uauc_skipped = 0;
  SubsetMetrics warm, cold;  ///< not_cold == 1 / == 0

  double metric(const std::string& name) const;  ///< "auc" | "uauc"
};

/// Scores one split; `scores` are aligned with the split's rows. Non-finite scores throw.
EvalResult evaluate(const data::Split& split, std::span<const float> scores);

/// EVAL as JSON text (NaN → null).
std::string to_json(const EvalResult& r, int indent = 2);
EvalResult from_json(const std::string& text);

/// `uid iid label score` rows with a header (atomic write).
void write_scores_tsv(const data::Split& split, std::span<const float> scores,
                      const std::string& path);

}  // namespace cora::eval
