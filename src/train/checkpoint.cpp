// Atomic checkpoint writing and exact restoring.
#include "cora/train/checkpoint.h"

#include <spdlog/spdlog.h>

#include "cora/core/error.h"
#include "cora/io/safetensors.h"
#include "cora/io/files.h"

#include <cmath>

namespace cora::train {

Named snapshot(const Named& params) {
  Named c;
  for (const auto& [n, p] : params) c.emplace_back(n, p.detach().clone());
  return c;
}

void copy_named(const Named& params, const std::map<std::string, torch::Tensor>& t,
                const std::string& source, const std::string& prefix) {
  torch::NoGradGuard ng;
  for (const auto& [name, p] : params) {
    auto it = t.find(prefix + name);
    if (it == t.end()) throw Error::at(source, 0, "tensor '" + prefix + name + "' is missing");
    if (!it->second.sizes().equals(p.sizes()))
      throw Error::at(source, 0, "tensor '" + prefix + name + "' has shape " +
                                     c10::str(it->second.sizes()) + ", the model needs " +
                                     c10::str(p.sizes()) +
                                     " (hint: the checkpoint belongs to another config or split)");
    p.copy_(it->second);
  }
}

void save_checkpoint(const RunDir& run, const Named& params, const Adam& opt, const Named* best,
                     const Progress& p, std::map<std::string, std::string> meta) {
  if (!run.writer()) return;
  Named latest;
  for (const auto& [n, t] : params) latest.emplace_back("model." + n, t);
  for (auto& [k, v] : opt.state()) latest.emplace_back("optim." + k, v);
  meta["epoch"] = std::to_string(p.epoch);
  meta["step"] = std::to_string(p.step);
  // One change: all three files are written beside the old ones first, so running out of space
  // (or a read-only file system) leaves the previous checkpoint whole; progress.json, renamed
  // last, is the commit point.
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back(run.ckpt("latest.safetensors"),
                     io::safetensors_bytes(run.ckpt("latest.safetensors"), latest, meta));
  latest.clear();
  // Empty while training before the first evaluation (nothing selected yet); a run with no
  // trained tensors (ICL) keeps its empty best, so its run directory stays complete.
  if (best && (!best->empty() || params.empty())) {
    meta["epoch"] = std::to_string(p.best_epoch);
    files.emplace_back(run.ckpt("best.safetensors"),
                       io::safetensors_bytes(run.ckpt("best.safetensors"), *best, meta));
  }
  files.emplace_back(run.ckpt("progress.json"), RunDir::progress_json(p));
  io::write_files_atomic(files);
}

Named load_checkpoint(const RunDir& run, const Named& params, Adam& opt, const Progress& p) {
  const std::string path = run.ckpt("latest.safetensors");
  {
    io::SafetensorsFile f(path);
    const auto& md = f.header().metadata;
    auto it = md.find("epoch"), st = md.find("step");
    if (it == md.end() || std::stoll(it->second) != p.epoch ||
        (st != md.end() && std::stoll(st->second) != p.step))
      throw Error::at(path, 0, "does not match progress.json (hint: the run was interrupted "
                               "while saving; start a fresh run)");
  }
  auto all = io::load_safetensors(path);
  copy_named(params, all, path, "model.");
  std::map<std::string, torch::Tensor> os;
  for (auto& [k, v] : all)
    if (k.rfind("optim.", 0) == 0) os[k.substr(6)] = v;
  if (!params.empty()) opt.load_state(os);
  Named best;
  // Stopped before its first evaluation: nothing was selected yet (a file from an older cora may
  // hold no tensors), so there is no best to restore.
  if (p.best_epoch < 0 || !io::exists(run.ckpt("best.safetensors"))) return best;
  auto b = io::load_safetensors(run.ckpt("best.safetensors"));
  for (const auto& [n, t] : params) {
    auto it = b.find(n);
    if (it == b.end()) throw Error::at(run.ckpt("best.safetensors"), 0, "tensor '" + n + "' is missing");
    best.emplace_back(n, it->second.to(t.device()));
  }
  return best;
}

void finish_checkpoint(const RunDir& run) {
  if (run.writer() &&
      io::finish_files_atomic({run.ckpt("latest.safetensors"), run.ckpt("best.safetensors"),
                               run.ckpt("progress.json")}))
    spdlog::warn("{}: completed a checkpoint that an interrupted process had written but not "
                 "yet renamed into place", run.path());
}

Named resume(const RunDir& run, const Named& params, Adam& opt, Progress& p,
             const std::string& metric_name) {
  auto prev = run.read_progress();
  if (!prev) throw Error::at(run.path(), 0, "has no checkpoint to resume (hint: drop --resume)");
  p = *prev;
  Named best = load_checkpoint(run, params, opt, p);
  run.truncate_metrics_after(p.epoch);
  spdlog::info("resuming after epoch {} (best epoch {}, {} = {:.4f}){}", p.epoch, p.best_epoch,
               metric_name, p.best_metric, p.done ? "; the run had finished, re-evaluating" : "");
  return best;
}

bool record_evaluation(Progress& p, double metric, int64_t epoch) {
  p.epoch = epoch;
  const bool better = p.best_epoch < 0 ||
                      (!std::isnan(metric) && (std::isnan(p.best_metric) || metric > p.best_metric));
  if (!better) {
    ++p.bad_epochs;
    return false;
  }
  p.best_metric = metric;
  p.best_epoch = epoch;
  p.best_step = p.step;
  p.bad_epochs = 0;
  return true;
}

}  // namespace cora::train
