// TALLRec: a LoRA shared by every sample, trained on the text prompt; the LLM stays frozen.
#include "method/methods.h"

namespace cora::method {
namespace {

class TallrecMethod : public LlmMethod {
 public:
  TallrecMethod(const config::Config& c, llm::Llama llm, int32_t answer, const torch::Device& device)
      : llm_(std::move(llm)), answer_(answer), lora_(make_lora(c, llm_->config())) {
    lora_->to(device);
  }
  torch::Tensor score(const PromptBatch& b) override {
    return answer_logit(*llm_, b, lora_.get(), answer_);
  }
  std::vector<std::pair<std::string, torch::Tensor>> trainable() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& p : lora_->named_parameters()) out.emplace_back("lora." + p.key(), p.value());
    return out;
  }
  void set_training(bool on) override { lora_->train(on); }
  llm::LlamaImpl& llm() override { return *llm_; }
  llm::Adapter* adapter() override { return lora_.get(); }

 private:
  llm::Llama llm_;
  int32_t answer_;
  llm::SharedLowRank lora_;
};

}  // namespace

std::unique_ptr<LlmMethod> make_tallrec(const config::Config& c, LlmParts p) {
  return std::make_unique<TallrecMethod>(c, std::move(p.llm), p.answer_id, p.device);
}

}  // namespace cora::method
