// Library-private declarations of the three CF models (one source file each).
#pragma once

#include "cora/cf/model.h"

namespace cora::cf {

/// MF: score = <P[u], Q[i]>, no bias (CoLLM's MatrixFactorization). Row 0 is padding (zero).
class MfImpl : public CfModelImpl {
 public:
  MfImpl(const config::CfConfig& cfg, int64_t n_users, int64_t n_items);
  torch::Tensor user_repr(const Rows& b) override;
  torch::Tensor item_repr(const torch::Tensor& iid) override;
  torch::Tensor score(const Rows& b) override;  // fused gathered dot, sparse row gradients
  int64_t dim() const override { return user_embedding->weight.size(1); }
  std::string kind() const override { return "mf"; }
  torch::nn::Embedding user_embedding{nullptr}, item_embedding{nullptr};
};

/// LightGCN: K layers of E ← Â E over the symmetric-normalised bipartite graph of training
/// positives (sparse), final tables = mean of the K+1 layer outputs, dot-product score.
class LightGcnImpl : public CfModelImpl {
 public:
  LightGcnImpl(const config::CfConfig& cfg, int64_t n_users, int64_t n_items,
               const data::Split& train);
  torch::Tensor user_repr(const Rows& b) override;
  torch::Tensor item_repr(const torch::Tensor& iid) override;
  torch::Tensor score(const Rows& b) override;  // propagates once per call
  int64_t dim() const override { return embedding_user->weight.size(1); }
  std::string kind() const override { return "lightgcn"; }
  void train(bool on = true) override;
  void to(torch::Device device, bool non_blocking = false) override;
  /// Propagated (users [n_users, D], items [n_items, D]); cached while in eval mode.
  std::pair<torch::Tensor, torch::Tensor> propagate();
  int64_t edges() const { return graph_._nnz() / 2; }
  torch::nn::Embedding embedding_user{nullptr}, embedding_item{nullptr};

 private:
  int64_t layers_;
  torch::Tensor graph_;  // sparse COO [(U+I), (U+I)]
  torch::Tensor cache_users_, cache_items_;
};

/// SASRec (Kang & McAuley; CoLLM's variant): causal self-attention blocks over the last
/// `max_len` history items (Q from LayerNorm(x), K = V = x), point-wise FFN, final LayerNorm;
/// user representation = the last position, score = <repr, item_emb[i]>.
class SasRecImpl : public CfModelImpl {
 public:
  SasRecImpl(const config::CfConfig& cfg, int64_t n_users, int64_t n_items);
  torch::Tensor user_repr(const Rows& b) override;
  torch::Tensor item_repr(const torch::Tensor& iid) override;
  int64_t history_len() const override { return max_len_; }
  int64_t dim() const override { return item_emb->weight.size(1); }
  std::string kind() const override { return "sasrec"; }

  /// One block: x ← LN(x) + MHA(LN(x), x, x); x ← (LN(x) + FFN(LN(x))) · mask.
  struct BlockImpl : torch::nn::Module {
    explicit BlockImpl(int64_t d);
    torch::nn::LayerNorm attn_norm{nullptr}, ffn_norm{nullptr};
    torch::nn::Linear qkv{nullptr}, out{nullptr}, fc1{nullptr}, fc2{nullptr};
  };
  TORCH_MODULE(Block);
  torch::nn::Embedding item_emb{nullptr}, pos_emb{nullptr};
  torch::nn::LayerNorm last_norm{nullptr};
  torch::nn::ModuleList blocks{nullptr};

 private:
  int64_t max_len_, heads_;
  double dropout_;
};

}  // namespace cora::cf
