// Loading a Hugging Face checkpoint directory: config.json, model.safetensors or a sharded set
// (model.safetensors.index.json), optional tokenizer.model. Weights are memory-mapped and used in
// place when already in the run dtype; pickled pytorch_model*.bin files are refused.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "cora/llm/model.h"

namespace cora::llm {

struct LoadOptions {
  torch::ScalarType dtype = torch::kFloat32;  ///< run dtype (fp32 on CPU; bf16/fp16 on CUDA)
  torch::Device device = torch::kCPU;
  bool random_init = false;  ///< config.json only: random weights of that shape
  uint64_t seed = 0;         ///< for random_init
};

/// A frozen model (requires_grad false everywhere, eval mode).
Llama load_llama(const std::string& dir, const LoadOptions& opt = {});

}  // namespace cora::llm
