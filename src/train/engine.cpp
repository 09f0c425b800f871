// The training loop shared by every method.
#include "cora/train/engine.h"

#include <spdlog/spdlog.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <csignal>
#include <cstdio>

#include "cora/core/dropout.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/train/dist.h"

namespace cora::train {
namespace {

std::vector<torch::Tensor> tensors(const Named& n) {
  std::vector<torch::Tensor> out;
  for (const auto& [k, t] : n) out.push_back(t);
  return out;
}

std::vector<bool> decay_mask(const Named& n, DecayRule rule) {
  std::vector<bool> out;
  for (const auto& [k, t] : n)
    out.push_back(rule == DecayRule::all || (t.dim() >= 2 && k.find("norm") == std::string::npos));
  return out;
}

}  // namespace

double learning_rate(const EngineOptions& o, int64_t step, int64_t total, int64_t steps_per_epoch) {
  if (o.schedule == Schedule::constant) return o.lr;
  if (o.schedule == Schedule::reference) {
    if (step < o.warmup_steps) {  // the reference ramps with cur_step, the step within the epoch
      const int64_t within = steps_per_epoch > 0 ? step % steps_per_epoch : step;
      return std::min(o.lr, o.warmup_start_lr + (o.lr - o.warmup_start_lr) * static_cast<double>(within) /
                                                    std::max<int64_t>(o.warmup_steps, 1));
    }
    return (o.lr - o.min_lr) * 0.5 * (1.0 + std::cos(M_PI * step / std::max<int64_t>(total, 1))) +
           o.min_lr;
  }
  if (step < o.warmup_steps)
    return o.warmup_start_lr + (o.lr - o.warmup_start_lr) * static_cast<double>(step) / o.warmup_steps;
  const double span = std::max<int64_t>(1, total - o.warmup_steps);
  const double progress = std::min(1.0, (step - o.warmup_steps) / span);
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(M_PI * progress));
}

Engine::Engine(Trainable& model, EngineOptions o, const RunDir& run)
    : model_(model),
      o_(std::move(o)),
      run_(run),
      params_(model.parameters()),
      plist_(tensors(params_)),
      opt_(plist_, o_.adam, decay_mask(params_, o_.decay)),
      rows_(model.rows()),
      key_seed_(seed_mix(o_.seed, -1)) {
  if (o_.batch_size < 1) throw Error::key("train.batch_size", "must be >= 1");
  if (params_.empty() || rows_ == 0) {  // nothing to train (ICL): one evaluation
    epochs_ = 1;
    steps_per_epoch_ = 0;
  } else {
    epochs_ = o_.epochs;
    steps_per_epoch_ = o_.iterations > 0 ? o_.iterations : (rows_ + o_.batch_size - 1) / o_.batch_size;
  }
  total_steps_ = epochs_ * steps_per_epoch_;
  if (o_.max_steps > 0) {
    total_steps_ = std::min(total_steps_, o_.max_steps);
    if (steps_per_epoch_ > 0)
      epochs_ = std::min(epochs_, (o_.max_steps + steps_per_epoch_ - 1) / steps_per_epoch_);
  }
}

std::pair<int64_t, int64_t> Engine::batch_positions(int64_t step) const {
  const int64_t B = o_.batch_size;
  if (o_.iterations > 0) return {step * B, (step + 1) * B};  // a continuous stream of passes
  const int64_t e = step / steps_per_epoch_, k = step % steps_per_epoch_;
  return {e * rows_ + k * B, e * rows_ + std::min((k + 1) * B, rows_)};  // epoch e = pass e
}

int64_t Engine::row_at(int64_t pos) {
  const int64_t pass = pos / rows_;
  if (pass == cached_pass_) return cached_rows_[pos % rows_];  // the hot path: one pass at a time
  auto it = perms_.find(pass);
  if (it == perms_.end()) {
    if (perms_.size() >= 2) perms_.erase(perms_.begin());
    auto g = at::detail::createCPUGenerator(seed_mix(o_.seed, pass));
    it = perms_.emplace(pass, torch::randperm(rows_, g, torch::kInt64)).first;
  }
  cached_pass_ = pass;
  cached_rows_ = it->second.data_ptr<int64_t>();
  return cached_rows_[pos % rows_];
}

uint64_t Engine::sample_key(int64_t pos) const {
  return seed_mix(key_seed_, pos);
}

