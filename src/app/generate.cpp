// `cora generate`: greedy decoding from a checkpoint directory, ids in and ids out.
#include <charconv>
#include <iostream>

#include "cora/app/commands.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/safetensors.h"
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
  const auto dtype = a.dtype == "fp32"   ? torch::kFloat32
                     : a.dtype == "bf16" ? torch::kBFloat16
                     : device.is_cuda()  ? torch::kBFloat16
                                         : torch::kFloat32;
  llm::Llama m = llm::load_llama(a.model, {.dtype = dtype, .device = device});
  if (!a.prompt.empty()) {
    text::Tokenizer tok(text::Tokenizer::file_in(a.model));
    if (tok.add_bos()) prompt.push_back(tok.bos_id() >= 0 ? tok.bos_id() : m->config().bos_token_id);
    for (int32_t id : tok.encode(a.prompt)) prompt.push_back(id);
  }
  for (int64_t id : prompt)
    if (id >= m->config().vocab_size)
      throw UsageError("--ids: id " + std::to_string(id) + " is outside the vocabulary (" +
                       std::to_string(m->config().vocab_size) + ")");
  if (!a.logits.empty()) {  // every prompt position's logits, for comparisons with other implementations
    torch::NoGradGuard ng;
    const int64_t T = static_cast<int64_t>(prompt.size());
    auto ids = torch::tensor(prompt, torch::kInt64).unsqueeze(0).to(device);
    auto pos = torch::arange(T, torch::kInt64).unsqueeze(0).to(device);
    auto logits = m->logits(m->hidden_at({ids}, pos)).squeeze(0).to(torch::kCPU, torch::kFloat32);
    io::save_safetensors(a.logits, {{"logits", logits}, {"ids", ids.squeeze(0).to(torch::kCPU)}},
                         {{"dtype", a.dtype}, {"device", device.str()}});
  }
  auto out = m->generate(prompt, a.max_new_tokens, a.stop_at_eos);
  for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? "," : "") << out[i];
  std::cout << "\n";
  return 0;
}

}  // namespace cora::app
