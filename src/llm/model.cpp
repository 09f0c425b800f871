// The LLaMA forward pass, top to bottom. Shapes: B batch, T tokens, D hidden, H query heads,
// Hkv key/value heads, Dh head dim, F intermediate, V vocabulary.
#include "cora/llm/model.h"

#include <torch/version.h>

#include <cmath>
#include <functional>
#include <limits>

#include "cora/core/dropout.h"
#include "cora/core/error.h"

namespace cora::llm {
namespace nn = torch::nn;

const char* proj_name(Proj p) {
  static const char* names[] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                "gate_proj", "up_proj", "down_proj"};
  return names[static_cast<int>(p)];
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto xf = x.to(torch::kFloat32);
  auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * y.to(x.scalar_type());
}

namespace {
nn::Linear linear(int64_t in, int64_t out, bool bias = false) {
  return nn::Linear(nn::LinearOptions(in, out).bias(bias));
}
}  // namespace

AttentionImpl::AttentionImpl(const LlamaConfig& c) {
  const int64_t D = c.hidden_size, Dq = c.q_width(), Dkv = c.num_key_value_heads * c.head_dim();
  q_proj = register_module("q_proj", linear(D, Dq, c.qkv_bias));
  k_proj = register_module("k_proj", linear(D, Dkv, c.qkv_bias));
  v_proj = register_module("v_proj", linear(D, Dkv, c.qkv_bias));
  o_proj = register_module("o_proj", linear(Dq, D, c.o_bias));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(c.head_dim(), c.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(c.head_dim(), c.rms_norm_eps));
  }
}

MlpImpl::MlpImpl(const LlamaConfig& c) {
  gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size));
  up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size));
  down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size));
}

DecoderLayerImpl::DecoderLayerImpl(const LlamaConfig& c) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", Mlp(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

LlamaBodyImpl::LlamaBodyImpl(const LlamaConfig& c) {
  embed_tokens = register_module("embed_tokens", nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) layers->push_back(DecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

LlamaImpl::LlamaImpl(LlamaConfig c) : cfg_(std::move(c)) {
  model = register_module("model", LlamaBody(cfg_));
  lm_head = register_module("lm_head", linear(cfg_.hidden_size, cfg_.vocab_size));
  tie_weights();
}

void LlamaImpl::tie_weights() {
  // Shared storage, as HF ties them; lm_head.weight is then absent from checkpoints.
  if (cfg_.tie_word_embeddings) lm_head->weight.set_data(model->embed_tokens->weight);
}

void LlamaImpl::init_random(uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : named_parameters()) {
    if (p.key().find("norm") != std::string::npos)
      p.value().fill_(1.0);
    else
      p.value().copy_(at::normal(0.0, 0.02, p.value().sizes(), gen).to(p.value().options()));
  }
  tie_weights();
}

void LlamaImpl::freeze() {
  for (auto& p : parameters()) p.set_requires_grad(false);
}

torch::Tensor rope_inv_freq(const LlamaConfig& c, int64_t seq_len) {
  const int64_t Dh = c.head_dim();
  double theta = c.rope_theta;
  if (c.rope_type == "dynamic" && seq_len > c.rope_original_max_positions) {  // NTK-aware base
    const double f = c.rope_factor, ratio = static_cast<double>(seq_len) / c.rope_original_max_positions;
    theta *= std::pow(f * ratio - (f - 1), static_cast<double>(Dh) / (Dh - 2));
  }
  auto inv = 1.0 / torch::pow(theta, torch::arange(0, Dh, 2, torch::kFloat64) / Dh);  // [Dh/2]
  if (c.rope_type == "linear") return inv / c.rope_factor;
  if (c.rope_type == "llama3") {
    const double old_len = static_cast<double>(c.rope_original_max_positions);
    const double low_wavelen = old_len / c.rope_low_freq_factor, high_wavelen = old_len / c.rope_high_freq_factor;
    auto wavelen = 2 * M_PI / inv;
    auto scaled = torch::where(wavelen > low_wavelen, inv / c.rope_factor, inv);
    auto smooth = (old_len / wavelen - c.rope_low_freq_factor) /
                  (c.rope_high_freq_factor - c.rope_low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / c.rope_factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
    return torch::where(medium, smoothed, scaled);
  }
  return inv;
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta) {
  const int64_t Dh = x.size(-1);
  return apply_rope_freq(x, positions, 1.0 / torch::pow(theta, torch::arange(0, Dh, 2, torch::kFloat64) / Dh));
}

torch::Tensor apply_rope_freq(const torch::Tensor& x, const torch::Tensor& positions,
                              const torch::Tensor& inv_freq) {
  const int64_t Dh = x.size(-1);
  auto freqs = positions.to(torch::kFloat64).unsqueeze(-1) * inv_freq.to(x.device());   // [B, T, Dh/2]
  auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);                               // [B, 1, T, Dh]
  auto cos = emb.cos().to(x.scalar_type()), sin = emb.sin().to(x.scalar_type());
  auto x1 = x.narrow(-1, 0, Dh / 2), x2 = x.narrow(-1, Dh / 2, Dh / 2);
  auto rotated = torch::cat({-x2, x1}, -1);  // rotate_half
  return x * cos + rotated * sin;
}

torch::Tensor attention_manual(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat32) * scale;  // [B, H, T, S]
  if (mask.defined()) scores = scores + mask.to(torch::kFloat32);
  return torch::matmul(scores.softmax(-1).to(v.scalar_type()), v);                   // [B, H, T, Dh]
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, mask);
#else
  return attention_manual(q, k, v, mask);
