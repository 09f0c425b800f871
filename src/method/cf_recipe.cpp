// The CF recipe: MF, LightGCN or SASRec trained through the engine (Adam with L2, BCE on the
// labels, evaluation every epoch), the exported representations, and a finished CF run loaded
// back as the LLM methods' frozen collaborative source.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <numeric>

#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/method/cf_run.h"
#include "cora/train/checkpoint.h"
#include "cora/train/dist.h"
#include "method/recipe.h"

namespace cora::method {
namespace {

// cf::predict over the ranks: each scores a run of whole batches, the scores are gathered.
std::vector<float> predict_sharded(cf::CfModelImpl& model, const cf::Rows& rows, int64_t batch,
                           const torch::Device& device) {
  std::vector<int64_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  return dist::score_sharded(order, batch, [&](const std::vector<int64_t>& mine) {
    if (!dist::active()) return cf::predict(model, rows, batch, device);
    return cf::predict(model, rows.index(torch::tensor(mine, torch::kInt64)), batch, device);
  });
}

train::Named weights(cf::CfModelImpl& m) {
  train::Named out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

std::map<std::string, std::string> meta(const cf::CfModelImpl& m) {
  return {{"format", "cora-cf-v1"}, {"method", m.kind()},
          {"n_users", std::to_string(m.n_users())}, {"n_items", std::to_string(m.n_items())},
          {"dim", std::to_string(m.dim())}};
}

class CfTrainable : public train::Trainable {
 public:
  CfTrainable(cf::CfModel model, cf::Rows train_rows, const data::Split& valid,
              const config::TrainConfig& t, torch::Device device)
      : model_(std::move(model)), train_(std::move(train_rows)), valid_(valid),
        valid_rows_(cf::make_rows(valid, model_->history_len())), t_(t), device_(device) {}
  train::Named parameters() override { return weights(*model_); }
  void set_training(bool on) override { model_->train(on); }
  int64_t rows() const override { return train_.size(); }
  torch::Tensor loss_sum(const std::vector<int64_t>& rows) override {
    auto b = train_.index(torch::tensor(rows, torch::kInt64)).to(device_);
    return torch::binary_cross_entropy_with_logits(model_->score(b), b.label, {}, {},
                                                   at::Reduction::Sum);
  }
  train::Validation validate() override {
    return validation_of(valid_, predict_sharded(*model_, valid_rows_, t_.eval_batch_size, device_),
                         t_.selection_metric);
  }

 private:
  cf::CfModel model_;
  cf::Rows train_;
  const data::Split& valid_;
  cf::Rows valid_rows_;
  const config::TrainConfig& t_;
  torch::Device device_;
};

}  // namespace

void export_representations(cf::CfModelImpl& model, const std::string& path) {
  torch::NoGradGuard ng;
  model.eval();
  auto all_items = torch::arange(model.n_items(), torch::kInt64).to(model.parameters()[0].device());
  train::Named t{{"item", model.item_repr(all_items)}};
  if (model.history_len() == 0) {  // table models: one representation per user
    cf::Rows r;
    r.uid = torch::arange(model.n_users(), torch::kInt64).to(all_items.device());
    t.emplace_back("user", model.user_repr(r));
  }
  io::make_dirs(std::filesystem::path(path).parent_path().string());
  auto md = meta(model);
  md["epoch"] = "-1";
  io::save_safetensors(path, t, md);
}

TrainSummary train_cf(const config::Config& cfg, const std::string& out_dir, bool resume) {
  const auto& tc = cfg.train;
  const MethodInfo& m = find_method(cfg.method);
  set_threads(cfg.threads);
  dist::on_main([&] { check_fresh(out_dir, resume); });
  const double t0 = now_seconds();
  torch::Device device(dist::device_for(torch::Device(resolve_device(cfg.device))));
  data::Dataset data = data::load_dataset(cfg.data.dir);
  spdlog::info("data {}: {} users, {} items; rows train {} valid {} test {}", cfg.data.dir,
               data.n_users - 1, data.n_items - 1, data.train.size(), data.valid.size(),
               data.test.size());
  train::RunDir run(out_dir, dist::is_main());
  run.write_config(cfg);
  seed_everything(tc.seed);
  cf::CfModel model = m.cf_factory(cfg.cf, data.n_users, data.n_items, data.train);
  model->to(device);
  const int64_t L = model->history_len();
  const data::Split valid = selection_split(data.split(tc.valid_split), tc.valid_limit);
  CfTrainable trainable(model, cf::make_rows(data.train, L), valid, tc, device);
  train::Engine engine(trainable, engine_options(cfg, Kind::cf, meta(*model)), run);
  auto r = engine.run(resume);
  auto score = [&](const data::Split& s) {
    return predict_sharded(*model, cf::make_rows(s, L), tc.eval_batch_size, device);
  };
  auto sum = finish_run(run, cfg, r, t0, score, valid, data.test);
  if (r.finished && dist::is_main())
    export_representations(*model, run.path() + "/export/cf_repr.safetensors");
  return sum;
}

cf::CfModel load_cf_run(const std::string& run_dir, const data::Dataset& data,
                        const torch::Device& device) {
  train::RunDir run(run_dir, /*writer=*/false);
  config::Config cfg = run.read_config();
  const MethodInfo& m = find_method(cfg.method);
  if (m.kind != Kind::cf)
    throw Error::at(run_dir, 0, "is a '" + cfg.method + "' run, not a CF run (mf, lightgcn, sasrec)");
  std::string path = run.ckpt("best.safetensors");
  io::SafetensorsFile f(path);
  auto& md = f.header().metadata;
  if (!md.count("n_users") || !md.count("n_items"))
    throw Error::at(path, 0, "missing n_users/n_items metadata (not a cora CF checkpoint)");
  // The model keeps its trained table sizes; ids of `data` beyond them use the zero fallback.
  const auto& train_split = data.dir == cfg.data.dir ? data.train : data::load_dataset(cfg.data.dir).train;
  cf::CfModel model = m.cf_factory(cfg.cf, std::stoll(md.at("n_users")), std::stoll(md.at("n_items")),
                                   train_split);
  train::copy_named(weights(*model), io::load_safetensors(path), path);
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  model->to(device);
  model->eval();
  return model;
}

eval::EvalResult evaluate_cf(const std::string& run_dir, const config::Config& cfg,
                             const std::string& split_name) {
  set_threads(cfg.threads);
  torch::Device device(dist::device_for(torch::Device(resolve_device(cfg.device))));
  data::Dataset data = data::load_dataset(cfg.data.dir);
  const data::Split& split = data.split(split_name);
  cf::CfModel m = load_cf_run(run_dir, data, device);
  auto scores = predict_sharded(*m, cf::make_rows(split, m->history_len()), cfg.train.eval_batch_size, device);
  auto r = eval::evaluate(split, scores);
  train::RunDir(run_dir, dist::is_main()).write_eval(r, split, scores);
  return r;
}

}  // namespace cora::method
