// `cora plan`: per-device memory of a config's training step (see src/app/plan.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cora/config/config.h"
#include "cora/llm/config.h"

namespace cora::app {

struct PlanOptions {
  std::string device = "cuda";  ///< cuda: LLM in bf16, fused attention; cpu: fp32
  int64_t tokens = 160;         ///< prompt length (the paper's prompts: ~160 tokens)
  double memory_gb = 0;         ///< budget for the largest micro-batch (0 = none)
};

struct MemoryPlan {
  std::string device, llm_dtype;
  int64_t tokens = 0, llm_params = 0, trained_params = 0, micro_batch = 0;
  bool checkpointing = false;
  double frozen_mib = 0, trained_mib = 0, grads_mib = 0, adam_mib = 0, overhead_mib = 0;
  double act_per_sample_mib = 0, act_per_sample_ckpt_mib = 0, peak_mib = 0, memory_gb = 0;
  int64_t max_micro_batch = -1, max_micro_batch_ckpt = -1;  ///< -1: no budget given
};

/// Parameters of a LLaMA-family model of shape `c`.
int64_t llm_parameters(const llm::LlamaConfig& c);
/// Parameters the config's method trains on an LLM of shape `c` (CoRA: generator + B's).
int64_t trained_parameters(const config::Config& cfg, const llm::LlamaConfig& c);
MemoryPlan plan_memory(const config::Config& cfg, const PlanOptions& o);

struct PlanArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string device = "cuda";
  int64_t tokens = 160;
  double memory_gb = 0;
  bool json = false;
};
int plan(const PlanArgs& a);

}  // namespace cora::app
