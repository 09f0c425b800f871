// Run-directory files; every write is atomic except the append-only metrics.jsonl.
#include "cora/train/run_dir.h"

#include <nlohmann/json.hpp>

#include <sstream>

#include "cora/core/error.h"
#include "cora/io/files.h"

namespace cora::train {
using json = nlohmann::json;

RunDir::RunDir(std::string path, bool writer) : path_(std::move(path)), writer_(writer) {
  if (!writer_) return;
  io::make_dirs(path_ + "/ckpt");
  io::check_writable(path_ + "/ckpt");
}

void RunDir::write_config(const config::Config& c) const {
  if (writer_) io::write_file_atomic(path_ + "/config.resolved.json", config::to_json(c));
}

config::Config RunDir::read_config() const {
  std::string p = path_ + "/config.resolved.json";
  if (!io::exists(p))
    throw Error::at(p, 0, "missing (hint: --run must name a directory written by `cora train`)");
  return config::load(p);
}

void RunDir::append_metrics(const EvalRecord& r) const {
  if (!writer_) return;
  json valid = json::object();
  for (const auto& [k, v] : r.valid) valid[k] = v;
  json j = {{"step", r.step},     {"epoch", r.epoch}, {"loss", r.loss}, {"lr", r.lr},
            {"valid", valid},     {"elapsed_s", r.elapsed_s}};
  io::append_line(path_ + "/metrics.jsonl", j.dump());
}

void RunDir::truncate_metrics_after(int64_t epoch) const {
  std::string p = path_ + "/metrics.jsonl";
  if (!writer_ || !io::exists(p)) return;
  std::istringstream in(io::read_file(p));
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("epoch", int64_t{0}) <= epoch) kept += line + "\n";
  }
  io::write_file_atomic(p, kept);
}

void RunDir::write_progress(const Progress& p) const {
  if (!writer_) return;
  io::write_file_atomic(ckpt("progress.json"), progress_json(p));
}

std::string RunDir::progress_json(const Progress& p) {
  json j = {{"epoch", p.epoch},           {"step", p.step},
            {"best_epoch", p.best_epoch}, {"best_step", p.best_step},
            {"best_metric", p.best_metric}, {"bad_epochs", p.bad_epochs},
            {"elapsed_s", p.elapsed_s},   {"done", p.done},
            {"epoch_step", p.epoch_step}, {"epoch_loss", p.epoch_loss}};
  return j.dump(2) + "\n";
}

std::optional<Progress> RunDir::read_progress() const {
  std::string path = ckpt("progress.json");
  if (!io::exists(path)) return std::nullopt;
  json j = json::parse(io::read_file(path), nullptr, false);
  if (j.is_discarded()) throw Error::at(path, 0, "not valid JSON (hint: remove the run directory)");
  if (!j.is_object() || !j.contains("epoch") || !j.contains("best_metric"))
    throw Error::at(path, 0, "is not a checkpoint of this cora (written before the one training "
                             "engine?) (hint: start a fresh run in another directory)");
  Progress p;
  p.epoch = j.at("epoch");
  p.step = j.at("step");
  p.best_epoch = j.at("best_epoch");
  p.best_step = j.at("best_step");
  p.best_metric = j.at("best_metric");
  p.bad_epochs = j.at("bad_epochs");
  p.elapsed_s = j.at("elapsed_s");
  p.done = j.at("done");
  p.epoch_step = j.value("epoch_step", int64_t{0});
  p.epoch_loss = j.value("epoch_loss", 0.0);
  return p;
}

void RunDir::write_final(const eval::EvalResult& valid, const eval::EvalResult& test,
                         const Progress& p, const std::string& selection_metric,
                         const std::string& method) const {
  if (!writer_) return;
  json j = {{"method", method},
            {"valid", json::parse(eval::to_json(valid))},
            {"test", json::parse(eval::to_json(test))},
            {"best_step", p.best_step},
            {"best_epoch", p.best_epoch},
            {"epochs_run", p.epoch + 1},
            {"selection_metric", selection_metric},
            {"elapsed_s", p.elapsed_s}};
  io::write_file_atomic(path_ + "/metrics.json", j.dump(2) + "\n");
}

void RunDir::write_eval(const eval::EvalResult& r, const data::Split& split,
                        const std::vector<float>& scores) const {
  if (!writer_) return;
  io::make_dirs(path_ + "/eval");
  io::write_file_atomic(path_ + "/eval/" + r.split + ".json", eval::to_json(r) + "\n");
  eval::write_scores_tsv(split, scores, path_ + "/eval/" + r.split + "_scores.tsv");
}

}  // namespace cora::train
