// score[b] = <A[ia[b]], C[ic[b]]> as one fused op with its own backward: no [B, D] gathers in
// the forward pass, and row gradients handed to the optimizer sparse (MF) or dense (LightGCN).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "core/kernels.h"
#include "cora/cf/model.h"

namespace cora::cf {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Gradient for `table` rows ids[b] with values g[b] · other[other_ids[b]] (zero when g[b] = 0).
torch::Tensor row_grad(const torch::Tensor& table, const torch::Tensor& ids, const torch::Tensor& g,
                       const torch::Tensor& other, const torch::Tensor& other_ids, bool sparse) {
  const int64_t B = ids.size(0), D = table.size(1);
  auto vals = torch::empty({B, D}, table.options());  // [B, D]
  const float* gp = g.data_ptr<float>();
  const float* op = other.data_ptr<float>();
  const int64_t* oi = other_ids.data_ptr<int64_t>();
  float* vp = vals.data_ptr<float>();
  at::parallel_for(0, B, 256, [&](int64_t b0, int64_t b1) {
    kernels::scaled_rows(gp, op, other.size(0), oi, D, vp, b0, b1);
  });
  auto safe = torch::where(ids < table.size(0), ids, torch::zeros_like(ids));
  if (sparse) return torch::sparse_coo_tensor(safe.unsqueeze(0), vals, table.sizes());
  return torch::zeros_like(table).index_add_(0, safe, vals);
}

struct GatheredDot : torch::autograd::Function<GatheredDot> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor a, torch::Tensor ia,
                               torch::Tensor c, torch::Tensor ic, bool sparse) {
    ctx->save_for_backward({a, ia, c, ic});
    ctx->saved_data["sparse"] = sparse;
    const int64_t B = ia.size(0), D = a.size(1);
    auto out = torch::empty({B}, a.options());  // [B]
    const float *ap = a.data_ptr<float>(), *cp = c.data_ptr<float>();
    const int64_t *ip = ia.data_ptr<int64_t>(), *jp = ic.data_ptr<int64_t>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, B, 256, [&](int64_t b0, int64_t b1) {
      kernels::gathered_dot(ap, a.size(0), ip, cp, c.size(0), jp, D, op, b0, b1);
    });
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto &a = saved[0], &ia = saved[1], &c = saved[2], &ic = saved[3];
    const bool sparse = ctx->saved_data["sparse"].toBool();
    // Rows with an unknown id scored 0 and pass no gradient; padding row 0 gets none either.
    auto live = (ia < a.size(0)) & (ic < c.size(0));
    auto g = grads[0].contiguous() * live.to(torch::kFloat32);
    torch::Tensor ga, gc;
    if (ctx->needs_input_grad(0))
      ga = row_grad(a, ia, (g * (ia != 0).to(torch::kFloat32)).contiguous(), c, ic, sparse);
    if (ctx->needs_input_grad(2))
      gc = row_grad(c, ic, (g * (ic != 0).to(torch::kFloat32)).contiguous(), a, ia, sparse);
    return {ga, torch::Tensor(), gc, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor gathered_dot(const torch::Tensor& a, const torch::Tensor& ia, const torch::Tensor& c,
                           const torch::Tensor& ic, bool sparse_grad) {
  const bool fast = a.device().is_cpu() && c.device().is_cpu() &&
                    a.scalar_type() == torch::kFloat32 && c.scalar_type() == torch::kFloat32 &&
                    a.dim() == 2 && c.dim() == 2 && a.size(1) == c.size(1) && ia.dim() == 1;
  if (!fast) return (gather_rows(a, ia, sparse_grad) * gather_rows(c, ic, sparse_grad)).sum(-1);
  return GatheredDot::apply(a.contiguous(), ia.contiguous(), c.contiguous(), ic.contiguous(),
                            sparse_grad);
}

}  // namespace cora::cf
