// The LLM methods behind one interface: each scores a batch of prompts with the logit of the
// answer token at the last prompt position. One file each: icl.cpp (the frozen LLM alone),
// tallrec.cpp (a shared LoRA trained on the text prompt), collm.cpp (a frozen TALLRec LoRA plus
// an MLP mapping the frozen CF model's user/item embeddings into two one-token slots), cora.cpp
// (per-sample deltas (α/r)·B·(drop(x)·W_c) with W_c generated from the frozen CF model's user
// and item representations; only the generator and the B's train).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cora/cf/model.h"
#include "cora/config/config.h"
#include "cora/llm/adapters.h"
#include "cora/llm/model.h"
#include "cora/method/generator.h"
#include "cora/method/prompt.h"

namespace cora::method {

/// Right-padded prompts of some rows plus their CF rows, on one device.
struct PromptBatch {
  torch::Tensor ids;   // [B, T] int64
  torch::Tensor mask;  // [B, T] 1 = token
  torch::Tensor last;  // [B] position of each row's last prompt token
  cf::Rows rows;       // uid, iid, label (+ history for SASRec)
  torch::Tensor user_pos = {}, item_pos = {};  // [B] CoLLM slot positions (undefined: no slots)
};
PromptBatch make_batch(const TokenizedSplit& tok, const cf::Rows& rows,
                       const std::vector<int64_t>& idx, const torch::Device& device);

class LlmMethod {
 public:
  virtual ~LlmMethod() = default;
  /// Logits [B] (the answer token's logit at each row's last position).
  virtual torch::Tensor score(const PromptBatch& b) = 0;
  /// The trained tensors, named as saved in checkpoints (empty for ICL).
  virtual std::vector<std::pair<std::string, torch::Tensor>> trainable() = 0;
  virtual void set_training(bool on) = 0;

  /// What the method does to the LLM on text outside recommendation (`cora probe`): the frozen
  /// LLM, the adapter it applies to every token (TALLRec's LoRA; CoLLM's frozen step-1 LoRA;
  /// CoRA's deltas; none for ICL) and, for a per-sample adapter, its input for CF rows (CoRA:
  /// W_c [N, D, r] of each row's user and item; undefined for shared adapters).
  virtual llm::LlamaImpl& llm() = 0;
  virtual llm::Adapter* adapter() { return nullptr; }
  virtual torch::Tensor adapter_input(const cf::Rows& rows) { return {}; }
};

/// CoLLM's mapping d_cf → hidden → ReLU → d_model (exposed for tests).
class CollmMlpImpl : public torch::nn::Module {
 public:
  CollmMlpImpl(int64_t d_cf, int64_t hidden, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(CollmMlp);

/// The embedding override of a CoLLM batch: user values at user_pos, item values at item_pos.
llm::EmbedOverride slot_override(const PromptBatch& b, const torch::Tensor& user_values,
                                 const torch::Tensor& item_values);

/// What an LLM method is built from: the frozen LLM, the frozen CF model (null for methods
/// without a CF source), the answer token and the device.
struct LlmParts {
  llm::Llama llm;
  cf::CfModel cf;
  int32_t answer_id;
  torch::Device device;
};

/// Builds the config's method through the registry (method/registry.h).
std::unique_ptr<LlmMethod> make_llm_method(const config::Config& c, llm::Llama llm,
                                           cf::CfModel cf, int32_t answer_id,
                                           const torch::Device& device);

/// The projections named by a comma-separated list ("q_proj,v_proj"); errors name `key`.
std::vector<llm::Proj> targets_of(const std::string& list, const std::string& key);

}  // namespace cora::method
