// `cora generate`: greedy decoding from a checkpoint directory, ids in and ids out.
#include <charconv>
#include <iostream>

#include "cora/app/commands.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/llm/loader.h"
#include "cora/text/tokenizer.h"

namespace cora::app {

int generate(const GenerateArgs& a) {
  if (a.ids.empty() == a.prompt.empty()) throw UsageError("give exactly one of --ids and --prompt");
  if (a.max_new_tokens < 0) throw UsageError("--max-new-tokens must be >= 0");
  set_threads(a.threads);
  torch::Device device(resolve_device(a.device));
  std::vector<int64_t> prompt;
  if (!a.ids.empty()) {
    std::string_view s = a.ids;
    while (!s.empty()) {
      auto comma = s.find(',');
      auto tok = s.substr(0, comma);
      int64_t v = 0;
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
      if (ec != std::errc() || p != tok.data() + tok.size() || v < 0)
        throw UsageError("--ids: '" + std::string(tok) + "' is not a token id");
      prompt.push_back(v);
      if (comma == std::string_view::npos) break;
      s.remove_prefix(comma + 1);
    }
  }
  llm::Llama m = llm::load_llama(a.model, {.dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32,
                                           .device = device});
  if (!a.prompt.empty()) {
    text::Tokenizer tok(a.model + "/tokenizer.model");
    prompt.push_back(tok.bos_id() >= 0 ? tok.bos_id() : m->config().bos_token_id);
    for (int32_t id : tok.encode(a.prompt)) prompt.push_back(id);
  }
  for (int64_t id : prompt)
    if (id >= m->config().vocab_size)
      throw UsageError("--ids: id " + std::to_string(id) + " is outside the vocabulary (" +
                       std::to_string(m->config().vocab_size) + ")");
  auto out = m->generate(prompt, a.max_new_tokens, a.stop_at_eos);
  for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? "," : "") << out[i];
  std::cout << "\n";
  return 0;
}

}  // namespace cora::app
