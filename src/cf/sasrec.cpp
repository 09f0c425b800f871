// SASRec as in CoLLM's baseline: causal self-attention over the left-padded recent history.
#include <cmath>

#include "cf/models.h"

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
  x = torch::dropout(x, dropout_, is_training()) * keep;
  auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device()))
                    .tril()
                    .logical_not();  // [T, T] true = masked
  for (const auto& m : *blocks) {
    auto& blk = *m->as<BlockImpl>();
    auto q_in = blk.attn_norm(x);                                             // [B, T, D]
    auto w = blk.qkv->weight;                                                 // [3D, D]
    auto bias = blk.qkv->bias;
    auto q = torch::linear(q_in, w.narrow(0, 0, D), bias.narrow(0, 0, D));    // [B, T, D]
    auto kv = torch::linear(x, w.narrow(0, D, 2 * D), bias.narrow(0, D, 2 * D));
    auto k = kv.narrow(-1, 0, D), v = kv.narrow(-1, D, D);
    auto split = [&](const torch::Tensor& t) { return t.reshape({B, T, H, Dh}).transpose(1, 2); };
    auto att = torch::matmul(split(q), split(k).transpose(-2, -1)) / std::sqrt(double(Dh));
    att = att.masked_fill(causal, -std::numeric_limits<float>::infinity()).softmax(-1);
    att = torch::dropout(att, dropout_, is_training());                       // [B, H, T, T]
    auto o = torch::matmul(att, split(v)).transpose(1, 2).reshape({B, T, D});
    x = q_in + blk.out(o);                                                    // Q + MHA(Q, x, x)
    x = blk.ffn_norm(x);
    auto f = torch::dropout(torch::relu(blk.fc1(x)), dropout_, is_training());
    x = (x + torch::dropout(blk.fc2(f), dropout_, is_training())) * keep;
  }
  return last_norm(x.select(1, T - 1));  // [B, D]: last position = most recent item
}

}  // namespace cora::cf
