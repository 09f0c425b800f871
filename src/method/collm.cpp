// CoLLM step 2: a frozen TALLRec LoRA (step 1, optional) and a frozen CF model; only the MLP
// that maps the CF user/item representations into the two one-token prompt slots trains.
#include "cora/core/error.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/train/checkpoint.h"
#include "cora/train/run_dir.h"
#include "method/methods.h"

namespace cora::method {
namespace {

class CollmMethod : public LlmMethod {
 public:
  CollmMethod(const config::Config& c, llm::Llama llm, cf::CfModel cf, int32_t answer,
              const torch::Device& device)
      : llm_(std::move(llm)), cf_(std::move(cf)), answer_(answer) {
    const int64_t hidden = c.collm.hidden > 0 ? c.collm.hidden : 10 * cf_->dim();
    mlp_ = CollmMlp(cf_->dim(), hidden, llm_->config().hidden_size);
    mlp_->to(device);
    if (!c.collm.tallrec_run.empty()) {
      train::RunDir step1(c.collm.tallrec_run, /*writer=*/false);
      const std::string best = step1.ckpt("best.safetensors");
      if (!io::exists(c.collm.tallrec_run + "/metrics.json") || !io::exists(best))
        throw Error::key("collm.tallrec_run", c.collm.tallrec_run +
                                                  " is not a finished TALLRec run (no metrics.json "
                                                  "or ckpt/best.safetensors)");
      config::Config tc = step1.read_config();
      if (tc.method != "tallrec")
        throw Error::key("collm.tallrec_run", c.collm.tallrec_run + " is a '" + tc.method +
                                                  "' run, not a TALLRec run");
      if (tc.llm.dir != c.llm.dir || tc.llm.random_init != c.llm.random_init)
        throw Error::key("collm.tallrec_run", "its LLM (" + tc.llm.dir + ") differs from llm.dir (" +
                                                  c.llm.dir + ")");
      lora_ = make_lora(tc, llm_->config());
      lora_->to(device);
      std::vector<std::pair<std::string, torch::Tensor>> named;
      for (auto& p : lora_->named_parameters()) named.emplace_back("lora." + p.key(), p.value());
      train::copy_named(named, io::load_safetensors(best), best);
      for (auto& p : lora_->parameters()) p.set_requires_grad(false);
    }
  }

  torch::Tensor score(const PromptBatch& b) override {
    auto [user, item] = cf_representations(*cf_, b);
    auto ov = slot_override(b, mlp_(user), mlp_(item));
    return answer_logit(*llm_, b, lora_ ? lora_.get() : nullptr, answer_, &ov);
  }
  std::vector<std::pair<std::string, torch::Tensor>> trainable() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& p : mlp_->named_parameters()) out.emplace_back("mlp." + p.key(), p.value());
    return out;
  }
  void set_training(bool on) override {
    mlp_->train(on);
    if (lora_) lora_->train(on);  // PEFT keeps LoRA dropout active in training mode
  }
  llm::LlamaImpl& llm() override { return *llm_; }
  llm::Adapter* adapter() override { return lora_ ? lora_.get() : nullptr; }

 private:
  llm::Llama llm_;
  cf::CfModel cf_;
  int32_t answer_;
  CollmMlp mlp_{nullptr};
  llm::SharedLowRank lora_{nullptr};
};

}  // namespace

std::unique_ptr<LlmMethod> make_collm(const config::Config& c, LlmParts p) {
  if (!p.cf) throw Error::key("cf.run", "CoLLM needs a finished CF run (hint: --set cf.run=runs/mf)");
  return std::make_unique<CollmMethod>(c, std::move(p.llm), std::move(p.cf), p.answer_id, p.device);
}

}  // namespace cora::method
