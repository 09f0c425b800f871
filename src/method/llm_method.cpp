// ICL and CoRA scoring; batch assembly.
#include "cora/method/llm_method.h"

#include <sstream>

#include "cora/core/error.h"

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
  return {ids.to(device), mask.to(device), last.to(device), rows.index(sel).to(device)};
}

namespace {

torch::Tensor answer_logit(llm::LlamaImpl& m, const PromptBatch& b, llm::Adapter* ad,
                           int32_t answer_id) {
  auto h = m.hidden_at({b.ids, b.mask, ad}, b.last);  // [B, D], final norm at the last position
  auto row = torch::tensor({static_cast<int64_t>(answer_id)}, torch::kInt64);
  return m.logits(h, row).squeeze(-1).to(torch::kFloat32);  // [B]: only the answer row
}

class IclMethod : public LlmMethod {
 public:
  IclMethod(llm::Llama llm, int32_t answer) : llm_(std::move(llm)), answer_(answer) {}
  torch::Tensor score(const PromptBatch& b) override { return answer_logit(*llm_, b, nullptr, answer_); }
  std::vector<std::pair<std::string, torch::Tensor>> trainable() override { return {}; }
  void set_training(bool) override {}

 private:
  llm::Llama llm_;
  int32_t answer_;
};

class CoraMethod : public LlmMethod {
 public:
  CoraMethod(const config::Config& c, llm::Llama llm, cf::CfModel cf, int32_t answer,
             const torch::Device& device)
      : llm_(std::move(llm)), cf_(std::move(cf)), answer_(answer) {
    const auto& lc = llm_->config();
    GeneratorOptions g{c.cora.n_queries, c.cora.layers, c.cora.heads, c.cora.hidden,
                       c.cora.intermediate, c.cora.dropout};
    std::vector<std::string> names;
    std::stringstream ss(c.cora.targets);
    for (std::string t; std::getline(ss, t, ',');)
      if (!t.empty()) names.push_back(t);
    generator_ = CollabQueryGenerator(g, cf_->dim(), lc.hidden_size, c.cora.rank);
    adapter_ = llm::PerSampleLowRank(
        lc, llm::LowRankOptions{llm::parse_targets(names, "cora.targets"), c.cora.rank,
                                c.cora.alpha, c.cora.lora_dropout});
    generator_->to(device);
    adapter_->to(device);
  }

  torch::Tensor score(const PromptBatch& b) override {
    torch::Tensor user, item;
    {
      torch::NoGradGuard ng;  // the CF model is frozen
      user = cf_->user_repr(b.rows);
      item = cf_->item_repr(b.rows.iid);
    }
    adapter_->set_wc(generator_(user, item));  // [B, D, r]
    return answer_logit(*llm_, b, adapter_.get(), answer_);
  }

  std::vector<std::pair<std::string, torch::Tensor>> trainable() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& p : generator_->named_parameters()) out.emplace_back("generator." + p.key(), p.value());
    for (auto& p : adapter_->named_parameters()) out.emplace_back("deltas." + p.key(), p.value());
    return out;
  }

  void set_training(bool on) override {
    generator_->train(on);
    adapter_->train(on);
  }

 private:
  llm::Llama llm_;
  cf::CfModel cf_;
  int32_t answer_;
  CollabQueryGenerator generator_{nullptr};
  llm::PerSampleLowRank adapter_{nullptr};
};

}  // namespace

std::unique_ptr<LlmMethod> make_llm_method(const config::Config& c, llm::Llama llm,
                                           cf::CfModel cf, int32_t answer_id,
                                           const torch::Device& device) {
  if (c.method == "icl") return std::make_unique<IclMethod>(std::move(llm), answer_id);
  if (c.method == "cora") {
    if (!cf)
      throw Error::key("cf.run", "CoRA needs a finished CF run (hint: `cora train --config "
                                 "configs/ml1m/mf.json --out runs/mf`, then --set cf.run=runs/mf)");
    return std::make_unique<CoraMethod>(c, std::move(llm), std::move(cf), answer_id, device);
  }
  throw Error::key("method", "'" + c.method + "' is not an LLM method available in this build "
                                               "(available: icl, cora)");
}

}  // namespace cora::method
