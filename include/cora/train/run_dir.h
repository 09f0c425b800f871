// A run directory (the contract's layout): config.resolved.json, metrics.jsonl (one record per
// evaluation), metrics.json (final), eval/<split>.json + _scores.tsv, ckpt/ (latest and best).
// Only the writer rank touches files, so data-parallel runs can share one directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cora/config/config.h"
#include "cora/eval/metrics.h"

namespace cora::train {

/// One metrics.jsonl record.
struct EvalRecord {
  int64_t step = 0, epoch = 0;
  double loss = 0, lr = 0;
  std::vector<std::pair<std::string, double>> valid;  ///< e.g. auc, uauc (or perplexity)
  double elapsed_s = 0;
};

/// Where a run stands; ckpt/progress.json is the commit point of a checkpoint.
struct Progress {
  int64_t epoch = -1;  ///< last completed epoch (-1 = none)
  int64_t step = 0;
  int64_t best_epoch = -1, best_step = 0;
  double best_metric = -1;
  int64_t bad_epochs = 0;  ///< evaluations since the last improvement
  double elapsed_s = 0;
  bool done = false;
  int64_t epoch_step = 0;   ///< steps done in epoch + 1 when a signal stopped the run mid-epoch
  double epoch_loss = 0;    ///< their summed batch losses
};

class RunDir {
 public:
  /// Creates `path` and ckpt/ (writer only); eval/ comes with the first evaluation written.
  explicit RunDir(std::string path, bool writer = true);
  const std::string& path() const { return path_; }
  std::string ckpt(const std::string& name) const { return path_ + "/ckpt/" + name; }
  bool writer() const { return writer_; }

  void write_config(const config::Config& c) const;
  /// Reads config.resolved.json back (for eval and resume).
  config::Config read_config() const;

  void append_metrics(const EvalRecord& r) const;
  /// Drops metrics.jsonl records past `epoch` (resume after an interrupted evaluation).
  void truncate_metrics_after(int64_t epoch) const;

  void write_progress(const Progress& p) const;
  /// progress.json's text (save_checkpoint writes it together with the weights).
  static std::string progress_json(const Progress& p);
  std::optional<Progress> read_progress() const;

  /// metrics.json: {"valid", "test", "best_step", "best_epoch", "selection_metric", ...}.
  void write_final(const eval::EvalResult& valid, const eval::EvalResult& test,
                   const Progress& p, const std::string& selection_metric,
                   const std::string& method) const;
  /// eval/<split>.json and eval/<split>_scores.tsv.
  void write_eval(const eval::EvalResult& r, const data::Split& split,
                  const std::vector<float>& scores) const;

 private:
  std::string path_;
  bool writer_;
};

}  // namespace cora::train
