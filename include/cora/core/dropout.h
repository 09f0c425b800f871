// Fast, reproducible dropout (libtorch 1.13's bernoulli-based dropout costs ~15 ns per element
// here): a counter-based mask regenerated in the backward pass, so nothing is stored.
// Two ways to seed it:
//  - per sample (training): while a SampleKeys guard is alive, row r of a tensor whose first
//    dimension is the batch takes its mask from (keys[r], the call's ordinal), so a sample's
//    masks do not depend on which other samples share its (micro-)batch or process;
//  - otherwise one seed per call from torch's default generator (torch::manual_seed).
// CPU fp32 uses the fused kernel; other devices and dtypes compute the same keyed mask with
// tensor ops (unkeyed: torch::dropout).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace cora {

/// Inverted dropout: zeroes each element with probability p, scales the rest by 1/(1-p).
torch::Tensor dropout(const torch::Tensor& x, double p, bool training);

/// Where the keyed masks stand: the keys of the rows and the number of calls made so far.
/// Activation checkpointing saves it and replays a layer from it.
struct DropoutState {
  std::shared_ptr<const std::vector<uint64_t>> keys;  ///< null = unkeyed
  int64_t calls = 0;
};
DropoutState dropout_state();

/// Installs `state` on this thread for its lifetime (restores the previous one after).
class ScopedDropoutState {
 public:
  explicit ScopedDropoutState(DropoutState state);
  ~ScopedDropoutState();
  ScopedDropoutState(const ScopedDropoutState&) = delete;
  ScopedDropoutState& operator=(const ScopedDropoutState&) = delete;

 private:
  DropoutState saved_;
};

/// Per-sample keys for the forward and backward passes of one micro-batch.
class SampleKeys : public ScopedDropoutState {
 public:
  explicit SampleKeys(std::vector<uint64_t> keys)
      : ScopedDropoutState({std::make_shared<const std::vector<uint64_t>>(std::move(keys)), 0}) {}
};

/// The keep mask (1 = kept) of `rows` × `width` elements for per-row seeds, computed with
/// tensor ops on `device` (the same bits as the CPU kernel; exposed for tests).
torch::Tensor keyed_keep_mask(const std::vector<uint64_t>& row_seeds, int64_t width,
                              uint32_t threshold, const torch::Device& device);

}  // namespace cora
