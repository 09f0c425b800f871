// Shared CF pieces: row tensors, the zero fallback for unknown ids, and the model factory.
#include "cora/cf/model.h"

#include "cf/models.h"
#include "cora/core/error.h"

namespace cora::cf {

Rows Rows::index(const torch::Tensor& idx) const {
  Rows r{uid.index_select(0, idx), iid.index_select(0, idx), label.index_select(0, idx), {}};
  if (hist.defined()) r.hist = hist.index_select(0, idx);
  return r;
}

Rows Rows::to(const torch::Device& d) const {
  Rows r{uid.to(d), iid.to(d), label.to(d), {}};
  if (hist.defined()) r.hist = hist.to(d);
  return r;
}

Rows make_rows(const data::Split& s, int64_t max_len) {
  const int64_t n = static_cast<int64_t>(s.size());
  Rows r;
  r.uid = torch::from_blob(const_cast<int64_t*>(s.uid.data()), {n}, torch::kInt64).clone();
  r.iid = torch::from_blob(const_cast<int64_t*>(s.iid.data()), {n}, torch::kInt64).clone();
  r.label = torch::from_blob(const_cast<float*>(s.label.data()), {n}, torch::kFloat32).clone();
  if (max_len > 0) {
    r.hist = torch::zeros({n, max_len}, torch::kInt64);
    auto acc = r.hist.accessor<int64_t, 2>();
    for (int64_t i = 0; i < n; ++i) {
      auto h = s.history(i);
      int64_t take = std::min<int64_t>(max_len, static_cast<int64_t>(h.size()));
      for (int64_t k = 0; k < take; ++k)  // most recent item last
        acc[i][max_len - take + k] = h[h.size() - take + k];
    }
  }
  return r;
}

torch::Tensor CfModelImpl::score(const Rows& b) {
  return (user_repr(b) * item_repr(b.iid)).sum(-1);  // [B]
}

torch::Tensor gather_rows(const torch::Tensor& table, const torch::Tensor& ids, bool sparse_grad) {
  const int64_t n = table.size(0);
  auto known = ids < n;  // [...]
  auto safe = torch::where(known, ids, torch::zeros_like(ids));
  // Row 0 is padding: it receives no gradient (nn.Embedding's padding_idx semantics).
  auto rows = torch::embedding(table, safe, /*padding_idx=*/0, false, sparse_grad);  // [..., D]
  return rows * known.unsqueeze(-1).to(rows.scalar_type());
}

CfModel make_mf(const config::CfConfig& cfg, int64_t n_users, int64_t n_items, const data::Split&) {
  return std::make_shared<MfImpl>(cfg, n_users, n_items);
}
CfModel make_lightgcn(const config::CfConfig& cfg, int64_t n_users, int64_t n_items,
                      const data::Split& train) {
  return std::make_shared<LightGcnImpl>(cfg, n_users, n_items, train);
}
CfModel make_sasrec(const config::CfConfig& cfg, int64_t n_users, int64_t n_items,
                    const data::Split&) {
  return std::make_shared<SasRecImpl>(cfg, n_users, n_items);
}

std::vector<float> predict(CfModelImpl& model, const Rows& rows, int64_t batch_size,
                           const torch::Device& device) {
  torch::NoGradGuard ng;
  model.eval();
  std::vector<float> out(rows.size());
  for (int64_t s = 0; s < rows.size(); s += batch_size) {
    int64_t n = std::min(batch_size, rows.size() - s);
    auto idx = torch::arange(s, s + n, torch::kInt64);
    auto sc = model.score(rows.index(idx).to(device)).to(torch::kCPU, torch::kFloat32).contiguous();
    std::copy(sc.data_ptr<float>(), sc.data_ptr<float>() + n, out.begin() + s);
  }
  return out;
}

}  // namespace cora::cf
