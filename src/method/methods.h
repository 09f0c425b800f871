// Library-private: the LLM methods' factories (one file each) and the pieces they share.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cora/config/config.h"
#include "cora/llm/adapters.h"
#include "cora/method/llm_method.h"

namespace cora::method {

std::unique_ptr<LlmMethod> make_icl(const config::Config& c, LlmParts p);
std::unique_ptr<LlmMethod> make_tallrec(const config::Config& c, LlmParts p);
std::unique_ptr<LlmMethod> make_collm(const config::Config& c, LlmParts p);
std::unique_ptr<LlmMethod> make_cora(const config::Config& c, LlmParts p);

/// The answer token's logit [B] at each row's last position (final norm and the one vocabulary
/// row only), with an optional adapter (and its per-sample input) and embedding override.
torch::Tensor answer_logit(llm::LlamaImpl& m, const PromptBatch& b, llm::Adapter* ad,
                           int32_t answer_id, const llm::EmbedOverride* embeds = nullptr,
                           const torch::Tensor& adapter_input = {});


/// A TALLRec LoRA of the config's lora.* shape.
llm::SharedLowRank make_lora(const config::Config& c, const llm::LlamaConfig& lc);

/// Frozen user and item representations [B, d_cf] of a batch's rows.
std::pair<torch::Tensor, torch::Tensor> cf_representations(cf::CfModelImpl& cf, const PromptBatch& b);

}  // namespace cora::method
