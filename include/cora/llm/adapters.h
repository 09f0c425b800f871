// The two low-rank adapters that plug into the LLM's projection choke point.
//  - PerSampleLowRank (CoRA): a per-sample A = W_c [B, D, r] (the forward pass's adapter input,
//    LlmInput::adapter_input) shared by every target projection,
//    each with its own trained B [out, r] (zero-initialised): y += (α/r)·B·(drop(x)·W_c).
//    x·W_c is computed once per shared input (q, k, v read one tensor, so do gate and up), with
//    one dropout mask per shared input. No per-sample ΔW is ever materialised.
//  - SharedLowRank (LoRA / TALLRec): per projection A [r, in] (Kaiming-uniform), B [out, r]
//    (zero): y += (α/r)·B·A·drop(x), one dropout mask per projection as in PEFT.
// Parameter names: layers.<l>.<proj>.lora_A / lora_B.
#pragma once

#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

#include "cora/llm/model.h"

namespace cora::llm {

struct LowRankOptions {
  std::vector<Proj> targets{Proj::q, Proj::k, Proj::v, Proj::o};  ///< in every layer
  int64_t rank = 16;
  double alpha = 32;    ///< scale = alpha / rank
  double dropout = 0.05;
};

/// Parses "q_proj,v_proj" style lists (also "q,v"); throws cora::Error naming `key`.
std::vector<Proj> parse_targets(const std::vector<std::string>& names, const std::string& key);

class PerSampleLowRankImpl : public torch::nn::Module, public Adapter {
 public:
  PerSampleLowRankImpl(const LlamaConfig& c, LowRankOptions o);
  /// `wc` = W_c [B, D, r] of this forward pass (from the collaborative query generator).
  void add_deltas(int64_t layer, std::span<const Proj> projs, const torch::Tensor& x,
                  const torch::Tensor& wc, std::vector<torch::Tensor>& outs) override;
  const LowRankOptions& options() const { return opt_; }

 private:
  LowRankOptions opt_;
  std::set<Proj> targets_;
  std::vector<std::vector<torch::Tensor>> b_;  // [layer][proj] → [out, r] or undefined
};
TORCH_MODULE(PerSampleLowRank);

class SharedLowRankImpl : public torch::nn::Module, public Adapter {
 public:
  SharedLowRankImpl(const LlamaConfig& c, LowRankOptions o);
  void add_deltas(int64_t layer, std::span<const Proj> projs, const torch::Tensor& x,
                  const torch::Tensor& unused, std::vector<torch::Tensor>& outs) override;

 private:
  LowRankOptions opt_;
  std::vector<std::vector<torch::Tensor>> a_, b_;  // [layer][proj]
};
TORCH_MODULE(SharedLowRank);

}  // namespace cora::llm
