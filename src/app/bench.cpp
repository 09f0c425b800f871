// `cora bench`: one JSON object per measurement on stdout.
//  cf  — trains the config's CF model to early stop: rows/s, epochs, seconds to stop.
//  llm — forward and forward+backward tokens/s of the config's LLM shape at batch × 160 tokens,
//        with CoRA's per-sample deltas on q, k, v, o, against this machine's measured fp32
//        matmul peak.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cora/app/commands.h"
#include "cora/cf/trainer.h"
#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/llm/adapters.h"
#include "cora/llm/loader.h"

namespace cora::app {
using json = nlohmann::json;

namespace {

json bench_cf(const config::Config& c) {
  if (!c.is_cf_method()) throw Error::key("method", "bench cf needs mf, lightgcn or sasrec");
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("cora-bench-" + std::to_string(::getpid()))).string();
  double t0 = now_seconds();
  auto s = cf::train(c, dir, false);
  double wall = now_seconds() - t0;
  std::filesystem::remove_all(dir);
  return {{"bench", "cf"},          {"method", c.method},
          {"threads", current_threads()}, {"rows_per_s", s.rows_per_s},
          {"epochs", s.epochs_run},  {"best_epoch", s.best_epoch},
          {"seconds_to_early_stop", s.seconds}, {"wall_s", wall},
          {"test_auc", s.test.auc},  {"test_uauc", s.test.uauc}};
}

// Best of a few n×n×n fp32 GEMMs, in GFLOP/s.
double matmul_peak(const torch::Device& d) {
  const int64_t n = 1024;
  auto a = torch::randn({n, n}, d), b = torch::randn({n, n}, d);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    double t0 = now_seconds();
    auto c = torch::mm(a, b);
    if (d.is_cuda()) torch::cuda::synchronize();
    else (void)c.sum().item<float>();
    best = std::max(best, 2.0 * n * n * n / (now_seconds() - t0) / 1e9);
  }
  return best;
}

json bench_llm(const config::Config& c) {
  if (c.llm.dir.empty()) throw Error::key("llm.dir", "bench llm needs a checkpoint directory");
  torch::Device device(resolve_device(c.device));
  auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  llm::Llama m = llm::load_llama(c.llm.dir, {.dtype = dtype, .device = device,
                                             .random_init = c.llm.random_init, .seed = c.train.seed});
  const auto& lc = m->config();
  const int64_t B = c.train.batch_size, T = 160, D = lc.hidden_size, L = lc.num_hidden_layers,
                F = lc.intermediate_size, Dkv = lc.num_key_value_heads * lc.head_dim(), r = 16;
  llm::PerSampleLowRank ad(lc, llm::LowRankOptions{.rank = r, .alpha = 32, .dropout = 0.05});
  ad->to(device, dtype);
  auto ids = torch::randint(3, lc.vocab_size, {B, T}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto last = torch::full({B}, T - 1, torch::kInt64);
  auto yes = torch::tensor({std::min<int64_t>(3, lc.vocab_size - 1)}, torch::kInt64);
  // Matmul FLOPs of one forward pass: projections (+ deltas) and attention, per layer.
  const double proj = 2.0 * B * T * (2.0 * D * D + 2.0 * D * Dkv + 3.0 * D * F);
  const double attn = 2.0 * 2.0 * B * T * T * D / 2;  // causal half of QKᵀ and AV
  const double delta = 2.0 * B * T * (D * r + r * (2.0 * D + 2.0 * Dkv));
  const double fwd_flops = L * (proj + attn + delta);
  auto sync = [&] { if (device.is_cuda()) torch::cuda::synchronize(); };
  auto time_it = [&](bool backward) {
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      auto wc = torch::randn({B, D, r}, torch::TensorOptions().dtype(dtype).device(device));
      if (backward) wc.requires_grad_();
      ad->set_wc(wc);
      ad->train(backward);
      double t0 = now_seconds();
      if (backward) {
        auto y = m->logits(m->hidden_at({ids, {}, ad.get()}, last), yes.to(device));
        y.sum().backward();
      } else {
        torch::NoGradGuard ng;
        (void)m->logits(m->hidden_at({ids, {}, ad.get()}, last), yes.to(device)).sum().item<float>();
      }
      sync();
      best = std::min(best, now_seconds() - t0);
    }
    return best;
  };
  double peak = matmul_peak(device);
  double tf = time_it(false), tb = time_it(true);
  // Backward through frozen weights costs one more matmul per projection (input gradients only).
  double fb_flops = 2.0 * fwd_flops;
  return {{"bench", "llm"}, {"device", device.str()}, {"dtype", c10::toString(dtype)},
          {"threads", current_threads()},
          {"shape", {{"d_model", D}, {"layers", L}, {"heads", lc.num_attention_heads},
                     {"kv_heads", lc.num_key_value_heads}, {"intermediate", F},
                     {"vocab", lc.vocab_size}, {"batch", B}, {"tokens", T}, {"rank", r}}},
          {"matmul_peak_gflops", peak},
          {"forward_tokens_per_s", B * T / tf}, {"forward_gflops", fwd_flops / tf / 1e9},
          {"forward_peak_fraction", fwd_flops / tf / 1e9 / peak},
          {"fwd_bwd_tokens_per_s", B * T / tb}, {"fwd_bwd_gflops", fb_flops / tb / 1e9},
          {"fwd_bwd_peak_fraction", fb_flops / tb / 1e9 / peak}};
}

}  // namespace

int bench(const BenchArgs& a) {
  if (a.config.empty())
    throw UsageError("bench needs --config (e.g. configs/ml1m/mf.json, configs/bench/llm_cpu_small.json)");
  config::Config c = config::load(a.config, a.overrides);
  init_logging("warn");
  set_threads(c.threads);
  json j;
  if (a.what == "cf")
    j = bench_cf(c);
  else if (a.what == "llm")
    j = bench_llm(c);
  else
    throw UsageError("bench target '" + a.what + "' is not available (available: cf, llm)");
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace cora::app