double Engine::step(int64_t step, double lr) {
  const auto [first, last] = batch_positions(step);
  const int64_t n = last - first, mb = o_.micro_batch_size > 0 ? o_.micro_batch_size : n;
  const auto [mine0, mine1] = dist::slice(n);  // this rank's contiguous part of the global batch
  opt_.zero_grad();
  double loss = 0;
  for (int64_t m0 = first + mine0; m0 < first + mine1; m0 += mb) {
    std::vector<int64_t> rows;
    std::vector<uint64_t> keys;
    for (int64_t p = m0; p < std::min(first + mine1, m0 + mb); ++p) {
      rows.push_back(row_at(p));
      keys.push_back(sample_key(p));
    }
    SampleKeys scope(std::move(keys));  // forward and backward of this micro-batch
    auto l = model_.loss_sum(rows) / static_cast<double>(n);
    l.backward();
    loss += l.item<double>();
  }
  if (dist::active()) loss = reduce_gradients(loss);
  if (o_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(plist_, o_.grad_clip);
  opt_.step(lr);
  if (dist::check_enabled()) check_ranks_agree();
  return loss;
}

// Sums every rank's gradients (each already divided by the global batch), the loss and the stop
// requests. A tensor keeps "no gradient" only when no rank produced one, as in one process.
double Engine::reduce_gradients(double loss) {
  std::vector<double> scalars{loss, stop_requested() ? 1.0 : 0.0};
  std::vector<torch::Tensor> ts;
  for (auto& p : plist_) {
    auto& g = p.mutable_grad();
    scalars.push_back(g.defined() ? 1.0 : 0.0);
    if (!g.defined()) g = torch::zeros_like(p);
    else if (g.is_sparse()) g = g.to_dense();
    ts.push_back(g);
  }
  ts.push_back(torch::tensor(scalars, torch::kFloat64));
  dist::all_reduce_sum(ts);
  const double* s = ts.back().data_ptr<double>();
  stop_agreed_ = s[1] > 0;
  for (size_t k = 0; k < plist_.size(); ++k)
    if (s[2 + k] == 0) plist_[k].mutable_grad().reset();
  return s[0];
}

bool Engine::stop_now() const { return dist::active() ? stop_agreed_ : stop_requested() != 0; }

// Named tensors of the trained state (weights, optimiser moments and step count).
std::pair<std::vector<torch::Tensor>, std::vector<std::string>> Engine::state_tensors() {
  std::vector<torch::Tensor> ts;
  std::vector<std::string> names;
  for (const auto& [k, t] : params_) ts.push_back(t.detach()), names.push_back("weight " + k);
  for (const auto& [k, t] : opt_.state()) ts.push_back(t), names.push_back("optimiser state " + k);
  return {ts, names};
}

void Engine::check_ranks_agree() {
  auto [ts, names] = state_tensors();
  dist::check_identical(ts, names);
}

// After rank 0 resumed from the run directory: its progress, weights, optimiser state and best
// tensors on every rank (the other ranks need not see the files).
void Engine::share_resumed(bool resumed, Progress& p, Named& best) {
  if (!dist::any(resumed)) return;
  std::vector<torch::Tensor> head{torch::tensor(
      {double(p.epoch), double(p.step), double(p.best_epoch), double(p.best_step), p.best_metric,
       double(p.bad_epochs), p.elapsed_s, double(p.done), double(p.epoch_step), p.epoch_loss,
       double(!best.empty())},
      torch::kFloat64)};
  dist::broadcast(head);
  const double* h = head[0].data_ptr<double>();
  p.epoch = int64_t(h[0]), p.step = int64_t(h[1]), p.best_epoch = int64_t(h[2]);
  p.best_step = int64_t(h[3]), p.best_metric = h[4], p.bad_epochs = int64_t(h[5]);
  p.elapsed_s = h[6], p.done = h[7] != 0, p.epoch_step = int64_t(h[8]), p.epoch_loss = h[9];
  if (h[10] != 0 && best.empty()) best = snapshot(params_);
  torch::NoGradGuard ng;
  auto [ts, names] = state_tensors();
  for (auto& [k, t] : best) ts.push_back(t);
  dist::broadcast(ts);
  std::map<std::string, torch::Tensor> st;
  for (auto& [k, t] : opt_.state()) st[k] = t;
  st["steps"] = ts[params_.size()];  // the step count is a copy in state(): take the broadcast one
  opt_.load_state(st);
}

EngineResult Engine::run(bool resume) {
  EngineResult res;
  Progress& prog = res.progress;
  Named best;
  bool resumed = false;
  if (resume)
    dist::on_main([&] {
      finish_checkpoint(run_);
      if (run_.read_progress()) best = train::resume(run_, params_, opt_, prog, o_.metric_name);
      resumed = prog.step > 0 || prog.epoch >= 0;
    });
  if (dist::active()) share_resumed(resumed, prog, best);
  auto save = [&](bool done) {
    prog.done = done;
    save_checkpoint(run_, params_, opt_, o_.select ? &best : nullptr, prog, o_.meta);
  };
  const double t0 = now_seconds() - prog.elapsed_s;
  double last_ckpt = now_seconds(), last_log = 0;
  int64_t epochs_here = 0;
  auto stop_here = [&](const char* where) {  // a signal asked to stop: checkpoint, then leave
    const int sig = stop_requested();
    prog.elapsed_s = now_seconds() - t0;
    save(false);
    throw Interrupted(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + " stopped the run " +
                      where + " (step " + std::to_string(prog.step) +
                      "); a resumable checkpoint is in " + run_.ckpt("") +
                      " (hint: run the same command with --resume)");
  };
  while (!prog.done && prog.epoch + 1 < epochs_) {
    const int64_t epoch = prog.epoch + 1;
    // A run stopped mid-epoch resumes at its next step (the batch of a step depends on nothing else).
    double loss_sum = prog.epoch_loss, lr = 0, t_ep = now_seconds(), last_print = t_ep;
    const int64_t first_it = prog.epoch_step;
    int64_t its = first_it;
    bool printed = false;
    model_.set_training(true);
    for (int64_t it = first_it; it < steps_per_epoch_; ++it) {
      const int64_t s = epoch * steps_per_epoch_ + it;
      if (s >= total_steps_) break;
      lr = learning_rate(o_, s, total_steps_, steps_per_epoch_);
      loss_sum += step(s, lr);
      const auto [first, last] = batch_positions(s);
      res.samples += last - first;
      ++prog.step;
      ++its;
      if (stop_now() && it + 1 < steps_per_epoch_ && s + 1 < total_steps_) {
        if (printed) std::fprintf(stderr, "\n");
        prog.epoch_step = its;
        prog.epoch_loss = loss_sum;
        stop_here("mid-epoch");
      }
      const double now = now_seconds();
      if (dist::is_main() && (now - last_print > 1.0 || (printed && it + 1 == steps_per_epoch_))) {
        last_print = now;
        printed = true;
        const double rate = (it + 1 - first_it) * o_.batch_size / std::max(now - t_ep, 1e-9);
        std::fprintf(stderr, "\repoch %lld [%lld/%lld] loss %.4f lr %.2e %.2f samples/s eta %.0fs   ",
                     static_cast<long long>(epoch), static_cast<long long>(it + 1),
                     static_cast<long long>(steps_per_epoch_), loss_sum / (it + 1), lr, rate,
                     (steps_per_epoch_ - it - 1) * o_.batch_size / std::max(rate, 1e-9));
      }
    }
    if (printed) std::fprintf(stderr, "\n");
    res.train_seconds += now_seconds() - t_ep;
    Validation v;
    {
      torch::NoGradGuard ng;
      model_.set_training(false);
      v = model_.validate();
    }
    if (dist::active()) {  // rank 0's validation decides selection and early stopping everywhere
      std::vector<double> x{v.metric};
      for (const auto& kv : v.values) x.push_back(kv.second);
      std::vector<torch::Tensor> t{torch::tensor(x, torch::kFloat64)};
      dist::broadcast(t);
      v.metric = t[0].data_ptr<double>()[0];
      for (size_t k = 0; k < v.values.size(); ++k) v.values[k].second = t[0].data_ptr<double>()[k + 1];
    }
    prog.epoch = epoch;
    prog.epoch_step = 0;
    prog.epoch_loss = 0;
    prog.elapsed_s = now_seconds() - t0;
    const double mean_loss = its ? loss_sum / its : 0.0;
    run_.append_metrics({prog.step, epoch, mean_loss, lr, v.values, prog.elapsed_s});
    if (o_.select) {
      if (record_evaluation(prog, v.metric, epoch)) best = snapshot(params_);
    }
    const bool stop = (o_.select && o_.patience > 0 && prog.bad_epochs >= o_.patience &&
                       epoch + 1 >= o_.min_epochs) ||
                      epoch + 1 >= epochs_;
    const bool leave = !stop && o_.epochs_per_invocation > 0 && ++epochs_here == o_.epochs_per_invocation;
    if (now_seconds() - last_log > 5 || stop || leave || epoch == 0 || printed) {
      std::string vals;
      for (const auto& [k, x] : v.values) vals += fmt::format(" {} {:.4f}", k, x);
      spdlog::info("epoch {} step {} loss {:.4f} valid{}{} | {:.0f}s", epoch, prog.step, mean_loss,
                   vals,
                   o_.select ? fmt::format(" | best {:.4f} @ {}", prog.best_metric, prog.best_epoch)
                             : std::string(),
                   prog.elapsed_s);
      last_log = now_seconds();
    }
    if (stop || leave || now_seconds() - last_ckpt > o_.checkpoint_every_s) {
      save(stop);
      last_ckpt = now_seconds();
    }
    if (leave) {
      spdlog::info("left after {} epochs as train.epochs_per_invocation asks; continue with --resume",
                   o_.epochs_per_invocation);
      return res;
    }
    if (!stop && dist::any(stop_requested() != 0)) stop_here("after an epoch");
  }
  if (o_.select && best.empty()) best = snapshot(params_);  // no epoch ran: the initial state
  if (!prog.done) save(true);  // e.g. resumed a run whose last epoch was already reached
  if (o_.select) {
    torch::NoGradGuard ng;
    for (size_t k = 0; k < params_.size(); ++k) params_[k].second.copy_(best[k].second);
  }
  res.finished = true;
  return res;
}

}  // namespace cora::train
