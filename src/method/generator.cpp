// The Q-Former generator. Shapes: B batch, Q queries, H hidden, E = 2·d_cf, r rank.
#include "cora/method/generator.h"

#include <cmath>

#include "cora/core/dropout.h"
#include "cora/core/error.h"

namespace cora::method {
namespace nn = torch::nn;

namespace {
// Multi-head attention of q [B, Q, H] over k, v [B, S, H] with dropout on the probabilities.
torch::Tensor mha(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  int64_t heads, double p, bool training) {
  const int64_t B = q.size(0), Q = q.size(1), S = k.size(1), H = q.size(2), Dh = H / heads;
  auto split = [&](const torch::Tensor& t, int64_t len) {
    return t.reshape({B, len, heads, Dh}).transpose(1, 2);  // [B, h, len, Dh]
  };
  auto att = torch::matmul(split(q, Q), split(k, S).transpose(-2, -1)) / std::sqrt(double(Dh));
  att = cora::dropout(att.softmax(-1), p, training);           // [B, h, Q, S]
  return torch::matmul(att, split(v, S)).transpose(1, 2).reshape({B, Q, H});
}
nn::LayerNorm ln(int64_t h) { return nn::LayerNorm(nn::LayerNormOptions({h}).eps(1e-12)); }
}  // namespace

QFormerLayerImpl::QFormerLayerImpl(int64_t H, int64_t E, int64_t heads, int64_t inter, double p)
    : heads_(heads), p_(p) {
  TORCH_CHECK(H % heads == 0, "generator hidden (", H, ") must be divisible by heads (", heads, ")");
  self_q = register_module("self_q", nn::Linear(H, H));
  self_k = register_module("self_k", nn::Linear(H, H));
  self_v = register_module("self_v", nn::Linear(H, H));
  self_out = register_module("self_out", nn::Linear(H, H));
  self_norm = register_module("self_norm", ln(H));
  cross_q = register_module("cross_q", nn::Linear(H, H));
  cross_k = register_module("cross_k", nn::Linear(E, H));
  cross_v = register_module("cross_v", nn::Linear(E, H));
  cross_out = register_module("cross_out", nn::Linear(H, H));
  cross_norm = register_module("cross_norm", ln(H));
  ffn_in = register_module("ffn_in", nn::Linear(H, inter));
  ffn_out = register_module("ffn_out", nn::Linear(inter, H));
  ffn_norm = register_module("ffn_norm", ln(H));
}

torch::Tensor QFormerLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& enc) {
  const bool tr = is_training();
  auto a = mha(self_q(x), self_k(x), self_v(x), heads_, p_, tr);
  auto h = self_norm(x + cora::dropout(self_out(a), p_, tr));                   // post-LN
  auto c = mha(cross_q(h), cross_k(enc), cross_v(enc), heads_, p_, tr);
  h = cross_norm(h + cora::dropout(cross_out(c), p_, tr));
  auto f = ffn_out(torch::gelu(ffn_in(h)));
  return ffn_norm(h + cora::dropout(f, p_, tr));                                // [B, Q, H]
}

CollabQueryGeneratorImpl::CollabQueryGeneratorImpl(const GeneratorOptions& o, int64_t cf_dim,
                                                   int64_t d_model, int64_t rank)
    : o_(o), d_model_(d_model), rank_(rank) {
  const int64_t E = 2 * cf_dim, H = o.hidden > 0 ? o.hidden : E;
  queries = register_parameter("queries", torch::randn({o.n_queries, H}) * 0.02);  // N(0, 0.02)
  input_norm = register_module("input_norm", ln(H));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t l = 0; l < o.layers; ++l) layers->push_back(QFormerLayer(H, E, o.heads, o.intermediate, o.dropout));
  head = register_module("head", nn::Linear(H, d_model * rank));
  // The Q-Former: BERT initialisation, N(0, 0.02) weights and zero biases. The output layer as
  // the official weight generator's: Kaiming-uniform (a = √5) weights and nn.Linear's default
  // uniform bias (±1/√fan_in).
  torch::NoGradGuard ng;
  nn::init::kaiming_uniform_(head->weight, std::sqrt(5.0));
  for (auto& p : named_parameters()) {
    const auto& k = p.key();
    if (k == "queries" || k.find("norm") != std::string::npos || k.rfind("head.", 0) == 0) continue;
    if (k.size() >= 4 && k.substr(k.size() - 4) == "bias") p.value().zero_();
    else p.value().normal_(0.0, 0.02);
  }
}

torch::Tensor CollabQueryGeneratorImpl::forward(const torch::Tensor& user, const torch::Tensor& item) {
  TORCH_CHECK(user.dim() == 2 && item.sizes() == user.sizes(), "user/item must both be [B, d_cf]");
  const int64_t B = user.size(0);
  auto enc = torch::cat({user, item}, -1).unsqueeze(1);                  // [B, 1, E]: ONE token
  auto x = queries.unsqueeze(0).expand({B, -1, -1});                     // [B, Q, H]
  x = cora::dropout(input_norm(x), o_.dropout, is_training());
  for (const auto& m : *layers) x = m->as<QFormerLayerImpl>()->forward(x, enc.to(x.scalar_type()));
  auto w = head(x).mean(1);                                              // [B, d_model·r]: mean over queries
  w = torch::nn::functional::normalize(w, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  return w.view({B, d_model_, rank_});                                   // CoRA: W_c = norm(mean_q Linear(q))
}

}  // namespace cora::method
