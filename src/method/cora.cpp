// CoRA: the collaborative query generator turns the frozen CF model's user and item
// representations into a per-sample W_c [B, D, r], passed explicitly to the LLM's forward pass;
// every targeted projection adds (α/r)·B·(drop(x)·W_c). Only the generator and the B's train.
#include "cora/core/error.h"
#include "cora/method/generator.h"
#include "method/methods.h"

namespace cora::method {
namespace {

class CoraMethod : public LlmMethod {
 public:
  CoraMethod(const config::Config& c, llm::Llama llm, cf::CfModel cf, int32_t answer,
             const torch::Device& device)
      : llm_(std::move(llm)), cf_(std::move(cf)), answer_(answer) {
    const auto& lc = llm_->config();
    GeneratorOptions g{c.cora.n_queries, c.cora.layers, c.cora.heads, c.cora.hidden,
                       c.cora.intermediate, c.cora.dropout};
    generator_ = CollabQueryGenerator(g, cf_->dim(), lc.hidden_size, c.cora.rank);
    adapter_ = llm::PerSampleLowRank(
        lc, llm::LowRankOptions{targets_of(c.cora.targets, "cora.targets"), c.cora.rank,
                                c.cora.alpha, c.cora.lora_dropout});
    generator_->to(device);
    adapter_->to(device);
  }

  torch::Tensor score(const PromptBatch& b) override {
    auto [user, item] = cf_representations(*cf_, b);
    auto wc = generator_(user, item);  // [B, D, r]
    return answer_logit(*llm_, b, adapter_.get(), answer_, nullptr, wc);
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

  llm::LlamaImpl& llm() override { return *llm_; }
  llm::Adapter* adapter() override { return adapter_.get(); }
  torch::Tensor adapter_input(const cf::Rows& rows) override {
    torch::NoGradGuard ng;
    return generator_(cf_->user_repr(rows), cf_->item_repr(rows.iid));
  }

 private:
  llm::Llama llm_;
  cf::CfModel cf_;
  int32_t answer_;
  CollabQueryGenerator generator_{nullptr};
  llm::PerSampleLowRank adapter_{nullptr};
};

}  // namespace

std::unique_ptr<LlmMethod> make_cora(const config::Config& c, LlmParts p) {
  if (!p.cf)
    throw Error::key("cf.run", "CoRA needs a finished CF run (hint: `cora train --config "
                               "configs/ml1m/mf.json --out runs/mf`, then --set cf.run=runs/mf)");
  return std::make_unique<CoraMethod>(c, std::move(p.llm), std::move(p.cf), p.answer_id, p.device);
}

}  // namespace cora::method
