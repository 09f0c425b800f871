// LightGCN on the training-positive graph with sparse propagation (no dense adjacency).
#include <cmath>

#include "cf/models.h"

namespace cora::cf {

LightGcnImpl::LightGcnImpl(const config::CfConfig& cfg, int64_t n_users, int64_t n_items,
                           const data::Split& train)
    : CfModelImpl(n_users, n_items), layers_(cfg.layers) {
  namespace nn = torch::nn;
  embedding_user = register_module("embedding_user", nn::Embedding(n_users, cfg.dim));
  embedding_item = register_module("embedding_item", nn::Embedding(n_items, cfg.dim));
  {
    torch::NoGradGuard ng;
    embedding_user->weight.normal_(0.0, cfg.init_std);
    embedding_item->weight.normal_(0.0, cfg.init_std);
  }
  // Â = D^-1/2 A D^-1/2 over nodes [users; items], A from unique (u, i) positive pairs.
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (size_t r = 0; r < train.size(); ++r)
    if (train.label[r] > 0.5f && train.uid[r] < n_users && train.iid[r] < n_items)
      pairs.emplace_back(train.uid[r], train.iid[r]);
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  const int64_t n = n_users + n_items, e = static_cast<int64_t>(pairs.size());
  std::vector<double> deg(n, 0.0);
  for (auto [u, i] : pairs) {
    deg[u] += 1;
    deg[n_users + i] += 1;
  }
  auto idx = torch::empty({2, 2 * e}, torch::kInt64);
  auto val = torch::empty({2 * e}, torch::kFloat32);
  auto ia = idx.accessor<int64_t, 2>();
  auto va = val.accessor<float, 1>();
  for (int64_t k = 0; k < e; ++k) {
    auto [u, i] = pairs[k];
    int64_t a = u, b = n_users + i;
    float w = static_cast<float>(1.0 / std::sqrt(deg[a] * deg[b]));
    ia[0][2 * k] = a, ia[1][2 * k] = b, va[2 * k] = w;
    ia[0][2 * k + 1] = b, ia[1][2 * k + 1] = a, va[2 * k + 1] = w;
  }
  graph_ = torch::sparse_coo_tensor(idx, val, {n, n}).coalesce();
}

void LightGcnImpl::train(bool on) {
  cache_users_ = cache_items_ = torch::Tensor();
  torch::nn::Module::train(on);
}

void LightGcnImpl::to(torch::Device device, bool non_blocking) {
  torch::nn::Module::to(device, non_blocking);
  graph_ = graph_.to(device);
  cache_users_ = cache_items_ = torch::Tensor();
}

std::pair<torch::Tensor, torch::Tensor> LightGcnImpl::propagate() {
  if (!is_training() && cache_users_.defined()) return {cache_users_, cache_items_};
  auto x = torch::cat({embedding_user->weight, embedding_item->weight}, 0);  // [U+I, D]
  auto sum = x;
  for (int64_t k = 0; k < layers_; ++k) {
    x = torch::mm(graph_, x);  // sparse Â · dense E
    sum = sum + x;
  }
  auto mean = sum / static_cast<double>(layers_ + 1);
  auto users = mean.narrow(0, 0, n_users_), items = mean.narrow(0, n_users_, n_items_);
  if (!is_training()) {
    cache_users_ = users.detach();
    cache_items_ = items.detach();
  }
  return {users, items};
}

torch::Tensor LightGcnImpl::user_repr(const Rows& b) { return gather_rows(propagate().first, b.uid); }

torch::Tensor LightGcnImpl::item_repr(const torch::Tensor& iid) {
  return gather_rows(propagate().second, iid);
}

torch::Tensor LightGcnImpl::score(const Rows& b) {
  auto [users, items] = propagate();
  return gathered_dot(users, b.uid, items, b.iid);  // [B]
}

}  // namespace cora::cf
