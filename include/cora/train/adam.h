// Adam / AdamW with a fused single-pass CPU fp32 kernel (the tensor-op path elsewhere);
// sparse (embedding-row) gradients are accepted.
// Matches torch.optim.Adam (L2 added to the gradient) and torch.optim.AdamW (decoupled decay)
// step for step; the per-parameter decay mask implements "no decay on biases and norms".
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cora::kernels {
struct AdamScalars;
}

namespace cora::train {

struct AdamOptions {
  double beta1 = 0.9;   ///< first-moment decay
  double beta2 = 0.999; ///< second-moment decay
  double eps = 1e-8;    ///< denominator epsilon
  double weight_decay = 0.0;
  bool decoupled = false;  ///< false: Adam (L2 in the gradient); true: AdamW
};

class Adam {
 public:
  /// `decay[i]` says whether params[i] is decayed (empty = all).
  Adam(std::vector<torch::Tensor> params, AdamOptions opt, std::vector<bool> decay = {});
  void zero_grad();
  /// One update at learning rate `lr`; parameters without a gradient are skipped.
  void step(double lr);
  int64_t steps() const { return steps_; }
  /// Moments and step count as named tensors (for checkpoints), and back.
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& s);

 private:
  std::vector<torch::Tensor> params_, m_, v_;
  std::vector<std::vector<int32_t>> slots_;  // per row: slot in compact_ or -1 (sparse grads)
  std::vector<torch::Tensor> compact_;       // coalesced sparse-gradient rows
  std::vector<bool> decay_;
  AdamOptions opt_;
  int64_t steps_ = 0;
  void sparse_step(size_t k, const torch::Tensor& grad, const kernels::AdamScalars& sc);
};

}  // namespace cora::train
