// LLaMA-family hyper-parameters, read from a Hugging Face config.json (LlamaForCausalLM incl.
// Llama-3.x, MistralForCausalLM, Qwen2ForCausalLM (Qwen2/2.5), Qwen3ForCausalLM). Field names
// mirror the HF keys. Keys that would change the computation and are not implemented are
// refused with a clear error; bookkeeping keys are ignored.
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
  int64_t explicit_head_dim = 0;  ///< config "head_dim" when given (Qwen3: 128 at any width)
  bool qkv_bias = false;          ///< q/k/v projections have biases (Qwen2 always; attention_bias)
  bool o_bias = false;            ///< o_proj has a bias (attention_bias on Llama / Qwen3)
  bool qk_norm = false;           ///< per-head RMSNorm of q and k before RoPE (Qwen3)
  /// RoPE scaling: "" (none), "linear", "dynamic" (NTK), "llama3" (Llama-3.1/3.2).
  std::string rope_type;
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;  ///< llama3
  int64_t rope_original_max_positions = 0;                          ///< llama3 / dynamic

  int64_t head_dim() const {
    return explicit_head_dim > 0 ? explicit_head_dim : hidden_size / num_attention_heads;
  }
  int64_t q_width() const { return num_attention_heads * head_dim(); }  ///< q_proj out, o_proj in
};

/// Parses config.json text; `source` names the file in errors.
LlamaConfig parse_config(const std::string& json_text, const std::string& source);
LlamaConfig load_config(const std::string& path);
/// config.json text for `c` (written by `cora pretrain` and tests).
std::string to_json(const LlamaConfig& c);

}  // namespace cora::llm
