// `cora plan`: the per-device memory of a config's training step, from the LLM's config.json and
// the method's shapes alone (no weights are loaded): frozen weights, trained tensors with their
// gradients and AdamW moments, activations per micro-batch (with and without activation
// checkpointing), and the largest micro-batch that fits a memory budget.
#include "cora/app/plan.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/llm/config.h"
#include "cora/llm/model.h"
#include "cora/method/llm_method.h"
#include "cora/method/registry.h"

namespace cora::app {
namespace {
using json = nlohmann::json;

constexpr double kMiB = 1024.0 * 1024.0;

// Activation bytes per sample, token and layer, in units of the activation dtype's size:
// kActD·(D + D_kv) + kActI·I, plus kActAttn·H·T (fp32 attention probabilities, the manual
// path; 0 with a fused flash kernel). Fitted on CPU fp32 peaks of three LLM shapes (see the
// README) and checked on a fourth; the analysis of autograd's saved tensors gives the same
// form with smaller constants (the peak also holds backward temporaries and the allocator's).
constexpr double kActD = 16, kActI = 7, kActAttn = 0.25;
// Process overhead beside the tensors: libtorch, OpenBLAS buffers, the data (CPU, measured);
// CUDA context and kernels (CUDA, typical).
constexpr double kOverheadCpuMiB = 210, kOverheadCudaMiB = 600;

int64_t out_dim(llm::Proj p, const llm::LlamaConfig& c) {
  const int64_t dh = c.head_dim();
  switch (p) {
    case llm::Proj::q: return c.q_width();
    case llm::Proj::k:
    case llm::Proj::v: return c.num_key_value_heads * dh;
    case llm::Proj::gate:
    case llm::Proj::up: return c.intermediate_size;
    default: return c.hidden_size;  // o, down
  }
}
int64_t in_dim(llm::Proj p, const llm::LlamaConfig& c) {
  if (p == llm::Proj::o) return c.q_width();
  if (p == llm::Proj::down) return c.intermediate_size;
  return c.hidden_size;
}

}  // namespace

int64_t llm_parameters(const llm::LlamaConfig& c) {
  const int64_t D = c.hidden_size, I = c.intermediate_size, dh = c.head_dim(), Dq = c.q_width(),
                Dkv = c.num_key_value_heads * dh;
  const int64_t attn = D * Dq * 2 + D * Dkv * 2 + (c.qkv_bias ? Dq + 2 * Dkv : 0) + (c.o_bias ? D : 0) +
                       (c.qk_norm ? 2 * dh : 0);
  const int64_t layer = attn + 3 * D * I + 2 * D;
  return c.vocab_size * D * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * layer + D;
}

int64_t trained_parameters(const config::Config& cfg, const llm::LlamaConfig& c) {
  const int64_t D = c.hidden_size, L = c.num_hidden_layers;
  if (cfg.method == "cora") {
    const int64_t E = 2 * cfg.cf.dim, H = cfg.cora.hidden > 0 ? cfg.cora.hidden : E, I = cfg.cora.intermediate;
    const int64_t layer = 4 * (H * H + H) + 2 * H            // self-attention + norm
                          + (H * H + H) + 2 * (E * H + H) + (H * H + H) + 2 * H  // cross-attention + norm
                          + (H * I + I) + (I * H + H) + 2 * H;                  // FFN + norm
    int64_t n = cfg.cora.n_queries * H + 2 * H + cfg.cora.layers * layer + H * D * cfg.cora.rank + D * cfg.cora.rank;
    for (auto p : method::targets_of(cfg.cora.targets, "cora.targets")) n += L * out_dim(p, c) * cfg.cora.rank;
    return n;
  }
  if (cfg.method == "tallrec") {
    int64_t n = 0;
    for (auto p : method::targets_of(cfg.lora.targets, "lora.targets"))
      n += L * (in_dim(p, c) + out_dim(p, c)) * cfg.lora.rank;
    return n;
  }
  if (cfg.method == "collm") {
    const int64_t h = cfg.collm.hidden > 0 ? cfg.collm.hidden : 10 * cfg.cf.dim;
    return cfg.cf.dim * h + h + h * D + D;
  }
  return 0;  // icl
}

MemoryPlan plan_memory(const config::Config& cfg, const PlanOptions& o) {
  const auto& info = method::find_method(cfg.method);
  if (info.kind != method::Kind::llm)
    throw Error::key("method", "`cora plan` plans the LLM methods (icl, tallrec, collm, cora); '" + cfg.method +
                                   "' is a " + (info.kind == method::Kind::cf ? "CF model" : "pretraining") + " config");
  const std::string cj = cfg.llm.dir + "/config.json";
  if (!io::exists(cj)) throw Error::key("llm.dir", cj + " does not exist (the plan reads the LLM's shape)");
  const llm::LlamaConfig c = llm::load_config(cj);
  MemoryPlan p;
  p.device = o.device;
  const bool cuda = o.device == "cuda";
  p.llm_dtype = cuda ? "bf16" : "fp32";
  const double s = cuda ? 2 : 4;  // LLM weights and activations
  p.tokens = o.tokens;
  p.llm_params = llm_parameters(c);
  p.trained_params = trained_parameters(cfg, c);
  p.frozen_mib = p.llm_params * s / kMiB;
  p.trained_mib = p.trained_params * 4.0 / kMiB;  // fp32 master weights
  p.grads_mib = p.trained_mib;
  p.adam_mib = 2 * p.trained_mib;
  p.overhead_mib = cuda ? kOverheadCudaMiB : kOverheadCpuMiB;
  const double T = o.tokens, D = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads,
               L = c.num_hidden_layers, Dkv = c.num_key_value_heads * (D / H);
  const double attn = cuda ? 0.0 : kActAttn * H * T * 4;  // fused flash attention keeps no probabilities
  const double per_layer = T * (kActD * (D + Dkv) + kActI * I) * s + attn * T;
  const bool trains = p.trained_params > 0;
  p.act_per_sample_mib = trains ? L * per_layer / kMiB : 0;
  // Checkpointing keeps each layer's input and recomputes one layer at a time in the backward.
  p.act_per_sample_ckpt_mib = trains ? (L * T * D * s + per_layer) / kMiB : 0;
  p.micro_batch = cfg.train.micro_batch_size > 0 ? cfg.train.micro_batch_size : cfg.train.batch_size;
  p.checkpointing = cfg.llm.checkpointing;
  const double fixed = p.frozen_mib + p.trained_mib + p.grads_mib + p.adam_mib + p.overhead_mib;
  auto fits = [&](double per) {
    if (o.memory_gb <= 0 || per <= 0) return int64_t(-1);
    return static_cast<int64_t>((o.memory_gb * 1024.0 - fixed) / per);
  };
  p.memory_gb = o.memory_gb;
  p.max_micro_batch = fits(p.act_per_sample_mib);
  p.max_micro_batch_ckpt = fits(p.act_per_sample_ckpt_mib);
  p.peak_mib = fixed + p.micro_batch * (p.checkpointing ? p.act_per_sample_ckpt_mib : p.act_per_sample_mib);
  return p;
}

int plan(const PlanArgs& a) {
  config::Config cfg = config::load(a.config, a.overrides);
  PlanOptions o{a.device, a.tokens, a.memory_gb};
  if (o.device == "auto") o.device = resolve_device("auto");
  auto p = plan_memory(cfg, o);
  json j = {{"method", cfg.method}, {"device", p.device}, {"llm_dtype", p.llm_dtype}, {"tokens", p.tokens},
            {"llm_params", p.llm_params}, {"trained_params", p.trained_params},
            {"frozen_mib", p.frozen_mib}, {"trained_mib", p.trained_mib}, {"grads_mib", p.grads_mib},
            {"adam_mib", p.adam_mib}, {"overhead_mib", p.overhead_mib},
            {"activations_per_sample_mib", p.act_per_sample_mib},
            {"activations_per_sample_checkpointed_mib", p.act_per_sample_ckpt_mib},
            {"micro_batch", p.micro_batch}, {"checkpointing", p.checkpointing}, {"peak_mib", p.peak_mib}};
  if (a.memory_gb > 0) {
    j["memory_gb"] = a.memory_gb;
    j["max_micro_batch"] = p.max_micro_batch;
    j["max_micro_batch_checkpointed"] = p.max_micro_batch_ckpt;
  }
  if (a.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  auto gib = [](double mib) { return mib / 1024.0; };
  std::printf("memory plan: %s on %s (LLM %s, %lld-token prompts), per device\n", cfg.method.c_str(),
              p.device.c_str(), p.llm_dtype.c_str(), static_cast<long long>(p.tokens));
  std::printf("  frozen LLM weights       %8.2f GiB  (%.2f B parameters, %s)\n", gib(p.frozen_mib),
              p.llm_params / 1e9, p.llm_dtype.c_str());
  std::printf("  trained tensors (fp32)   %8.2f GiB  (%.1f M parameters)\n", gib(p.trained_mib), p.trained_params / 1e6);
  std::printf("  gradients (fp32)         %8.2f GiB\n", gib(p.grads_mib));
  std::printf("  AdamW moments (fp32)     %8.2f GiB\n", gib(p.adam_mib));
  std::printf("  runtime overhead         %8.2f GiB\n", gib(p.overhead_mib));
  std::printf("  activations per sample   %8.3f GiB  (%.3f GiB with llm.checkpointing)\n",
              gib(p.act_per_sample_mib), gib(p.act_per_sample_ckpt_mib));
  std::printf("  this config: micro-batch %lld%s -> peak %.2f GiB\n", static_cast<long long>(p.micro_batch),
              p.checkpointing ? " (checkpointing)" : "", gib(p.peak_mib));
  if (a.memory_gb > 0)
    std::printf("  largest micro-batch in %.0f GB: %lld (%lld with llm.checkpointing)\n", a.memory_gb,
                static_cast<long long>(p.max_micro_batch), static_cast<long long>(p.max_micro_batch_ckpt));
  return 0;
}

}  // namespace cora::app
