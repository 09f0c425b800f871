// LLaMA-family hyper-parameters, read from a Hugging Face config.json (LlamaForCausalLM,
// MistralForCausalLM). Field names mirror the HF keys. Keys that would change the computation
// and are not implemented are refused with a clear error; bookkeeping keys are ignored.
#pragma once

#include <cstdint>
#include <string>

namespace cora::llm {

struct LlamaConfig {
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  ///< defaults to num_attention_heads (no GQA)
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::string architecture = "LlamaForCausalLM";

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

/// Parses config.json text; `source` names the file in errors.
LlamaConfig parse_config(const std::string& json_text, const std::string& source);
LlamaConfig load_config(const std::string& path);
/// config.json text for `c` (written by `cora pretrain` and tests).
std::string to_json(const LlamaConfig& c);

}  // namespace cora::llm
