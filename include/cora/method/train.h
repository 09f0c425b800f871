// Training and re-evaluating a run of any method: the recipes that assemble a model, its data
// and the engine (train/engine.h) from a config. The method registry picks the recipe:
// CF models (cf_recipe.cpp), the LLM methods (llm_recipe.cpp); `cora pretrain` has its own
// entry (method/pretrain.h).
#pragma once

#include <string>

#include "cora/config/config.h"
#include "cora/data/split.h"
#include "cora/eval/metrics.h"
#include "cora/train/engine.h"

namespace cora::method {

struct TrainSummary {
  eval::EvalResult valid, test;
  int64_t best_epoch = -1, best_step = 0, epochs_run = 0;
  double seconds = 0;          ///< wall time of this invocation
  double samples_per_s = 0;    ///< training rows per second (forward + backward + step)
  bool finished = false;       ///< false: left early (train.epochs_per_invocation)
};

/// Trains cfg.method (ICL: evaluates only) and writes the run directory: selection on
/// train.valid_split every epoch, early stopping, best state in ckpt/best.safetensors, valid and
/// test evaluated with it. `resume` continues from ckpt/ (bitwise equal to an uninterrupted run).
/// Every input is checked before the run directory is created; keys the method does not read
/// are refused (method/registry.h).
TrainSummary train(const config::Config& cfg, const std::string& out_dir, bool resume);

/// Re-evaluates a finished run on `split` from ckpt/best.safetensors; writes
/// eval/<split>.json and _scores.tsv.
eval::EvalResult evaluate_run(const std::string& run_dir, const std::string& split);

/// The engine's options for the config's method: train.* keys and the method kind's optimiser
/// (CF: Adam with L2 on every tensor and a constant lr; LLM methods: AdamW without decay on
/// vectors and norms, warm-up + cosine).
train::EngineOptions engine_options(const config::Config& c);

/// The rows selection uses: all of `full`, or a fixed seeded sample of `limit` rows
/// (train.valid_limit) in the split's order.
data::Split selection_split(const data::Split& full, int64_t limit);

}  // namespace cora::method
