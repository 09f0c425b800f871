// ICL: the frozen LLM scores the text prompt; nothing trains.
#include "method/methods.h"

namespace cora::method {
namespace {

class IclMethod : public LlmMethod {
 public:
  IclMethod(llm::Llama llm, int32_t answer) : llm_(std::move(llm)), answer_(answer) {}
  torch::Tensor score(const PromptBatch& b) override { return answer_logit(*llm_, b, nullptr, answer_); }
  std::vector<std::pair<std::string, torch::Tensor>> trainable() override { return {}; }
  void set_training(bool) override {}
  llm::LlamaImpl& llm() override { return *llm_; }

 private:
  llm::Llama llm_;
  int32_t answer_;
};

}  // namespace

std::unique_ptr<LlmMethod> make_icl(const config::Config&, LlmParts p) {
  return std::make_unique<IclMethod>(std::move(p.llm), p.answer_id);
}

}  // namespace cora::method