#endif
}

std::vector<torch::Tensor> LlamaImpl::project(int64_t layer, std::span<const Proj> projs,
                                              std::span<const nn::Linear> weights,
                                              const torch::Tensor& x, Adapter* adapter,
                                              const torch::Tensor& adapter_input) {
  // The choke point: frozen W0·x for every projection, then the adapter's deltas.
  std::vector<torch::Tensor> outs;
  outs.reserve(projs.size());
  for (const auto& w : weights) outs.push_back(torch::nn::functional::linear(x, w->weight, w->bias));
  if (adapter) adapter->add_deltas(layer, projs, x, adapter_input, outs);
  return outs;
}

namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// A zero-size tensor that requires grad, so a checkpointed layer's output requires grad even
// when nothing else does (a LoRA whose only trained tensors are parameters of the layer).
torch::Tensor kGradAnchor() { return torch::zeros({0}, torch::requires_grad()); }

at::Generator rng_of(const torch::Device& d) { return at::globalContext().defaultGenerator(d); }

// How to run one decoder layer again: the layer and adapter it ran with, and the dropout
// state it started from. Held by the autograd node (an IValue capsule) until backward.
struct LayerReplay : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& ext)> run;
  DropoutState dropout;
};

// Reentrant activation checkpointing of one decoder layer: the forward pass runs without a
// graph; the backward pass replays it (same RNG and dropout state, hence the same masks) with a
// graph and back-propagates. Parameter gradients accumulate directly into .grad; the adapter
// input `ext` (CoRA's W_c) gets its gradient returned like x's.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor ext,
                               torch::Tensor anchor, c10::intrusive_ptr<LayerReplay> replay) {
    ctx->save_for_backward({x, ext});
    replay->dropout = dropout_state();
    ctx->saved_data["cpu_rng"] = rng_of(torch::kCPU).get_state();
    if (x.is_cuda()) ctx->saved_data["dev_rng"] = rng_of(x.device()).get_state();
    auto y = replay->run(x, ext.numel() > 0 ? ext : torch::Tensor());
    ctx->saved_data["replay"] = c10::IValue::make_capsule(std::move(replay));
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0].detach().requires_grad_(saved[0].requires_grad());
    const bool has_ext = saved[1].defined() && saved[1].numel() > 0;
    torch::Tensor ext = has_ext ? saved[1].detach().requires_grad_(true) : torch::Tensor();
    auto replay = c10::static_intrusive_pointer_cast<LayerReplay>(ctx->saved_data["replay"].toCapsule());
    auto cpu = rng_of(torch::kCPU);
    auto cpu_now = cpu.get_state();
    cpu.set_state(ctx->saved_data["cpu_rng"].toTensor());
    torch::Tensor dev_now;
    if (x.is_cuda()) {
      dev_now = rng_of(x.device()).get_state();
      rng_of(x.device()).set_state(ctx->saved_data["dev_rng"].toTensor());
    }
    torch::Tensor y;
    {
      ScopedDropoutState masks(replay->dropout);  // backward may run on another thread
      torch::AutoGradMode grad(true);
      y = replay->run(x, ext);
    }
    cpu.set_state(cpu_now);
    if (x.is_cuda()) rng_of(x.device()).set_state(dev_now);
    if (y.requires_grad()) torch::autograd::backward({y}, {grads[0]});
    return {x.requires_grad() ? x.grad() : torch::Tensor(), has_ext ? ext.grad() : torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor LlamaImpl::forward_hidden(const LlmInput& in) {
  TORCH_CHECK(in.ids.dim() == 2, "ids must be [B, T]");
  const int64_t B = in.ids.size(0), T = in.ids.size(1);
  auto x = model->embed_tokens(in.ids);  // [B, T, D]
  if (in.embeds) {
    TORCH_CHECK(in.embeds->index.dim() == 2 && in.embeds->index.size(1) == 2,
                "embedding override index must be [N, 2]");
    auto flat = in.embeds->index.select(1, 0) * T + in.embeds->index.select(1, 1);  // [N]
    x = x.reshape({B * T, -1}).index_copy(0, flat, in.embeds->values.to(x.scalar_type()))
            .reshape({B, T, -1});
  }
  // Positions count real tokens (HF: cumsum(mask) - 1), so left padding keeps RoPE aligned.
  torch::Tensor positions, mask;
  auto opts = torch::TensorOptions().device(x.device());
  auto causal = torch::ones({T, T}, opts.dtype(torch::kBool)).tril();  // [T, T]
  if (in.mask.defined()) {
    auto m = in.mask.to(torch::kInt64);
    positions = (m.cumsum(-1) - 1).clamp_min(0);                                // [B, T]
    auto allowed = causal.unsqueeze(0) & m.to(torch::kBool).unsqueeze(1);        // [B, T, T]
    // A padded query row sees only itself, so its softmax stays finite (its output is unused).
    allowed = allowed | torch::eye(T, opts.dtype(torch::kBool)).unsqueeze(0);
    mask = torch::zeros({B, 1, T, T}, opts.dtype(x.scalar_type()))
               .masked_fill(allowed.logical_not().unsqueeze(1),
                            -std::numeric_limits<float>::infinity());
  } else {
    positions = torch::arange(T, opts.dtype(torch::kInt64)).unsqueeze(0).expand({B, T});
    mask = torch::zeros({1, 1, T, T}, opts.dtype(x.scalar_type()))
               .masked_fill(causal.logical_not(), -std::numeric_limits<float>::infinity());
  }
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    if (checkpointing_ && torch::GradMode::is_enabled()) {
      auto replay = c10::make_intrusive<LayerReplay>();
      replay->run = [this, l, positions, mask, adapter = in.adapter](const torch::Tensor& xi,
                                                                     const torch::Tensor& ext) {
        return layer_forward(l, xi, positions, mask, adapter, ext);
      };
      const auto& ext = in.adapter_input;
      x = CheckpointedLayer::apply(x, ext.defined() ? ext : torch::zeros({0}), kGradAnchor(),
                                   std::move(replay));
    } else {
      x = layer_forward(l, x, positions, mask, in.adapter, in.adapter_input);
    }
  }
  return x;
}

