// SASRec as in CoLLM's baseline: causal self-attention over the left-padded recent history.
#include <cmath>

#include "cf/models.h"
#include "cora/core/dropout.h"

namespace cora::cf {
namespace nn = torch::nn;

SasRecImpl::BlockImpl::BlockImpl(int64_t d) {
  auto ln = [&] { return nn::LayerNorm(nn::LayerNormOptions({d}).eps(1e-8)); };
  attn_norm = register_module("attn_norm", ln());
  qkv = register_module("qkv", nn::Linear(d, 3 * d));
  out = register_module("out", nn::Linear(d, d));
  ffn_norm = register_module("ffn_norm", ln());
  fc1 = register_module("fc1", nn::Linear(d, d));
  fc2 = register_module("fc2", nn::Linear(d, d));
}

SasRecImpl::SasRecImpl(const config::CfConfig& cfg, int64_t n_users, int64_t n_items)
    : CfModelImpl(n_users, n_items), max_len_(cfg.max_len), heads_(cfg.heads), dropout_(cfg.dropout) {
  const int64_t D = cfg.dim;
  TORCH_CHECK(D % heads_ == 0, "cf.dim (", D, ") must be divisible by cf.heads (", heads_, ")");
  item_emb = register_module("item_emb", nn::Embedding(nn::EmbeddingOptions(n_items, D).padding_idx(0)));
  pos_emb = register_module("pos_emb", nn::Embedding(max_len_, D));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t l = 0; l < cfg.layers; ++l) blocks->push_back(Block(D));
  last_norm = register_module("last_norm", nn::LayerNorm(nn::LayerNormOptions({D}).eps(1e-8)));
  // Reference init (pmixer/CoLLM scripts): xavier-normal every >= 2-D weight, zero padding row.
  torch::NoGradGuard ng;
  for (auto& p : named_parameters())
    if (p.value().dim() >= 2) nn::init::xavier_normal_(p.value());
  item_emb->weight[0].zero_();
}

torch::Tensor SasRecImpl::item_repr(const torch::Tensor& iid) {
  return gather_rows(item_emb->weight, iid);
}

torch::Tensor SasRecImpl::user_repr(const Rows& b) {
  TORCH_CHECK(b.hist.defined() && b.hist.size(1) == max_len_, "SASRec needs a history of length ",
              max_len_);
  const int64_t B = b.hist.size(0), T = max_len_, D = dim(), H = heads_, Dh = D / H;
  auto keep = (b.hist > 0).unsqueeze(-1).to(item_emb->weight.scalar_type());  // [B, T, 1]
  auto x = gather_rows(item_emb->weight, b.hist) * std::sqrt(static_cast<double>(D));
  x = x + pos_emb->weight.unsqueeze(0);                                        // [B, T, D]
  x = cora::dropout(x, dropout_, is_training()) * keep;
  auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device()))
                    .tril()
                    .logical_not();  // [T, T] true = masked
  const int64_t n_blocks = static_cast<int64_t>(blocks->size());
  for (int64_t l = 0; l < n_blocks; ++l) {
    auto& blk = *(*blocks)[l]->as<BlockImpl>();
    // Only the last position's output is read, so the last block computes queries, the
    // output projection and the FFN for position T-1 alone (keys/values still span all T).
    const bool last = l == n_blocks - 1;
    const int64_t Tq = last ? 1 : T;
    auto x_q = last ? x.narrow(1, T - 1, 1) : x;                              // [B, Tq, D]
    auto q_in = blk.attn_norm(x_q);                                           // [B, Tq, D]
    auto w = blk.qkv->weight;                                                 // [3D, D]
    auto bias = blk.qkv->bias;
    auto q = torch::linear(q_in, w.narrow(0, 0, D), bias.narrow(0, 0, D));    // [B, Tq, D]
    auto kv = torch::linear(x, w.narrow(0, D, 2 * D), bias.narrow(0, D, 2 * D));  // [B, T, 2D]
    auto k = kv.narrow(-1, 0, D), v = kv.narrow(-1, D, D);
    auto heads = [&](const torch::Tensor& t, int64_t len) {
      return t.reshape({B, len, H, Dh}).transpose(1, 2);                      // [B, H, len, Dh]
    };
    auto att = torch::matmul(heads(q, Tq), heads(k, T).transpose(-2, -1)) / std::sqrt(double(Dh));
    if (!last) att = att.masked_fill(causal, -std::numeric_limits<float>::infinity());
    att = cora::dropout(att.softmax(-1), dropout_, is_training());           // [B, H, Tq, T]
    auto o = torch::matmul(att, heads(v, T)).transpose(1, 2).reshape({B, Tq, D});
    auto y = blk.ffn_norm(q_in + blk.out(o));                                 // Q + MHA(Q, x, x)
    auto f = cora::dropout(torch::relu(blk.fc1(y)), dropout_, is_training());
    x = (y + cora::dropout(blk.fc2(f), dropout_, is_training())) * (last ? keep.narrow(1, T - 1, 1) : keep);
  }
  return last_norm(x.select(1, x.size(1) - 1));  // [B, D]: last position = most recent item
}

}  // namespace cora::cf
