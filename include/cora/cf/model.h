// The collaborative-filtering interface: MF, LightGCN and SASRec behind one module type.
// CF methods train these; LLM methods (CoRA, CoLLM) load a finished run and use the frozen
// per-row user representation and item representation. Scores are dot products (logits).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "cora/config/config.h"
#include "cora/data/split.h"

namespace cora::cf {

/// Rows of one split as tensors (CPU, int64 ids, float labels).
struct Rows {
  torch::Tensor uid;    // [N]
  torch::Tensor iid;    // [N]
  torch::Tensor label;  // [N] float
  torch::Tensor hist;   // [N, L] last L history items, left-padded with 0 (undefined if L = 0)
  int64_t size() const { return uid.size(0); }
  Rows index(const torch::Tensor& idx) const;  ///< rows idx, same device
  Rows to(const torch::Device& d) const;
};
/// Builds Rows; `max_len` = 0 skips the history tensor.
Rows make_rows(const data::Split& split, int64_t max_len);

/// Interface every CF model implements. Ids outside the model's tables (e.g. a split prepared
/// later) fall back to a zero representation, so their score is 0 (documented in README).
class CfModelImpl : public torch::nn::Module {
 public:
  /// Per-row user representation [B, D]: a table lookup (MF, LightGCN) or the encoding of the
  /// row's history (SASRec; an empty history has a defined, finite representation).
  virtual torch::Tensor user_repr(const Rows& b) = 0;
  /// Item representation [B, D].
  virtual torch::Tensor item_repr(const torch::Tensor& iid) = 0;
  /// Logits [B] = <user_repr, item_repr>.
  virtual torch::Tensor score(const Rows& b);
  /// History length the model reads (0 = none).
  virtual int64_t history_len() const { return 0; }
  virtual int64_t dim() const = 0;
  virtual std::string kind() const = 0;
  int64_t n_users() const { return n_users_; }
  int64_t n_items() const { return n_items_; }

 protected:
  CfModelImpl(int64_t n_users, int64_t n_items) : n_users_(n_users), n_items_(n_items) {}
  int64_t n_users_, n_items_;
};
using CfModel = std::shared_ptr<CfModelImpl>;

/// Rows of `table` at `ids` [...] → [..., D]; ids >= table rows give zero rows (the fallback),
/// and row 0 (padding) gets no gradient. `sparse_grad` makes a leaf table's gradient sparse
/// (embedding rows only), which the fused Adam consumes without a dense gradient pass.
torch::Tensor gather_rows(const torch::Tensor& table, const torch::Tensor& ids,
                          bool sparse_grad = false);

/// Scores [B] = <a[ia[b]], c[ic[b]]> with the same fallback and padding rules as gather_rows,
/// fused on CPU fp32 (no [B, D] intermediates); differentiable w.r.t. a and c.
torch::Tensor gathered_dot(const torch::Tensor& a, const torch::Tensor& ia, const torch::Tensor& c,
                           const torch::Tensor& ic, bool sparse_grad = false);

/// Untrained models sized for the dataset (the method registry maps names to these).
/// LightGCN's graph is built from `train`'s positive rows.
CfModel make_mf(const config::CfConfig& cfg, int64_t n_users, int64_t n_items, const data::Split& train);
CfModel make_lightgcn(const config::CfConfig& cfg, int64_t n_users, int64_t n_items,
                      const data::Split& train);
CfModel make_sasrec(const config::CfConfig& cfg, int64_t n_users, int64_t n_items,
                    const data::Split& train);

/// Logits for every row of `rows` (eval mode, no grad), in batches.
std::vector<float> predict(CfModelImpl& model, const Rows& rows, int64_t batch_size,
                           const torch::Device& device);

}  // namespace cora::cf
