// Training, selection and evaluation of the CF baselines (MF, LightGCN, SASRec), and loading a
// finished CF run as the frozen collaborative source of the LLM methods.
#pragma once

#include <string>
#include <vector>

#include "cora/cf/model.h"
#include "cora/config/config.h"
#include "cora/data/split.h"
#include "cora/eval/metrics.h"

namespace cora::cf {

struct TrainSummary {
  eval::EvalResult valid, test;
  int64_t best_epoch = 0, best_step = 0, epochs_run = 0;
  double seconds = 0;        ///< wall time of this invocation's training loop
  double rows_per_s = 0;     ///< training rows per second (forward + backward + step)
};

/// Trains cfg.method on cfg.data.dir: Adam + BCE on labels, evaluation on train.valid_split
/// every epoch, early stopping on train.selection_metric with train.patience; best weights in
/// ckpt/best.safetensors; test evaluated with the best weights. `resume` continues from
/// ckpt/ (bitwise-identical to an uninterrupted run with the same seed and threads).
TrainSummary train(const config::Config& cfg, const std::string& out_dir, bool resume);

/// Writes `item` [n_items, D] and, for table models (MF, LightGCN), `user` [n_users, D]; SASRec's
/// user representation depends on each row's history, so LLM methods get it from load_run().
void export_representations(CfModelImpl& model, const std::string& path);

/// Logits for every row of `rows` (eval mode, no grad), batched.
std::vector<float> predict(CfModelImpl& model, const Rows& rows, int64_t batch_size,
                           const torch::Device& device);

/// A finished CF run's best model, frozen (no grad) and in eval mode, for `data`.
CfModel load_run(const std::string& run_dir, const data::Dataset& data,
                 const torch::Device& device);

/// Re-evaluates a finished CF run on `split`; writes eval/<split>.json and _scores.tsv.
eval::EvalResult evaluate_run(const std::string& run_dir, const std::string& split);

}  // namespace cora::cf
