// A LLaMA-family decoder (RMSNorm, rotary embeddings in HF's rotate-half convention, GQA
// attention with causal + padding masks, SwiGLU MLP). Module and parameter names equal the
// Hugging Face checkpoint names, so named_parameters() lists the safetensors keys.
// Every projection goes through one choke point (project) where an Adapter adds low-rank deltas:
// per-sample (CoRA), shared (LoRA/TALLRec); input embeddings can be replaced (CoLLM).
#pragma once

#include <torch/torch.h>

#include <span>
#include <string>
#include <vector>

#include "cora/llm/config.h"

namespace cora::llm {

enum class Proj : int { q = 0, k, v, o, gate, up, down };
const char* proj_name(Proj p);  ///< "q_proj", ...

/// Adds deltas at the choke point. All `projs` read the same input `x` [B, T, in] (q, k, v
/// share the normalised hidden state; gate, up share theirs), so per-input work such as
/// dropout(x)·W_c is done once. `input` is the forward pass's per-sample adapter input
/// (LlmInput::adapter_input, e.g. CoRA's W_c [B, D, r]; undefined for shared adapters).
/// outs[i] is [B, T, out_i] and receives += delta_i.
class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual void add_deltas(int64_t layer, std::span<const Proj> projs, const torch::Tensor& x,
                          const torch::Tensor& input, std::vector<torch::Tensor>& outs) = 0;
};

/// Replaces input embeddings: row r of `values` [N, D] goes to (batch, position) = index[r].
struct EmbedOverride {
  torch::Tensor index;   // [N, 2] int64
  torch::Tensor values;  // [N, D]
};

struct LlmInput {
  torch::Tensor ids;   // [B, T] int64
  torch::Tensor mask = {};  // [B, T] 1 = token, 0 = padding (either side); undefined = no padding
  Adapter* adapter = nullptr;
  const EmbedOverride* embeds = nullptr;
  /// Per-sample input of the adapter, passed to every add_deltas call of this forward pass
  /// (CoRA's W_c [B, D, r], which may require grad); undefined = none.
  torch::Tensor adapter_input = {};
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // computed in fp32, cast back
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const LlamaConfig& c);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  ///< per-head, before RoPE (Qwen3 only)
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const LlamaConfig& c);
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const LlamaConfig& c);
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

class LlamaBodyImpl : public torch::nn::Module {
 public:
  explicit LlamaBodyImpl(const LlamaConfig& c);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaBody);

/// LlamaForCausalLM.
class LlamaImpl : public torch::nn::Module {
 public:
  explicit LlamaImpl(LlamaConfig c);

  /// Final-normed hidden states at `pos` ([B] → [B, D], or [B, K] → [B, K, D]); the final norm
  /// and everything after it run only at those positions.
  torch::Tensor hidden_at(const LlmInput& in, const torch::Tensor& pos);
  /// Hidden states of every position before the final norm [B, T, D].
  torch::Tensor forward_hidden(const LlmInput& in);
  /// Logits [..., V] from final-normed hidden [..., D], or only vocabulary `rows` [..., R].
  torch::Tensor logits(const torch::Tensor& h, const torch::Tensor& rows = {});
  /// Greedy decoding: the `max_new` ids that follow `prompt` (stops early at eos if asked).
  std::vector<int64_t> generate(const std::vector<int64_t>& prompt, int64_t max_new,
                                bool stop_at_eos = false);

  /// Normal(0, 0.02) weights, unit norms (llm.random_init).
  void init_random(uint64_t seed);
  /// Recompute each decoder layer in the backward pass instead of keeping its activations
  /// (dropout masks are replayed from the saved RNG state), so long prompts on a 7B model fit.
  void set_checkpointing(bool on) { checkpointing_ = on; }
  /// One decoder layer: x [B, T, D] → [B, T, D].
  torch::Tensor layer_forward(int64_t l, const torch::Tensor& x, const torch::Tensor& positions,
                              const torch::Tensor& mask, Adapter* adapter,
                              const torch::Tensor& adapter_input);

  /// lm_head shares embed_tokens' storage when tie_word_embeddings.
  void tie_weights();
  /// Freezes every parameter (the LLM never trains).
  void freeze();

  const LlamaConfig& config() const { return cfg_; }
  LlamaBody model{nullptr};
  torch::nn::Linear lm_head{nullptr};

 private:
  std::vector<torch::Tensor> project(int64_t layer, std::span<const Proj> projs,
                                     std::span<const torch::nn::Linear> weights,
                                     const torch::Tensor& x, Adapter* adapter,
                                     const torch::Tensor& adapter_input);
  LlamaConfig cfg_;
  bool checkpointing_ = false;
};
TORCH_MODULE(Llama);

/// Scaled-dot-product attention on [B, H, T, Dh] (q) and [B, H, S, Dh] (k, v) with an additive
/// mask [B or 1, 1, T, S]: libtorch's fused kernel on 2.x, a manual fp32-softmax path on 1.13.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask);
/// The manual path (scores and softmax in fp32), on every libtorch: the reference the fused
/// kernel is tested against.
torch::Tensor attention_manual(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask);

/// Applies HF rotary embeddings (rotate-half) to x [B, H, T, Dh] at positions [B, T].
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta);
/// The same with given inverse frequencies [Dh/2] (fp64).
torch::Tensor apply_rope_freq(const torch::Tensor& x, const torch::Tensor& positions,
                              const torch::Tensor& inv_freq);
/// The config's RoPE inverse frequencies [Dh/2] (fp64) for a sequence of `seq_len` positions:
/// plain, or scaled as rope_scaling says (linear, dynamic NTK, llama3), as Hugging Face computes.
torch::Tensor rope_inv_freq(const LlamaConfig& c, int64_t seq_len);

}  // namespace cora::llm
