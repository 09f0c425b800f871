// Fast, reproducible dropout for CPU fp32 (libtorch 1.13's bernoulli-based dropout costs ~15 ns
// per element here): a counter-based mask regenerated in the backward pass, so nothing is
// stored. Other devices and dtypes use torch::dropout. Seeds come from torch's default
// generator, so torch::manual_seed makes it deterministic.
#pragma once

#include <torch/torch.h>

namespace cora {

/// Inverted dropout: zeroes each element with probability p, scales the rest by 1/(1-p).
torch::Tensor dropout(const torch::Tensor& x, double p, bool training);

}  // namespace cora
