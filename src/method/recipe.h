// Library-private: what the recipes share — engine options from a config, a validation from
// scores, the final evaluation of a finished run — and the per-kind entry points.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cora/config/config.h"
#include "cora/data/split.h"
#include "cora/method/llm_method.h"
#include "cora/method/prompt.h"
#include "cora/method/registry.h"
#include "cora/method/train.h"
#include "cora/text/tokenizer.h"
#include "cora/train/engine.h"

namespace cora::method {

/// The engine's options for a method that selects on validation AUC/UAUC: train.* keys, the
/// kind's optimiser (CF: Adam with L2 on every tensor, constant lr; LLM: AdamW without decay on
/// vectors/norms, warm-up + cosine), checkpoint metadata `meta`.
train::EngineOptions engine_options(const config::Config& c, Kind kind,
                                    std::map<std::string, std::string> meta);

/// AUC and UAUC of `scores` on `split`; the selection metric by name (auc | uauc).
train::Validation validation_of(const data::Split& split, const std::vector<float>& scores,
                                const std::string& metric);

/// After the engine's finished run (the trainable holds the selected state): evaluates `valid`
/// and `test` with `score`, writes eval/ and metrics.json, and summarises.
TrainSummary finish_run(const train::RunDir& run, const config::Config& c,
                        const train::EngineResult& r, double t0,
                        const std::function<std::vector<float>(const data::Split&)>& score,
                        const data::Split& valid, const data::Split& test);

/// Refuses to start over a run directory that already holds a run unless resuming.
void check_fresh(const std::string& out_dir, bool resume);

/// Everything an LLM run needs, built once from the config (errors surface before training).
struct LlmSetup {
  data::Dataset data;
  torch::Device device{torch::kCPU};
  std::unique_ptr<text::Tokenizer> tok;
  std::unique_ptr<LlmMethod> method;
  int64_t hist_len = 0;
  PromptOptions prompt;
};
LlmSetup build_llm_setup(const config::Config& c);
/// Loads a run's selected state (ckpt/best.safetensors) into the method's trained tensors.
void load_selected_state(LlmSetup& s, const std::string& run_dir);

TrainSummary train_cf(const config::Config& c, const std::string& out_dir, bool resume);
TrainSummary train_llm(const config::Config& c, const std::string& out_dir, bool resume);
eval::EvalResult evaluate_cf(const std::string& run_dir, const config::Config& c,
                             const std::string& split);
eval::EvalResult evaluate_llm(const std::string& run_dir, const config::Config& c,
                              const std::string& split);

}  // namespace cora::method
