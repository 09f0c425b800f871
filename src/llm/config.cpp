// config.json → LlamaConfig, refusing what the forward pass does not implement.
#include "cora/llm/config.h"

#include <nlohmann/json.hpp>

#include "cora/core/error.h"
#include "cora/io/files.h"

namespace cora::llm {
using json = nlohmann::json;

LlamaConfig parse_config(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error::at(source, 0, "not a JSON object");
  auto refuse = [&](const std::string& key, const std::string& why) {
    return Error::at(source, 0, "'" + key + "': " + why + " is not supported by cora's LLaMA forward pass");
  };
  LlamaConfig c;
  auto get_int = [&](const char* key, int64_t& dst, bool required) {
    if (!j.contains(key) || j[key].is_null()) {
      if (required) throw Error::at(source, 0, std::string("missing '") + key + "'");
      return;
    }
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0)
      throw Error::at(source, 0, std::string("'") + key + "' must be a non-negative integer");
    dst = j[key].get<int64_t>();
  };
  get_int("hidden_size", c.hidden_size, true);
  get_int("intermediate_size", c.intermediate_size, true);
  get_int("num_hidden_layers", c.num_hidden_layers, true);
  get_int("num_attention_heads", c.num_attention_heads, true);
  c.num_key_value_heads = c.num_attention_heads;
  get_int("num_key_value_heads", c.num_key_value_heads, false);
  get_int("vocab_size", c.vocab_size, true);
  get_int("max_position_embeddings", c.max_position_embeddings, false);
  get_int("bos_token_id", c.bos_token_id, false);
  if (j.contains("eos_token_id") && j["eos_token_id"].is_array()) {
    if (j["eos_token_id"].empty()) throw Error::at(source, 0, "'eos_token_id' is an empty list");
    c.eos_token_id = j["eos_token_id"][0].get<int64_t>();
  } else {
    get_int("eos_token_id", c.eos_token_id, false);
  }
  for (auto [key, dst] : {std::pair{"rms_norm_eps", &c.rms_norm_eps}, {"rope_theta", &c.rope_theta}})
    if (j.contains(key) && !j[key].is_null()) {
      if (!j[key].is_number() || j[key].get<double>() <= 0)
        throw Error::at(source, 0, std::string("'") + key + "' must be a positive number");
      *dst = j[key].get<double>();
    }
  if (j.contains("tie_word_embeddings")) c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
    c.architecture = j["architectures"][0].get<std::string>();
  const bool qwen2 = c.architecture == "Qwen2ForCausalLM", qwen3 = c.architecture == "Qwen3ForCausalLM";
  if (c.architecture != "LlamaForCausalLM" && c.architecture != "MistralForCausalLM" && !qwen2 && !qwen3)
    throw refuse("architectures", "'" + c.architecture + "'");

  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    throw refuse("hidden_act", j["hidden_act"].dump());
  const bool attention_bias = j.value("attention_bias", false);
  c.qkv_bias = qwen2 || attention_bias;  // Qwen2's q/k/v always carry biases, its o_proj none
  c.o_bias = !qwen2 && attention_bias;
  c.qk_norm = qwen3;
  if (j.value("mlp_bias", false)) throw refuse("mlp_bias", "true");
  if (j.contains("pretraining_tp") && j["pretraining_tp"].is_number() && j["pretraining_tp"].get<int64_t>() > 1)
    throw refuse("pretraining_tp", "a value > 1");
  if (c.num_attention_heads == 0) throw Error::at(source, 0, "num_attention_heads must be positive");
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    get_int("head_dim", c.explicit_head_dim, false);
    if (c.explicit_head_dim == 0) throw Error::at(source, 0, "'head_dim' must be positive");
  } else if (c.hidden_size % c.num_attention_heads != 0) {
    throw Error::at(source, 0, "hidden_size must be divisible by num_attention_heads (or give head_dim)");
  }
  if (c.num_key_value_heads == 0 || c.num_attention_heads % c.num_key_value_heads != 0)
    throw Error::at(source, 0, "num_attention_heads must be a multiple of num_key_value_heads");
  // RoPE scaling ("type" in older files, "rope_type" in newer ones).
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& r = j["rope_scaling"];
    if (!r.is_object()) throw Error::at(source, 0, "'rope_scaling' must be an object or null");
    std::string type = r.value("rope_type", r.value("type", std::string()));
    auto num = [&](const char* key, double fallback) {
      if (!r.contains(key)) return fallback;
      if (!r[key].is_number() || r[key].get<double>() <= 0)
        throw Error::at(source, 0, std::string("'rope_scaling.") + key + "' must be a positive number");
      return r[key].get<double>();
    };
    if (type == "default") {
      type.clear();
    } else if (type == "linear" || type == "dynamic" || type == "llama3") {
      c.rope_factor = num("factor", 0);
      if (c.rope_factor <= 0) throw Error::at(source, 0, "'rope_scaling.factor' is required for " + type);
      c.rope_original_max_positions = static_cast<int64_t>(
          num("original_max_position_embeddings", static_cast<double>(c.max_position_embeddings)));
      if (type == "llama3") {
        c.rope_low_freq_factor = num("low_freq_factor", 1.0);
        c.rope_high_freq_factor = num("high_freq_factor", 4.0);
        if (c.rope_high_freq_factor <= c.rope_low_freq_factor)
          throw Error::at(source, 0, "'rope_scaling.high_freq_factor' must exceed low_freq_factor");
      }
    } else {
      throw refuse("rope_scaling", "type '" + type + "'");
    }
    c.rope_type = type;
  }
  // A sliding window changes attention only for sequences longer than the window, and Qwen
  // configs carry one that is off (use_sliding_window: false).
  if (j.value("use_sliding_window", true) && j.contains("sliding_window") &&
      j["sliding_window"].is_number_integer() &&
      j["sliding_window"].get<int64_t>() < c.max_position_embeddings)
    throw refuse("sliding_window", "a window shorter than max_position_embeddings (" +
                                       j["sliding_window"].dump() + ")");
  if (c.head_dim() % 2 != 0) throw Error::at(source, 0, "head dimension must be even (rotary)");
  return c;
}

