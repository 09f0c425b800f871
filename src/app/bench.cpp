// `cora bench`: one JSON object per measurement on stdout.
//  cf  — trains the config's CF model to early stop: rows/s, epochs, seconds to stop.
//  llm — forward and forward+backward tokens/s of the config's LLM shape at batch × 160 tokens,
//        with CoRA's per-sample deltas on q, k, v, o, against this machine's measured fp32
//        matmul peak.
//  train / eval — samples/s of the config's LLM method (CoRA: generator + deltas + frozen LLM,
//        AdamW step included for train) on random 160-token prompts.
//  metrics — AUC and UAUC over --rows generated scored rows: seconds and peak memory.
//  split — a generated split of --rows training rows written to disk, then the config's CF
//        method reads it, trains one epoch and evaluates: seconds per phase and peak memory.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <nlohmann/json.hpp>

#include "cora/app/commands.h"
#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/data/split.h"
#include "cora/eval/metrics.h"
#include "cora/io/files.h"
#include "cora/llm/adapters.h"
#include "cora/llm/loader.h"
#include "cora/method/llm_method.h"
#include "cora/method/registry.h"
#include "cora/method/train.h"
#include "cora/train/dist.h"
#include "cora/train/engine.h"

namespace cora::app {
using json = nlohmann::json;

namespace {

json bench_cf(const config::Config& c) {
  if (method::find_method(c.method).kind != method::Kind::cf)
    throw Error::key("method", "bench cf needs a CF method (mf, lightgcn, sasrec)");
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("cora-bench-" + std::to_string(::getpid()))).string();
  double t0 = now_seconds();
  auto s = method::train(c, dir, false);
  double wall = now_seconds() - t0;
  std::filesystem::remove_all(dir);
  return {{"bench", "cf"},          {"method", c.method},
          {"threads", current_threads()}, {"rows_per_s", s.samples_per_s},
          {"epochs", s.epochs_run},  {"best_epoch", s.best_epoch},
          {"seconds_to_early_stop", s.seconds}, {"wall_s", wall},
          {"test_auc", s.test.auc},  {"test_uauc", s.test.uauc}};
}

// Matmul FLOPs of one LLM forward pass over B × T tokens with rank-r deltas on q, k, v, o:
// projections, deltas, and the causal half of QKᵀ and AV.
double llm_forward_flops(const llm::LlamaConfig& lc, int64_t B, int64_t T, int64_t r) {
  const double D = lc.hidden_size, F = lc.intermediate_size,
               Dkv = lc.num_key_value_heads * lc.head_dim(), BT = double(B) * T;
  const double proj = 2.0 * BT * (2.0 * D * D + 2.0 * D * Dkv + 3.0 * D * F);
  const double attn = 2.0 * 2.0 * B * double(T) * T * D / 2;
  const double delta = 2.0 * BT * (D * r + r * (2.0 * D + 2.0 * Dkv));
  return lc.num_hidden_layers * (proj + attn + delta);
}

// Best of a few n×n×n GEMMs in the dtype the benchmark computes in (bf16 on CUDA), in GFLOP/s,
// after a warm-up (library initialisation); n large enough to fill a data-centre GPU.
double matmul_peak(const torch::Device& d, torch::ScalarType dtype) {
  const int64_t n = d.is_cuda() ? 8192 : 1024;
  auto opt = torch::TensorOptions().device(d).dtype(dtype);
  auto a = torch::randn({n, n}, opt), b = torch::randn({n, n}, opt);
  auto sync = [&](const torch::Tensor& c) {
    if (d.is_cuda()) torch::cuda::synchronize();
    else (void)c.sum().item<float>();
  };
  sync(torch::mm(a, b));
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    double t0 = now_seconds();
    sync(torch::mm(a, b));
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
                F = lc.intermediate_size, r = 16;
  llm::PerSampleLowRank ad(lc, llm::LowRankOptions{.rank = r, .alpha = 32, .dropout = 0.05});
  ad->to(device, dtype);
  auto ids = torch::randint(3, lc.vocab_size, {B, T}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto last = torch::full({B}, T - 1, torch::kInt64);
  auto yes = torch::tensor({std::min<int64_t>(3, lc.vocab_size - 1)}, torch::kInt64);
  const double fwd_flops = llm_forward_flops(lc, B, T, r);
  auto sync = [&] { if (device.is_cuda()) torch::cuda::synchronize(); };
  auto time_it = [&](bool backward) {
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      auto wc = torch::randn({B, D, r}, torch::TensorOptions().dtype(dtype).device(device));
      if (backward) wc.requires_grad_();
      ad->train(backward);
      llm::LlmInput in{ids, {}, ad.get(), nullptr, wc};
      double t0 = now_seconds();
      if (backward) {
        auto y = m->logits(m->hidden_at(in, last), yes.to(device));
        y.sum().backward();
      } else {
        torch::NoGradGuard ng;
        (void)m->logits(m->hidden_at(in, last), yes.to(device)).sum().item<float>();
      }
      sync();
      best = std::min(best, now_seconds() - t0);
    }
    return best;
  };
  double peak = matmul_peak(device, dtype);
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

// The config's LLM method scoring a fixed pool of random prompts (160 tokens each).
class RandomPrompts : public train::Trainable {
 public:
  RandomPrompts(method::LlmMethod& m, method::PromptBatch pool) : m_(m), pool_(std::move(pool)) {}
  train::Named parameters() override { return m_.trainable(); }
  void set_training(bool on) override { m_.set_training(on); }
  int64_t rows() const override { return pool_.ids.size(0); }
  torch::Tensor loss_sum(const std::vector<int64_t>& rows) override {
    auto b = batch(rows);
    return torch::binary_cross_entropy_with_logits(m_.score(b), b.rows.label, {}, {},
                                                   at::Reduction::Sum);
  }
  train::Validation validate() override { return {}; }
  method::PromptBatch batch(const std::vector<int64_t>& rows) const {
    auto idx = torch::tensor(rows, torch::kInt64).to(pool_.ids.device());
    return {pool_.ids.index_select(0, idx), pool_.mask.index_select(0, idx),
            pool_.last.index_select(0, idx), pool_.rows.index(idx)};
  }

 private:
  method::LlmMethod& m_;
  method::PromptBatch pool_;
};

// The method's training step (through the engine: micro-batches, clipping, AdamW) or its
// evaluation on the config's shapes, with a random MF as the CF source (random weights do not
// change the speed).
json bench_method(const config::Config& c, bool training) {
  torch::Device device(dist::device_for(torch::Device(resolve_device(c.device))));
  auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  data::Dataset data = data::load_dataset(c.data.dir);
  llm::Llama m = llm::load_llama(c.llm.dir, {.dtype = dtype, .device = device,
                                             .random_init = c.llm.random_init, .seed = c.train.seed});
  m->set_checkpointing(c.llm.checkpointing);
  const auto& lc = m->config();
  auto cf = cf::make_mf(c.cf, data.n_users, data.n_items, data.train);
  for (auto& p : cf->parameters()) p.set_requires_grad(false);
  cf->to(device);
  cf->eval();
  auto method = method::make_llm_method(c, m, cf, 3, device);
  const int64_t B = training ? c.train.batch_size : c.train.eval_batch_size, T = 160;
  auto rows = cf::make_rows(data.train, 0).index(torch::randint(0, (int64_t)data.train.size(), {B}, torch::kInt64));
  RandomPrompts prompts(*method, {torch::randint(3, lc.vocab_size, {B, T}, torch::kInt64).to(device),
                                  torch::ones({B, T}, torch::kInt64).to(device),
                                  torch::full({B}, T - 1, torch::kInt64).to(device), rows.to(device)});
  int64_t n_params = 0;
  for (auto& [n, p] : method->trainable()) n_params += p.numel();
  auto o = method::engine_options(c);
  train::RunDir nowhere("", /*writer=*/false);
  train::Engine engine(prompts, o, nowhere);
  const auto [b0, b1] = dist::slice(B);  // evaluation: this rank's rows (training: the engine's)
  std::vector<int64_t> mine(b1 - b0);
  std::iota(mine.begin(), mine.end(), b0);
  int64_t k = 0;
  auto step = [&] {
    if (training) {
      prompts.set_training(true);
      (void)engine.step(k++, c.train.lr);
    } else {
      torch::NoGradGuard ng;
      prompts.set_training(false);
      (void)method->score(prompts.batch(mine)).sum().item<float>();
    }
    if (device.is_cuda()) torch::cuda::synchronize();
    dist::barrier();
  };
  step();  // warm-up
  const int reps = 3;
  double t0 = now_seconds();
  for (int r = 0; r < reps; ++r) step();
  const double dt = (now_seconds() - t0) / reps;
  // Generator FLOPs per sample (Q queries, width H, FFN I, L layers) + its head to D·r.
  const double H = c.cora.hidden > 0 ? c.cora.hidden : 2.0 * c.cf.dim, Q = c.cora.n_queries,
               I = c.cora.intermediate, r = c.cora.rank;
  const double gen = B * (c.cora.layers * Q * 2.0 * (6.0 * H * H + 2.0 * H * I) +
                          2.0 * Q * H * lc.hidden_size * r);
  const double llm = llm_forward_flops(lc, B, T, c.cora.rank);
  // Training: the frozen LLM needs input gradients only (×2); the generator trains (×3).
  const double flops = training ? 2.0 * llm + 3.0 * gen : llm + gen;
  const double peak = matmul_peak(device, dtype);
  return {{"bench", training ? "train" : "eval"}, {"method", c.method}, {"device", device.str()},
          {"threads", current_threads()}, {"world", dist::world()}, {"batch", B},
          {"micro_batch", training && c.train.micro_batch_size > 0 ? c.train.micro_batch_size : B},
          {"tokens", T}, {"trainable_params", n_params}, {"samples_per_s", B / dt},
          {"tokens_per_s", B * T / dt}, {"gflops", flops / dt / 1e9},
          {"matmul_peak_gflops", peak}, {"peak_fraction", flops / dt / 1e9 / peak},
          {"peak_rss_mib", peak_rss_mib()}};
}

// A planted split of n rows for the scale benchmarks: `users` users (0: n / 25), 20,000 items, a
// user likes the items of their group (with 10 % label noise); histories hold the last 10
// positives.
data::Split scale_split(int64_t n, const std::string& name, uint64_t seed, int64_t users = 0) {
  std::mt19937_64 rng(seed);
  if (users <= 0) users = std::max<int64_t>(1, n / 25);
  const int64_t items = 20000;
  data::Split s;
  s.name = name;
  s.hist_offsets.push_back(0);
  std::vector<std::vector<int64_t>> hist(users + 1);
  for (int64_t r = 0; r < n; ++r) {
    int64_t u = 1 + static_cast<int64_t>(rng() % users), i = 1 + static_cast<int64_t>(rng() % items);
    float y = ((u % 5) == (i % 5)) != (rng() % 10 == 0) ? 1.f : 0.f;
    auto& h = hist[u];
    s.push_row(u, i, y, 1000000000 + r, 1, h);
    if (y > 0) {
      h.push_back(i);
      if (h.size() > 10) h.erase(h.begin());
    }
  }
  return s;
}

json bench_metrics(int64_t rows) {
  data::Split s = scale_split(rows, "test", 1);
  std::mt19937_64 rng(2);
  std::normal_distribution<float> noise(0.f, 1.f);
  std::vector<float> scores(s.size());
  for (size_t r = 0; r < s.size(); ++r) scores[r] = s.label[r] + noise(rng);
  double t0 = now_seconds();
  eval::EvalResult e = eval::evaluate(s, scores);
  double dt = now_seconds() - t0;
  return {{"bench", "metrics"}, {"rows", rows}, {"users", e.uauc_users + e.uauc_skipped},
          {"seconds", dt}, {"rows_per_s", rows / dt}, {"auc", e.auc}, {"uauc", e.uauc},
          {"peak_rss_mib", peak_rss_mib()}};
}

json bench_split(config::Config c, int64_t rows, int64_t users) {
  if (method::find_method(c.method).kind != method::Kind::cf)
    throw Error::key("method", "bench split needs a CF method (mf, lightgcn, sasrec)");
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("cora-bench-split-" + std::to_string(::getpid()));
  double t0 = now_seconds();
  {
    data::Items items;
    items.title.assign(20001, "");
    for (int64_t i = 1; i <= 20000; ++i) items.title[i] = "Item " + std::to_string(i);
    io::make_dirs((dir / "data").string());
    data::write_items(items, (dir / "data/items.tsv").string());
    if (users <= 0) users = std::max<int64_t>(1, rows / 25);
    data::write_split(scale_split(rows, "train", 1, users), (dir / "data/train.tsv").string());
    data::write_split(scale_split(rows / 10, "valid", 2, users), (dir / "data/valid.tsv").string());
    data::write_split(scale_split(rows / 20, "valid_small", 3, users), (dir / "data/valid_small.tsv").string());
    data::write_split(scale_split(rows / 10, "test", 4, users), (dir / "data/test.tsv").string());
  }
  const double generate_s = now_seconds() - t0;
  const double rss_before = peak_rss_mib();
  const uint64_t bytes = fs::file_size(dir / "data/train.tsv");
  c.data.dir = (dir / "data").string();
  c.train.epochs = 1;
  c.train.min_epochs = 0;
  t0 = now_seconds();
  data::Dataset d = data::load_dataset(c.data.dir);
  const double load_s = now_seconds() - t0;
  t0 = now_seconds();
  auto sum = method::train(c, (dir / "run").string(), false);  // loads again, trains, evaluates
  const double train_s = now_seconds() - t0;
  std::error_code ec;
  fs::remove_all(dir, ec);
  return {{"bench", "split"},          {"method", c.method},
          {"rows", rows},              {"users", users},
          {"train_tsv_mb", bytes / 1e6},
          {"generate_s", generate_s},  {"load_s", load_s},
          {"load_rows_per_s", (d.train.size() + d.valid.size() + d.valid_small.size() + d.test.size()) / load_s},
          {"train_eval_s", train_s},   {"epochs", sum.epochs_run},
          {"test_auc", sum.test.auc},  {"test_uauc", sum.test.uauc},
          {"threads", current_threads()},
          {"peak_rss_mib_generating", rss_before}, {"peak_rss_mib", peak_rss_mib()}};
}

}  // namespace

int bench(const BenchArgs& a) {
  if (a.what == "prepare") return bench_prepare(a);
  if (a.what == "metrics") {
    init_logging("warn");
    std::cout << bench_metrics(a.rows).dump() << std::endl;
    return 0;
  }
  if (a.config.empty())
    throw UsageError("bench needs --config (e.g. configs/ml1m/mf.json, configs/bench/llm_cpu_small.json)");
  config::Config c = config::load(a.config, a.overrides);
  init_logging("warn");
  set_threads(c.threads);
  dist::init_from_env();  // train / eval under torchrun: data parallel
  json j;
  if (a.what == "cf")
    j = bench_cf(c);
  else if (a.what == "llm")
    j = bench_llm(c);
  else if (a.what == "train" || a.what == "eval")
    j = bench_method(c, a.what == "train");
  else if (a.what == "split")
    j = bench_split(c, a.rows, a.users);
  else
    throw UsageError("bench target '" + a.what +
                     "' is not available (cf, llm, train, eval, prepare, metrics, split)");
  if (dist::is_main()) std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace cora::app
