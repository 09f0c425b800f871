// The recipes' common parts and the dispatch on the method's kind.
#include <spdlog/spdlog.h>

#include <numeric>
#include <random>

#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/train/run_dir.h"
#include "method/recipe.h"

namespace cora::method {

train::EngineOptions engine_options(const config::Config& c, Kind kind,
                                    std::map<std::string, std::string> meta) {
  const auto& t = c.train;
  train::EngineOptions o;
  o.seed = t.seed;
  o.batch_size = t.batch_size;
  o.micro_batch_size = t.micro_batch_size;
  o.iterations = t.iterations;
  o.epochs = t.epochs;
  o.patience = t.patience;
  o.min_epochs = t.min_epochs;
  o.epochs_per_invocation = t.epochs_per_invocation;
  o.checkpoint_every_s = t.checkpoint_every_s;
  o.lr = t.lr;
  o.warmup_start_lr = t.warmup_start_lr;
  o.min_lr = t.min_lr;
  o.warmup_steps = t.warmup_steps;
  o.grad_clip = t.grad_clip;
  o.metric_name = t.selection_metric;
  o.meta = std::move(meta);
  if (kind == Kind::cf) {
    o.schedule = train::Schedule::constant;
    o.adam = {.weight_decay = t.weight_decay, .decoupled = false};
    o.decay = train::DecayRule::all;
  } else {
    o.schedule = t.schedule == "reference" ? train::Schedule::reference : train::Schedule::warmup_cosine;
    o.adam = {.weight_decay = t.weight_decay, .decoupled = true};
    o.decay = train::DecayRule::matrices;
  }
  return o;
}

train::EngineOptions engine_options(const config::Config& c) {
  return engine_options(c, find_method(c.method).kind, {{"method", c.method}});
}

train::Validation validation_of(const data::Split& split, const std::vector<float>& scores,
                                const std::string& metric) {
  const double auc = eval::auc(scores, split.label), uauc = eval::uauc(split.uid, scores, split.label).uauc;
  return {metric == "auc" ? auc : uauc, {{"auc", auc}, {"uauc", uauc}}};
}

TrainSummary finish_run(const train::RunDir& run, const config::Config& c,
                        const train::EngineResult& r, double t0,
                        const std::function<std::vector<float>(const data::Split&)>& score,
                        const data::Split& valid, const data::Split& test) {
  TrainSummary sum;
  const auto& prog = r.progress;
  sum.best_epoch = prog.best_epoch;
  sum.best_step = prog.best_step;
  sum.epochs_run = prog.epoch + 1;
  sum.samples_per_s = r.train_seconds > 0 ? r.samples / r.train_seconds : 0;
  sum.finished = r.finished;
  if (r.finished) {
    for (auto [split, res] : {std::pair{&valid, &sum.valid}, {&test, &sum.test}}) {
      auto sc = score(*split);
      *res = eval::evaluate(*split, sc);
      run.write_eval(*res, *split, sc);
    }
    run.write_final(sum.valid, sum.test, prog, c.train.selection_metric, c.method);
    spdlog::info("best epoch {}: valid auc {:.4f} uauc {:.4f} | test auc {:.4f} uauc {:.4f} "
                 "({} users, {} skipped)",
                 prog.best_epoch, sum.valid.auc, sum.valid.uauc, sum.test.auc, sum.test.uauc,
                 sum.test.uauc_users, sum.test.uauc_skipped);
  }
  sum.seconds = now_seconds() - t0;
  return sum;
}

void check_fresh(const std::string& out_dir, bool resume) {
  if (!resume && io::exists(out_dir + "/ckpt/progress.json"))
    throw Error::at(out_dir, 0, "already holds a run (hint: pass --resume, or choose a new --out)");
}

data::Split selection_split(const data::Split& full, int64_t limit) {
  if (limit <= 0 || static_cast<size_t>(limit) >= full.size()) return full;
  // A fixed sample (seed 2023, independent of train.seed) so every method and seed selects on
  // the same rows; kept in the split's order.
  std::vector<int64_t> idx(full.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(2023);
  for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
  idx.resize(limit);
  std::sort(idx.begin(), idx.end());
  data::Split out;
  out.name = full.name;
  out.hist_offsets.push_back(0);
  for (int64_t i : idx)
    out.push_row(full.uid[i], full.iid[i], full.label[i], full.timestamp[i], full.not_cold[i], full.history(i));
  return out;
}

TrainSummary train(const config::Config& cfg, const std::string& out_dir, bool resume) {
  const MethodInfo& m = find_method(cfg.method);
  check_keys(cfg);
  switch (m.kind) {
    case Kind::cf: return train_cf(cfg, out_dir, resume);
    case Kind::llm: return train_llm(cfg, out_dir, resume);
    case Kind::pretrain: break;
  }
  throw Error::key("method", "\"" + cfg.method + "\" configs run with `cora pretrain`");
}

eval::EvalResult evaluate_run(const std::string& run_dir, const std::string& split) {
  train::RunDir run(run_dir, /*writer=*/false);
  config::Config c = run.read_config();
  switch (find_method(c.method).kind) {
    case Kind::cf: return evaluate_cf(run_dir, c, split);
    case Kind::llm: return evaluate_llm(run_dir, c, split);
    case Kind::pretrain: break;
  }
  throw Error::at(run_dir, 0, "is a pretraining run (a model directory), not a recommender run");
}

}  // namespace cora::method