torch::Tensor LlamaImpl::layer_forward(int64_t l, const torch::Tensor& x_in,
                                       const torch::Tensor& positions, const torch::Tensor& mask,
                                       Adapter* adapter, const torch::Tensor& ai) {
  static constexpr Proj kQkv[] = {Proj::q, Proj::k, Proj::v}, kO[] = {Proj::o},
                        kGateUp[] = {Proj::gate, Proj::up}, kDown[] = {Proj::down};
  const int64_t B = x_in.size(0), T = x_in.size(1), H = cfg_.num_attention_heads,
                Hkv = cfg_.num_key_value_heads, Dh = cfg_.head_dim(), rep = H / Hkv;
  auto x = x_in;
  auto& layer = *model->layers[l]->as<DecoderLayerImpl>();
  auto& at = *layer.self_attn;
  auto h = layer.input_layernorm(x);                                                    // [B, T, D]
  std::array<nn::Linear, 3> qkv_w{at.q_proj, at.k_proj, at.v_proj};
  auto qkv = project(l, kQkv, qkv_w, h, adapter, ai);
  auto q = qkv[0].view({B, T, H, Dh}), k = qkv[1].view({B, T, Hkv, Dh});
  if (cfg_.qk_norm) q = at.q_norm(q), k = at.k_norm(k);  // Qwen3: per head, before RoPE
  q = q.transpose(1, 2);                                                                // [B, H, T, Dh]
  k = k.transpose(1, 2);                                                                // [B, Hkv, T, Dh]
  auto v = qkv[2].view({B, T, Hkv, Dh}).transpose(1, 2);
  // Dynamic NTK scaling depends on the longest position HF would see: the padded length.
  const auto inv_freq = rope_inv_freq(cfg_, T);
  q = apply_rope_freq(q, positions, inv_freq);
  k = apply_rope_freq(k, positions, inv_freq);
  if (rep > 1) {  // GQA: query head j reads key/value head j / rep
    k = k.unsqueeze(2).expand({B, Hkv, rep, T, Dh}).reshape({B, H, T, Dh});
    v = v.unsqueeze(2).expand({B, Hkv, rep, T, Dh}).reshape({B, H, T, Dh});
  }
  auto a = attention(q, k, v, mask).transpose(1, 2).reshape({B, T, H * Dh});            // [B, T, D]
  std::array<nn::Linear, 1> o_w{at.o_proj};
  x = x + project(l, kO, o_w, a, adapter, ai)[0];
  auto h2 = layer.post_attention_layernorm(x);
  std::array<nn::Linear, 2> gu_w{layer.mlp->gate_proj, layer.mlp->up_proj};
  auto gu = project(l, kGateUp, gu_w, h2, adapter, ai);                                     // 2 × [B, T, F]
  auto m = torch::silu(gu[0]) * gu[1];                                                  // SwiGLU
  std::array<nn::Linear, 1> d_w{layer.mlp->down_proj};
  return x + project(l, kDown, d_w, m, adapter, ai)[0];
}

