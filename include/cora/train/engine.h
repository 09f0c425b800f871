// The one training loop. Every method trains through it — the CF models, ICL/TALLRec/CoLLM/CoRA
// and `cora pretrain` — behind the Trainable interface (its trained tensors, the loss of some
// rows, a validation). The engine owns, once: the data order (passes of a seeded permutation),
// global batches split into micro-batches with gradient accumulation, per-sample dropout keys,
// the learning-rate schedule, clipping, the optimiser step, evaluation cadence, selection and
// early stopping, checkpoints with exact resume, metrics.jsonl and progress lines.
// Sample k of the stream is a function of (seed, k) alone, so under data parallelism (dist.h)
// each rank takes a contiguous slice of every global batch and the gradients are summed before
// clipping and the step: the result does not depend on the number of ranks.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cora/train/adam.h"
#include "cora/train/checkpoint.h"
#include "cora/train/run_dir.h"

namespace cora::train {

/// One validation: `metric` is maximised by selection; `values` are recorded in metrics.jsonl
/// under "valid" (e.g. auc and uauc, or perplexity).
struct Validation {
  double metric = 0;
  std::vector<std::pair<std::string, double>> values;
};

/// What the engine trains. Implementations live with the recipes (method/).
class Trainable {
 public:
  virtual ~Trainable() = default;
  /// The trained tensors, named as in checkpoints (empty: nothing to train, e.g. ICL).
  virtual Named parameters() = 0;
  virtual void set_training(bool on) = 0;
  /// Training rows (ids 0..rows()-1) that the engine orders.
  virtual int64_t rows() const = 0;
  /// Sum over `rows` of each row's loss, with a graph to parameters(). Dropout inside is keyed
  /// per row by the engine (cora::SampleKeys), so the sum does not depend on the micro-batching.
  virtual torch::Tensor loss_sum(const std::vector<int64_t>& rows) = 0;
  /// Validation of the current state (called in eval mode, without a graph).
  virtual Validation validate() = 0;
};

enum class Schedule {
  constant,       ///< lr at every step
  warmup_cosine,  ///< linear warm-up from warmup_start_lr, then cosine to min_lr at the last step
  reference,      ///< the official LinearWarmupCosineLRScheduler (LAVIS/MiniGPT-4, as CoRA runs
                  ///< it): while the global step < warmup_steps the lr ramps with the step
                  ///< *within the epoch*; then cosine over total steps counted from step 0
};
enum class DecayRule {
  all,       ///< every tensor (Adam's L2, the CF models)
  matrices,  ///< tensors of >= 2 dimensions whose name has no "norm" (AdamW conventions)
};

struct EngineOptions {
  uint64_t seed = 0;             ///< data order and dropout keys
  int64_t batch_size = 1;        ///< global rows per optimiser step
  int64_t micro_batch_size = 0;  ///< rows per forward/backward pass (0 = the whole batch)
  int64_t iterations = 0;        ///< steps per epoch (0 = one pass over the rows, last batch partial)
  int64_t epochs = 1;            ///< epochs at most; one evaluation after each
  int64_t max_steps = 0;         ///< steps at most over the whole run (0 = epochs × iterations)
  bool select = true;            ///< keep the best state by Validation::metric (false: the last)
  int64_t patience = 0;          ///< evaluations without improvement before stopping (0 = never)
  int64_t min_epochs = 0;        ///< never stop early before this many epochs
  int64_t epochs_per_invocation = 0;  ///< leave after this many epochs, resumable (0 = off)
  Schedule schedule = Schedule::constant;
  double lr = 1e-3, warmup_start_lr = 0, min_lr = 0;
  int64_t warmup_steps = 0;
  double grad_clip = 0;          ///< global-norm clipping (0 = off)
  AdamOptions adam;
  DecayRule decay = DecayRule::matrices;
  std::string metric_name = "auc";              ///< for log lines
  std::map<std::string, std::string> meta;      ///< checkpoint metadata (format, method, ...)
  double checkpoint_every_s = 60;               ///< checkpoint after an evaluation at most this often
};

/// Learning rate at optimiser step `step` of `total` (epochs of `steps_per_epoch` steps).
double learning_rate(const EngineOptions& o, int64_t step, int64_t total,
                     int64_t steps_per_epoch = 0);

struct EngineResult {
  Progress progress;
  bool finished = false;      ///< false: left early (epochs_per_invocation); resume to continue
  double train_seconds = 0;   ///< time in optimiser steps during this invocation
  int64_t samples = 0;        ///< rows trained during this invocation
};

class Engine {
 public:
  Engine(Trainable& model, EngineOptions o, const RunDir& run);
  /// Trains to the end (or to epochs_per_invocation), resuming from the run's checkpoint when
  /// `resume` and one exists. On a finished return the trainable holds the selected state.
  EngineResult run(bool resume);
  /// One optimiser step on global batch `step` at `lr`: this rank's micro-batches' gradients
  /// accumulate, are summed over the ranks, then clipping and the update. Returns the batch's
  /// mean loss (over the whole global batch).
  double step(int64_t step, double lr);
  /// Stream positions [first, last) of global batch `step`.
  std::pair<int64_t, int64_t> batch_positions(int64_t step) const;
  /// The training row at stream position `pos` (pass pos / N of a seeded permutation).
  int64_t row_at(int64_t pos);
  /// The dropout key of the sample at stream position `pos`.
  uint64_t sample_key(int64_t pos) const;
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t total_steps() const { return total_steps_; }

 private:
  Trainable& model_;
  EngineOptions o_;
  const RunDir& run_;
  Named params_;
  std::vector<torch::Tensor> plist_;
  Adam opt_;
  int64_t rows_, epochs_, steps_per_epoch_, total_steps_;
  uint64_t key_seed_;  // the dropout-key stream, apart from the pass permutations
  std::map<int64_t, torch::Tensor> perms_;  // pass → permutation (the last two)
  int64_t cached_pass_ = -1;                // the pass row_at read last, and its rows
  const int64_t* cached_rows_ = nullptr;
  bool stop_agreed_ = false;                // some rank was asked to stop (data parallel)

  double reduce_gradients(double loss);
  bool stop_now() const;
  std::pair<std::vector<torch::Tensor>, std::vector<std::string>> state_tensors();
  void check_ranks_agree();
  void share_resumed(bool resumed, Progress& p, Named& best);
};

}  // namespace cora::train
