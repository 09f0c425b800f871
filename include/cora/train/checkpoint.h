// Checkpoints shared by every trainer: ckpt/latest.safetensors (trained tensors as
// `model.<name>` and optimizer state as `optim.<key>`), ckpt/best.safetensors (best tensors, plain
// names) and ckpt/progress.json written last, as the commit point.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cora/train/adam.h"
#include "cora/train/run_dir.h"

namespace cora::train {

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

/// Detached copies (the in-memory best state).
Named snapshot(const Named& params);

/// Writes latest (and best, unless `best` is null: no selection), then progress.json.
void save_checkpoint(const RunDir& run, const Named& params, const Adam& opt, const Named* best,
                     const Progress& p, std::map<std::string, std::string> meta);

/// Restores `params` and `opt` from ckpt/latest.safetensors (checked against `p.epoch`) and
/// returns the best tensors from ckpt/best.safetensors (empty when the run keeps none).
Named load_checkpoint(const RunDir& run, const Named& params, Adam& opt, const Progress& p);

/// Completes a checkpoint that a killed process wrote whole but had not finished renaming into
/// place (io::finish_files_atomic); removes the pieces of one that was not whole.
void finish_checkpoint(const RunDir& run);

/// Resumes from `run`'s checkpoint: fills `p`, restores params and optimizer, drops
/// metrics.jsonl records past the checkpoint, logs; returns the best tensors.
Named resume(const RunDir& run, const Named& params, Adam& opt, Progress& p,
             const std::string& metric_name);

/// Early-stopping bookkeeping after the evaluation of `epoch` (p.step already counts it):
/// true when `metric` is a new best (the caller snapshots the weights). A NaN metric is never
/// a new best unless nothing else has been seen, and any number beats a NaN best.
bool record_evaluation(Progress& p, double metric, int64_t epoch);

/// Copies tensors named like `params` (with `prefix`) from `t`, checking names and shapes.
void copy_named(const Named& params, const std::map<std::string, torch::Tensor>& t,
                const std::string& source, const std::string& prefix = "");

}  // namespace cora::train
