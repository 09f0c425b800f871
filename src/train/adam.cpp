// Adam/AdamW: one fused pass over (param, grad, m, v) per parameter on CPU fp32.
#include "cora/train/adam.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "cora/core/error.h"

namespace cora::train {

Adam::Adam(std::vector<torch::Tensor> params, AdamOptions opt, std::vector<bool> decay)
    : params_(std::move(params)), decay_(std::move(decay)), opt_(opt) {
  if (decay_.empty()) decay_.assign(params_.size(), true);
  TORCH_CHECK(decay_.size() == params_.size(), "Adam: decay mask size mismatch");
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    v_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
  }
}

void Adam::zero_grad() {
  for (auto& p : params_)
    if (p.mutable_grad().defined()) p.mutable_grad().zero_();
}

void Adam::step(double lr) {
  torch::NoGradGuard ng;
  ++steps_;
  const double b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(steps_)));
  const double step_size = lr / bc1;
  for (size_t k = 0; k < params_.size(); ++k) {
    auto& p = params_[k];
    const auto& g_ref = p.grad();
    if (!g_ref.defined()) continue;
    const double wd = decay_[k] ? opt_.weight_decay : 0.0;
    const bool fused = p.device().is_cpu() && p.scalar_type() == torch::kFloat32 &&
                       p.is_contiguous() && g_ref.is_contiguous() && !g_ref.is_sparse();
    if (fused) {
      float* pp = p.data_ptr<float>();
      const float* gp = g_ref.data_ptr<float>();
      float* mp = m_[k].data_ptr<float>();
      float* vp = v_[k].data_ptr<float>();
      const float fb1 = b1, fb2 = b2, fl2 = opt_.decoupled ? 0.f : wd,
                  fdecay = opt_.decoupled ? 1.0 - lr * wd : 1.0, fbc2 = bc2_sqrt, feps = eps,
                  fstep = step_size;
      at::parallel_for(0, p.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          float g = gp[i] + fl2 * pp[i];
          float m = mp[i] = fb1 * mp[i] + (1.f - fb1) * g;
          float v = vp[i] = fb2 * vp[i] + (1.f - fb2) * g * g;
          pp[i] = pp[i] * fdecay - fstep * m / (std::sqrt(v) / fbc2 + feps);
        }
      });
    } else {
      auto g = g_ref.is_sparse() ? g_ref.to_dense() : g_ref;
      if (!opt_.decoupled && wd != 0) g = g + wd * p;
      if (opt_.decoupled && wd != 0) p.mul_(1.0 - lr * wd);
      m_[k].mul_(b1).add_(g, 1.0 - b1);
      v_[k].mul_(b2).addcmul_(g, g, 1.0 - b2);
      auto denom = (v_[k].sqrt() / bc2_sqrt).add_(eps);
      p.addcdiv_(m_[k], denom, -step_size);
    }
  }
}

std::vector<std::pair<std::string, torch::Tensor>> Adam::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> s;
  s.emplace_back("steps", torch::tensor({steps_}, torch::kInt64));
  for (size_t k = 0; k < params_.size(); ++k) {
    s.emplace_back("m." + std::to_string(k), m_[k]);
    s.emplace_back("v." + std::to_string(k), v_[k]);
  }
  return s;
}

void Adam::load_state(const std::map<std::string, torch::Tensor>& s) {
  auto get = [&](const std::string& name) -> const torch::Tensor& {
    auto it = s.find(name);
    if (it == s.end()) throw Error("optimizer state: tensor '" + name + "' is missing");
    return it->second;
  };
  steps_ = get("steps").item<int64_t>();
  torch::NoGradGuard ng;
  for (size_t k = 0; k < params_.size(); ++k) {
    for (auto [vec, prefix] : {std::pair{&m_, "m."}, {&v_, "v."}}) {
      const auto& t = get(prefix + std::to_string(k));
      if (!t.sizes().equals((*vec)[k].sizes()))
        throw Error("optimizer state: '" + std::string(prefix) + std::to_string(k) +
                    "' has the wrong shape (hint: the checkpoint belongs to another model)");
      (*vec)[k].copy_(t);
    }
  }
}

}  // namespace cora::train
