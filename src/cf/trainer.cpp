// The CF training loop: deterministic per-epoch order, fused Adam, early stopping,
// periodic atomic checkpoints (weights, optimizer, progress) and exact resume.
#include "cora/cf/trainer.h"

#include <spdlog/spdlog.h>

#include <ATen/CPUGeneratorImpl.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/train/adam.h"
#include "cora/train/checkpoint.h"
#include "cora/train/run_dir.h"

namespace cora::cf {
namespace {

using train::Named;

Named weights(CfModelImpl& m) {
  Named out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

std::map<std::string, std::string> meta(const CfModelImpl& m, int64_t epoch) {
  return {{"format", "cora-cf-v1"}, {"method", m.kind()},
          {"n_users", std::to_string(m.n_users())}, {"n_items", std::to_string(m.n_items())},
          {"dim", std::to_string(m.dim())}, {"epoch", std::to_string(epoch)}};
}

// Seed of epoch e's data order and dropout: independent of how the run got there (resume).
uint64_t epoch_seed(uint64_t seed, int64_t epoch) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

}  // namespace

void export_representations(CfModelImpl& model, const std::string& path) {
  torch::NoGradGuard ng;
  model.eval();
  auto all_items = torch::arange(model.n_items(), torch::kInt64).to(model.parameters()[0].device());
  Named t{{"item", model.item_repr(all_items)}};
  if (model.history_len() == 0) {  // table models: one representation per user
    Rows r;
    r.uid = torch::arange(model.n_users(), torch::kInt64).to(all_items.device());
    t.emplace_back("user", model.user_repr(r));
  }
  io::make_dirs(std::filesystem::path(path).parent_path().string());
  io::save_safetensors(path, t, meta(model, -1));
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

TrainSummary train(const config::Config& cfg, const std::string& out_dir, bool resume) {
  const auto& tc = cfg.train;
  set_threads(cfg.threads);
  torch::Device device(resolve_device(cfg.device));
  data::Dataset data = data::load_dataset(cfg.data.dir);
  spdlog::info("data {}: {} users, {} items; rows train {} valid {} test {}", cfg.data.dir,
               data.n_users - 1, data.n_items - 1, data.train.size(), data.valid.size(),
               data.test.size());

  train::RunDir run(out_dir);
  auto prev = resume ? run.read_progress() : std::nullopt;
  if (!resume && io::exists(run.ckpt("progress.json")))
    throw Error::at(out_dir, 0, "already holds a run (hint: pass --resume, or choose a new --out)");
  run.write_config(cfg);

  seed_everything(tc.seed);
  CfModel model = make_model(cfg.method, cfg.cf, data.n_users, data.n_items, data.train);
  model->to(device);
  const int64_t L = model->history_len();
  Rows train_rows = make_rows(data.train, L), valid_rows = make_rows(data.split(tc.valid_split), L);
  Named params = weights(*model);
  std::vector<torch::Tensor> plist;
  for (auto& [n, p] : params) plist.push_back(p);
  train::Adam opt(plist, {.weight_decay = tc.weight_decay, .decoupled = false});

  train::Progress prog;
  Named best;  // in-memory copy of the best weights
  if (prev) best = train::resume(run, params, opt, prog, tc.selection_metric);
  auto save = [&](bool done) {
    prog.done = done;
    train::save_checkpoint(run, params, opt, best, prog, meta(*model, prog.epoch));
  };

  const int64_t N = train_rows.size();
  const int64_t steps_per_epoch =
      tc.iterations > 0 ? tc.iterations : (N + tc.batch_size - 1) / tc.batch_size;
  const double t0 = now_seconds() - prog.elapsed_s;
  double last_ckpt = now_seconds(), last_log = 0, train_time = 0;
  int64_t rows_seen = 0;
  while (!prog.done && prog.epoch + 1 < tc.epochs) {
    const int64_t epoch = prog.epoch + 1;
    const uint64_t es = epoch_seed(tc.seed, epoch);
    torch::manual_seed(es);  // dropout
    auto gen = at::detail::createCPUGenerator(es);
    auto perm = torch::randperm(N, gen, torch::kInt64);
    model->train();
    double loss_sum = 0, t_ep = now_seconds();
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      int64_t begin = (s * tc.batch_size) % N, n = std::min(tc.batch_size, N - begin);
      auto batch = train_rows.index(perm.narrow(0, begin, n)).to(device);
      // Mean BCE over the batch, accumulated over micro-batches (same gradient, less memory).
      const int64_t mb = tc.micro_batch_size > 0 ? tc.micro_batch_size : n;
      opt.zero_grad();
      double batch_loss = 0;
      for (int64_t m0 = 0; m0 < n; m0 += mb) {
        auto b = batch.index(torch::arange(m0, std::min(n, m0 + mb), torch::kInt64).to(device));
        auto loss = torch::binary_cross_entropy_with_logits(model->score(b), b.label,
                                                            {}, {}, at::Reduction::Sum) / n;
        loss.backward();
        batch_loss += loss.item<double>();
      }
      opt.step(tc.lr);
      loss_sum += batch_loss;
      rows_seen += n;
      ++prog.step;
    }
    train_time += now_seconds() - t_ep;
    auto scores = predict(*model, valid_rows, tc.eval_batch_size, device);
    const auto& vs = data.split(tc.valid_split);
    double v_auc = eval::auc(scores, vs.label), v_uauc = eval::uauc(vs.uid, scores, vs.label).uauc;
    double metric = tc.selection_metric == "auc" ? v_auc : v_uauc;
    prog.epoch = epoch;
    prog.elapsed_s = now_seconds() - t0;
    run.append_metrics({prog.step, epoch, loss_sum / steps_per_epoch, tc.lr, v_auc, v_uauc,
                        prog.elapsed_s});
    if (train::record_evaluation(prog, metric, epoch)) best = train::snapshot(params);
    bool stop = (prog.bad_epochs >= tc.patience && epoch + 1 >= tc.min_epochs) ||
                epoch + 1 >= tc.epochs;
    if (now_seconds() - last_log > 5 || stop || epoch == 0) {
      spdlog::info("epoch {:4d} step {:6d} loss {:.4f} valid auc {:.4f} uauc {:.4f} | best {:.4f} "
                   "@ {} | {:.1f}s",
                   epoch, prog.step, loss_sum / steps_per_epoch, v_auc, v_uauc, prog.best_metric,
                   prog.best_epoch, prog.elapsed_s);
      last_log = now_seconds();
    }
    if (stop || now_seconds() - last_ckpt > 60) {
      save(stop);
      last_ckpt = now_seconds();
    }
  }
  if (best.empty()) best = train::snapshot(params);  // train.epochs = 0: the initial weights
  if (!prog.done) save(true);  // e.g. resumed a run whose last epoch was already reached

  // Test (and valid) with the best weights.
  {
    torch::NoGradGuard ng;
    for (auto& [n, p] : params)
      for (auto& [bn, bp] : best)
        if (bn == n) p.copy_(bp);
  }
  TrainSummary sum;
  std::vector<float> scores;
  for (auto [split, res] : {std::pair{&data.split(tc.valid_split), &sum.valid},
                            {&data.test, &sum.test}}) {
    scores = predict(*model, make_rows(*split, L), tc.eval_batch_size, device);
    *res = eval::evaluate(*split, scores);
    run.write_eval(*res, *split, scores);
  }
  run.write_final(sum.valid, sum.test, prog, tc.selection_metric, cfg.method);
  export_representations(*model, run.path() + "/export/cf_repr.safetensors");
  sum.best_epoch = prog.best_epoch;
  sum.best_step = prog.best_step;
  sum.epochs_run = prog.epoch + 1;
  sum.seconds = now_seconds() - t0;
  sum.rows_per_s = train_time > 0 ? rows_seen / train_time : 0;
  spdlog::info("best epoch {}: valid auc {:.4f} uauc {:.4f} | test auc {:.4f} uauc {:.4f} "
               "({} users, {} skipped)",
               prog.best_epoch, sum.valid.auc, sum.valid.uauc, sum.test.auc, sum.test.uauc,
               sum.test.uauc_users, sum.test.uauc_skipped);
  return sum;
}

CfModel load_run(const std::string& run_dir, const data::Dataset& data,
                 const torch::Device& device) {
  train::RunDir run(run_dir, /*writer=*/false);
  config::Config cfg = run.read_config();
  if (!cfg.is_cf_method())
    throw Error::at(run_dir, 0, "is a '" + cfg.method + "' run, not a CF run (mf, lightgcn, sasrec)");
  std::string path = run.ckpt("best.safetensors");
  io::SafetensorsFile f(path);
  auto& md = f.header().metadata;
  if (!md.count("n_users") || !md.count("n_items"))
    throw Error::at(path, 0, "missing n_users/n_items metadata (not a cora CF checkpoint)");
  // The model keeps its trained table sizes; ids of `data` beyond them use the zero fallback.
  const auto& train_split = data.dir == cfg.data.dir ? data.train : data::load_dataset(cfg.data.dir).train;
  CfModel m = make_model(cfg.method, cfg.cf, std::stoll(md.at("n_users")),
                         std::stoll(md.at("n_items")), train_split);
  train::copy_named(weights(*m), io::load_safetensors(path), path);
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  m->to(device);
  m->eval();
  return m;
}

eval::EvalResult evaluate_run(const std::string& run_dir, const std::string& split_name) {
  train::RunDir run(run_dir);
  config::Config cfg = run.read_config();
  set_threads(cfg.threads);
  torch::Device device(resolve_device(cfg.device));
  data::Dataset data = data::load_dataset(cfg.data.dir);
  const data::Split& split = data.split(split_name);
  CfModel m = load_run(run_dir, data, device);
  auto scores = predict(*m, make_rows(split, m->history_len()), cfg.train.eval_batch_size, device);
  auto r = eval::evaluate(split, scores);
  run.write_eval(r, split, scores);
  return r;
}

}  // namespace cora::cf