torch::Tensor LlamaImpl::hidden_at(const LlmInput& in, const torch::Tensor& pos) {
  auto x = forward_hidden(in);  // [B, T, D]
  const int64_t B = x.size(0);
  auto p = pos.to(torch::kInt64).to(x.device());
  auto flat = p.dim() == 1 ? p.unsqueeze(1) : p;  // [B, K]
  auto rows = torch::arange(B, flat.options()).unsqueeze(1).expand_as(flat);
  auto h = x.index({rows, flat});  // [B, K, D]
  h = model->norm(h);
  return p.dim() == 1 ? h.squeeze(1) : h;
}

torch::Tensor LlamaImpl::logits(const torch::Tensor& h, const torch::Tensor& rows) {
  if (!rows.defined()) return torch::nn::functional::linear(h, lm_head->weight);
  return torch::nn::functional::linear(h, lm_head->weight.index_select(0, rows.to(h.device())));
}

std::vector<int64_t> LlamaImpl::generate(const std::vector<int64_t>& prompt, int64_t max_new,
                                         bool stop_at_eos) {
  TORCH_CHECK(!prompt.empty(), "generate needs at least one prompt token");
  torch::NoGradGuard ng;
  eval();
  auto device = lm_head->weight.device();
  std::vector<int64_t> seq = prompt, out;
  for (int64_t s = 0; s < max_new; ++s) {
    if (static_cast<int64_t>(seq.size()) > cfg_.max_position_embeddings)
      throw Error("generate: sequence longer than max_position_embeddings (" +
                  std::to_string(cfg_.max_position_embeddings) + ")");
    auto ids = torch::tensor(seq, torch::kInt64).unsqueeze(0).to(device);  // [1, T]
    auto h = hidden_at({ids}, torch::tensor({static_cast<int64_t>(seq.size()) - 1}));
    int64_t next = logits(h).argmax(-1).item<int64_t>();
    out.push_back(next);
    seq.push_back(next);
    if (stop_at_eos && next == cfg_.eos_token_id) break;
  }
  return out;
}

}  // namespace cora::llm