LlamaConfig load_config(const std::string& path) { return parse_config(io::read_file(path), path); }

std::string to_json(const LlamaConfig& c) {
  json j = {{"architectures", {c.architecture}},
            {"model_type", c.architecture == "MistralForCausalLM"  ? "mistral"
                           : c.architecture == "Qwen2ForCausalLM" ? "qwen2"
                           : c.architecture == "Qwen3ForCausalLM" ? "qwen3"
                                                                  : "llama"},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"vocab_size", c.vocab_size},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rms_norm_eps", c.rms_norm_eps},
            {"rope_theta", c.rope_theta},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"bos_token_id", c.bos_token_id},
            {"eos_token_id", c.eos_token_id},
            {"hidden_act", "silu"},
            {"torch_dtype", "float32"}};
  if (c.explicit_head_dim > 0) j["head_dim"] = c.explicit_head_dim;
  if (c.architecture != "Qwen2ForCausalLM") j["attention_bias"] = c.o_bias;
  if (c.architecture == "Qwen2ForCausalLM" || c.architecture == "Qwen3ForCausalLM")
    j["use_sliding_window"] = false;
  if (!c.rope_type.empty()) {
    j["rope_scaling"] = {{"rope_type", c.rope_type}, {"factor", c.rope_factor},
                         {"original_max_position_embeddings", c.rope_original_max_positions}};
    if (c.rope_type == "llama3") {
      j["rope_scaling"]["low_freq_factor"] = c.rope_low_freq_factor;
      j["rope_scaling"]["high_freq_factor"] = c.rope_high_freq_factor;
    }
  }
  return j.dump(2) + "\n";
}

}  // namespace cora::llm
