// CoRA's collaborative query generator: learnable queries → a BERT-style Q-Former (post-LN,
// self-attention among the queries, cross-attention in every layer to ONE token, the concat of
// the frozen CF user and item representations) → Linear(hidden → d_model·r) per query, mean over
// queries, L2 norm over the flattened vector, reshaped to a per-sample W_c [B, d_model, r].
#pragma once

#include <torch/torch.h>

namespace cora::method {

struct GeneratorOptions {
  int64_t n_queries = 4;
  int64_t layers = 8;
  int64_t heads = 8;
  int64_t hidden = 0;          ///< 0 = 2 × CF dim (the width of the concat token)
  int64_t intermediate = 3072;
  double dropout = 0.1;
};

class QFormerLayerImpl : public torch::nn::Module {
 public:
  QFormerLayerImpl(int64_t hidden, int64_t enc_width, int64_t heads, int64_t inter, double p);
  /// q [B, Q, H], enc [B, S, E] → [B, Q, H].
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& enc);

  torch::nn::Linear self_q{nullptr}, self_k{nullptr}, self_v{nullptr}, self_out{nullptr};
  torch::nn::Linear cross_q{nullptr}, cross_k{nullptr}, cross_v{nullptr}, cross_out{nullptr};
  torch::nn::Linear ffn_in{nullptr}, ffn_out{nullptr};
  torch::nn::LayerNorm self_norm{nullptr}, cross_norm{nullptr}, ffn_norm{nullptr};

 private:
  int64_t heads_;
  double p_;
};
TORCH_MODULE(QFormerLayer);

class CollabQueryGeneratorImpl : public torch::nn::Module {
 public:
  CollabQueryGeneratorImpl(const GeneratorOptions& o, int64_t cf_dim, int64_t d_model, int64_t rank);
  /// user, item [B, d_cf] → W_c [B, d_model, r] (unit Frobenius norm per sample).
  torch::Tensor forward(const torch::Tensor& user, const torch::Tensor& item);

  torch::Tensor queries;  // [Q, H]
  torch::nn::LayerNorm input_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::Linear head{nullptr};  // H → d_model·r

 private:
  GeneratorOptions o_;
  int64_t d_model_, rank_;
};
TORCH_MODULE(CollabQueryGenerator);

}  // namespace cora::method
