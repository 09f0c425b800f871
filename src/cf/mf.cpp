// Matrix factorisation (CoLLM's MatrixFactorization: no bias, padding row 0).
#include "cf/models.h"

namespace cora::cf {

MfImpl::MfImpl(const config::CfConfig& cfg, int64_t n_users, int64_t n_items)
    : CfModelImpl(n_users, n_items) {
  namespace nn = torch::nn;
  user_embedding = register_module(
      "user_embedding", nn::Embedding(nn::EmbeddingOptions(n_users, cfg.dim).padding_idx(0)));
  item_embedding = register_module(
      "item_embedding", nn::Embedding(nn::EmbeddingOptions(n_items, cfg.dim).padding_idx(0)));
  torch::NoGradGuard ng;
  for (auto* e : {&user_embedding, &item_embedding}) {
    (*e)->weight.normal_(0.0, cfg.init_std);
    (*e)->weight[0].zero_();
  }
}

torch::Tensor MfImpl::user_repr(const Rows& b) { return gather_rows(user_embedding->weight, b.uid, true); }

torch::Tensor MfImpl::item_repr(const torch::Tensor& iid) {
  return gather_rows(item_embedding->weight, iid, true);
}

torch::Tensor MfImpl::score(const Rows& b) {
  // Fused <P[u], Q[i]> with row-sparse gradients for the fused Adam.
  return gathered_dot(user_embedding->weight, b.uid, item_embedding->weight, b.iid, true);
}

}  // namespace cora::cf
