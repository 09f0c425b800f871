// The trainer shared by every LLM method: AdamW (decay on >= 2-D tensors only), linear warm-up
// then cosine decay to a floor, gradient accumulation and clipping, "epochs" of N iterations,
// evaluation on the selection split after each, early stopping, atomic checkpoints and exact
// resume (data order and dropout are functions of (seed, step), so nothing else is saved).
#pragma once

#include <string>

#include "cora/config/config.h"
#include "cora/data/split.h"
#include "cora/eval/metrics.h"

namespace cora::method {

struct LlmTrainSummary {
  eval::EvalResult valid, test;
  int64_t best_epoch = -1, best_step = 0, epochs_run = 0;
  double seconds = 0;
  double train_samples_per_s = 0;
};

/// Trains (or, for ICL, only evaluates) cfg.method and writes the run directory.
LlmTrainSummary train(const config::Config& cfg, const std::string& out_dir, bool resume);

/// The rows model selection uses: all of `full`, or a fixed seeded sample of `limit` rows
/// (train.valid_limit) in the split's order.
data::Split selection_split(const data::Split& full, int64_t limit);

/// Learning rate at optimiser step `step` of `total`.
double learning_rate(const config::TrainConfig& t, int64_t step, int64_t total);

/// Re-evaluates a finished LLM run from ckpt/best.safetensors.
eval::EvalResult evaluate_run(const std::string& run_dir, const std::string& split);

}  // namespace cora::method
