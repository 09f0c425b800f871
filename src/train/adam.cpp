// Adam/AdamW: one fused pass over (param, grad, m, v) per parameter on CPU fp32.
#include "cora/train/adam.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "cora/core/error.h"
#include "core/kernels.h"

namespace cora::train {

Adam::Adam(std::vector<torch::Tensor> params, AdamOptions opt, std::vector<bool> decay)
    : params_(std::move(params)), decay_(std::move(decay)), opt_(opt) {
  if (decay_.empty()) decay_.assign(params_.size(), true);
  TORCH_CHECK(decay_.size() == params_.size(), "Adam: decay mask size mismatch");
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    v_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
  }
  slots_.resize(params_.size());
  compact_.resize(params_.size());
}

void Adam::zero_grad() {
  for (auto& p : params_) {
    auto& g = p.mutable_grad();
    if (!g.defined()) continue;
    if (g.is_sparse())
      g.reset();  // a fresh sparse gradient arrives with the next backward
    else
      g.zero_();
  }
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
                       p.is_contiguous() && (g_ref.is_sparse() || g_ref.is_contiguous());
    if (fused) {
      kernels::AdamScalars sc{static_cast<float>(b1), static_cast<float>(b2),
                              static_cast<float>(eps), static_cast<float>(opt_.decoupled ? 0.0 : wd),
                              static_cast<float>(opt_.decoupled ? 1.0 - lr * wd : 1.0),
                              static_cast<float>(step_size), static_cast<float>(bc2_sqrt)};
      float* pp = p.data_ptr<float>();
      float* mp = m_[k].data_ptr<float>();
      float* vp = v_[k].data_ptr<float>();
      if (g_ref.is_sparse()) {
        sparse_step(k, g_ref, sc);
      } else {
        const float* gp = g_ref.data_ptr<float>();
        at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
          kernels::adam_update(pp, gp, mp, vp, begin, end, sc);
        });
      }
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

// Row-sparse gradient (embedding rows): coalesce duplicate rows into a compact buffer, then one
// pass over every row — weight decay still reaches rows without a gradient, as in torch.
void Adam::sparse_step(size_t k, const torch::Tensor& grad, const kernels::AdamScalars& sc) {
  auto& p = params_[k];
  TORCH_CHECK(p.dim() == 2 && grad.sparse_dim() == 1, "Adam: sparse gradients must be row-sparse");
  const int64_t rows = p.size(0), d = p.size(1);
  auto idx = grad._indices().select(0, 0).contiguous();
  auto vals = grad._values().contiguous();  // [nnz, d]
  const int64_t nnz = idx.numel();
  auto& slot = slots_[k];
  if (static_cast<int64_t>(slot.size()) != rows) slot.assign(rows, -1);
  if (!compact_[k].defined() || compact_[k].size(0) < nnz) compact_[k] = torch::empty({nnz, d});
  const int64_t* ip = idx.data_ptr<int64_t>();
  const float* vp = vals.data_ptr<float>();
  float* cp = compact_[k].data_ptr<float>();
  int32_t n_unique = 0;
  for (int64_t b = 0; b < nnz; ++b) {
    const int64_t r = ip[b];
    TORCH_CHECK(r >= 0 && r < rows, "Adam: sparse gradient row out of range");
    float* dst;
    if (slot[r] < 0) {
      slot[r] = n_unique++;
      dst = cp + static_cast<int64_t>(slot[r]) * d;
      std::copy(vp + b * d, vp + (b + 1) * d, dst);
    } else {
      dst = cp + static_cast<int64_t>(slot[r]) * d;
      for (int64_t j = 0; j < d; ++j) dst[j] += vp[b * d + j];
    }
  }
  float* pp = p.data_ptr<float>();
  float* mp = m_[k].data_ptr<float>();
  float* vp2 = v_[k].data_ptr<float>();
  at::parallel_for(0, rows, std::max<int64_t>(1, (1 << 15) / d), [&](int64_t r0, int64_t r1) {
    kernels::adam_update_rows(pp, mp, vp2, d, slot.data(), cp, r0, r1, sc);
  });
  for (int64_t b = 0; b < nnz; ++b) slot[ip[b]] = -1;
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
