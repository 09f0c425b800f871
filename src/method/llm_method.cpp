// Batch assembly, the pieces the LLM methods share, and the factory through the registry.
#include "cora/method/llm_method.h"

#include <sstream>

#include "cora/core/error.h"
#include "cora/method/registry.h"
#include "method/methods.h"

namespace cora::method {

PromptBatch make_batch(const TokenizedSplit& tok, const cf::Rows& rows,
                       const std::vector<int64_t>& idx, const torch::Device& device) {
  const int64_t B = static_cast<int64_t>(idx.size());
  int64_t T = 0;
  for (int64_t r : idx) T = std::max(T, tok.length(r));
  auto ids = torch::zeros({B, T}, torch::kInt64);
  auto mask = torch::zeros({B, T}, torch::kInt64);
  auto last = torch::empty({B}, torch::kInt64);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t r = idx[b], len = tok.length(r);
    for (int64_t t = 0; t < len; ++t) {
      ia[b][t] = tok.ids[tok.offsets[r] + t];
      ma[b][t] = 1;
    }
    last[b] = len - 1;
  }
  auto sel = torch::tensor(idx, torch::kInt64);
  PromptBatch out{ids.to(device), mask.to(device), last.to(device), rows.index(sel).to(device)};
  if (!tok.user_pos.empty()) {
    auto up = torch::empty({B}, torch::kInt64), ip = torch::empty({B}, torch::kInt64);
    for (int64_t b = 0; b < B; ++b) {
      up[b] = tok.user_pos[idx[b]];
      ip[b] = tok.item_pos[idx[b]];
    }
    out.user_pos = up.to(device);
    out.item_pos = ip.to(device);
  }
  return out;
}

CollmMlpImpl::CollmMlpImpl(int64_t d_cf, int64_t hidden, int64_t d_model)
    : fc1(register_module("fc1", torch::nn::Linear(d_cf, hidden))),
      fc2(register_module("fc2", torch::nn::Linear(hidden, d_model))) {}

torch::Tensor CollmMlpImpl::forward(const torch::Tensor& x) { return fc2(torch::relu(fc1(x))); }

llm::EmbedOverride slot_override(const PromptBatch& b, const torch::Tensor& user_values,
                                 const torch::Tensor& item_values) {
  TORCH_CHECK(b.user_pos.defined(), "CoLLM needs a prompt with <UserID> and <TargetItemID> slots");
  const int64_t B = b.ids.size(0);
  auto rows = torch::arange(B, b.ids.options());
  auto index = torch::cat({torch::stack({rows, b.user_pos}, 1), torch::stack({rows, b.item_pos}, 1)}, 0);
  return {index, torch::cat({user_values, item_values}, 0)};
}

torch::Tensor answer_logit(llm::LlamaImpl& m, const PromptBatch& b, llm::Adapter* ad,
                           int32_t answer_id, const llm::EmbedOverride* embeds,
                           const torch::Tensor& adapter_input) {
  auto h = m.hidden_at({b.ids, b.mask, ad, embeds, adapter_input}, b.last);  // [B, D]
  auto row = torch::tensor({static_cast<int64_t>(answer_id)}, torch::kInt64);
  return m.logits(h, row).squeeze(-1).to(torch::kFloat32);  // [B]: only the answer row
}

std::vector<llm::Proj> targets_of(const std::string& list, const std::string& key) {
  std::vector<std::string> names;
  std::stringstream ss(list);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) names.push_back(t);
  return llm::parse_targets(names, key);
}

llm::SharedLowRank make_lora(const config::Config& c, const llm::LlamaConfig& lc) {
  return llm::SharedLowRank(lc, llm::LowRankOptions{targets_of(c.lora.targets, "lora.targets"),
                                                    c.lora.rank, c.lora.alpha, c.lora.dropout});
}

std::pair<torch::Tensor, torch::Tensor> cf_representations(cf::CfModelImpl& cf, const PromptBatch& b) {
  torch::NoGradGuard ng;  // the CF model is frozen
  return {cf.user_repr(b.rows), cf.item_repr(b.rows.iid)};
}

std::unique_ptr<LlmMethod> make_llm_method(const config::Config& c, llm::Llama llm,
                                           cf::CfModel cf, int32_t answer_id,
                                           const torch::Device& device) {
  const MethodInfo& m = find_method(c.method);
  if (m.kind != Kind::llm)
    throw Error::key("method", "'" + c.method + "' is not an LLM method");
  return m.llm_factory(c, LlmParts{std::move(llm), std::move(cf), answer_id, device});
}

}  // namespace cora::method
