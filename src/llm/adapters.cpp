// Per-sample (CoRA) and shared (LoRA) low-rank deltas at the projection choke point.
#include "cora/llm/adapters.h"

#include <cmath>

#include "cora/core/dropout.h"
#include "cora/core/error.h"

namespace cora::llm {
namespace {

constexpr int kProjCount = 7;

int64_t in_width(const LlamaConfig& c, Proj p) {
  return p == Proj::down ? c.intermediate_size : p == Proj::o ? c.q_width() : c.hidden_size;
}
int64_t out_width(const LlamaConfig& c, Proj p) {
  switch (p) {
    case Proj::k:
    case Proj::v: return c.num_key_value_heads * c.head_dim();
    case Proj::gate:
    case Proj::up: return c.intermediate_size;
    case Proj::q: return c.q_width();
    default: return c.hidden_size;
  }
}
// Registers layers.<l>.<proj>.<which> (libtorch names cannot contain dots, so nest modules).
torch::Tensor add_param(torch::nn::Module& root, int64_t layer, Proj p, const char* which,
                        torch::Tensor value) {
  auto layers = root.named_children().contains("layers")
                    ? root.named_children()["layers"]
                    : root.register_module("layers", std::make_shared<torch::nn::Module>());
  std::string l = std::to_string(layer);
  auto lm = layers->named_children().contains(l)
                ? layers->named_children()[l]
                : layers->register_module(l, std::make_shared<torch::nn::Module>());
  auto pm = lm->named_children().contains(proj_name(p))
                ? lm->named_children()[proj_name(p)]
                : lm->register_module(proj_name(p), std::make_shared<torch::nn::Module>());
  return pm->register_parameter(which, std::move(value));
}

}  // namespace

std::vector<Proj> parse_targets(const std::vector<std::string>& names, const std::string& key) {
  std::vector<Proj> out;
  for (const auto& n : names) {
    bool found = false;
    for (int i = 0; i < kProjCount; ++i) {
      std::string full = proj_name(static_cast<Proj>(i));
      if (n == full || n + "_proj" == full) {
        out.push_back(static_cast<Proj>(i));
        found = true;
      }
    }
    if (!found)
      throw Error::key(key, "unknown projection '" + n +
                                "' (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, "
                                "down_proj)");
  }
  if (out.empty()) throw Error::key(key, "needs at least one projection");
  return out;
}

PerSampleLowRankImpl::PerSampleLowRankImpl(const LlamaConfig& c, LowRankOptions o)
    : opt_(std::move(o)), targets_(opt_.targets.begin(), opt_.targets.end()) {
  for (Proj p : targets_)
    if (in_width(c, p) != c.hidden_size)
      throw Error::key("cora.targets", std::string(proj_name(p)) + " reads a width of " +
                                           std::to_string(in_width(c, p)) + ", but W_c is d_model (" +
                                           std::to_string(c.hidden_size) + ") × r (hint: target " +
                                           (p == Proj::o ? "q, k, v, gate, up" : "q, k, v, o, gate, up") + ")");
  b_.assign(c.num_hidden_layers, std::vector<torch::Tensor>(kProjCount));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (Proj p : targets_)
      b_[l][static_cast<int>(p)] =
          add_param(*this, l, p, "lora_B", torch::zeros({out_width(c, p), opt_.rank}));
}

void PerSampleLowRankImpl::add_deltas(int64_t layer, std::span<const Proj> projs,
                                      const torch::Tensor& x, const torch::Tensor& wc,
                                      std::vector<torch::Tensor>& outs) {
  torch::Tensor h;  // drop(x)·W_c [B, T, r], once for all projections reading x
  const double scale = opt_.alpha / static_cast<double>(opt_.rank);
  for (size_t i = 0; i < projs.size(); ++i) {
    const auto& b = b_[layer][static_cast<int>(projs[i])];
    if (!b.defined()) continue;
    if (!h.defined()) {
      TORCH_CHECK(wc.defined(), "PerSampleLowRank: the forward pass needs W_c as adapter_input");
      TORCH_CHECK(wc.dim() == 3 && wc.size(0) == x.size(0) && wc.size(1) == x.size(2) &&
                      wc.size(2) == opt_.rank,
                  "W_c must be [B, D, r] = [", x.size(0), ", ", x.size(2), ", ", opt_.rank,
                  "], got ", wc.sizes());
      h = torch::bmm(cora::dropout(x, opt_.dropout, is_training()), wc.to(x.scalar_type()));
    }
    outs[i] = outs[i] + scale * torch::matmul(h, b.to(x.scalar_type()).t());  // [B, T, out]
  }
}

SharedLowRankImpl::SharedLowRankImpl(const LlamaConfig& c, LowRankOptions o) : opt_(std::move(o)) {
  a_.assign(c.num_hidden_layers, std::vector<torch::Tensor>(kProjCount));
  b_ = a_;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (Proj p : opt_.targets) {
      auto a = torch::empty({opt_.rank, in_width(c, p)});
      torch::nn::init::kaiming_uniform_(a, std::sqrt(5.0));  // PEFT's LoRA A init
      a_[l][static_cast<int>(p)] = add_param(*this, l, p, "lora_A", a);
      b_[l][static_cast<int>(p)] =
          add_param(*this, l, p, "lora_B", torch::zeros({out_width(c, p), opt_.rank}));
    }
}

void SharedLowRankImpl::add_deltas(int64_t layer, std::span<const Proj> projs,
                                   const torch::Tensor& x, const torch::Tensor&,
                                   std::vector<torch::Tensor>& outs) {
  const double scale = opt_.alpha / static_cast<double>(opt_.rank);
  for (size_t i = 0; i < projs.size(); ++i) {
    const auto& a = a_[layer][static_cast<int>(projs[i])];
    if (!a.defined()) continue;
    const auto& b = b_[layer][static_cast<int>(projs[i])];
    auto h = torch::matmul(cora::dropout(x, opt_.dropout, is_training()), a.to(x.scalar_type()).t());
    outs[i] = outs[i] + scale * torch::matmul(h, b.to(x.scalar_type()).t());  // [B, T, out]
  }
}

}  // namespace cora::llm
