// The LLM-method training loop.
#include "cora/method/trainer.h"

#include <spdlog/spdlog.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <numeric>
#include <random>

#include "cora/cf/trainer.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/data/split.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/llm/loader.h"
#include "cora/method/llm_method.h"
#include "cora/text/tokenizer.h"
#include "cora/train/adam.h"
#include "cora/train/checkpoint.h"
#include "cora/train/run_dir.h"

namespace cora::method {
namespace {

using train::Named;

uint64_t mix(uint64_t seed, int64_t k) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(k) + 0x632BE59BD9B4E019ull;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

// Everything a run needs, built once from the config (errors surface before training).
struct Setup {
  data::Dataset data;
  torch::Device device{torch::kCPU};
  std::unique_ptr<text::Tokenizer> tok;
  std::unique_ptr<LlmMethod> method;
  int64_t hist_len = 0;
  PromptOptions prompt;
};

Setup build(const config::Config& c) {
  Setup s;
  s.device = torch::Device(resolve_device(c.device));
  s.data = data::load_dataset(c.data.dir);
  if (c.llm.dir.empty()) throw Error::key("llm.dir", "required for method '" + c.method + "'");
  if (!io::exists(c.llm.dir))
    throw Error::key("llm.dir", c.llm.dir + " does not exist (hint: a Hugging Face checkpoint "
                                            "directory such as Vicuna-7B, or `cora pretrain`'s output)");
  const std::string tok_path = c.llm.dir + "/tokenizer.model";
  if (!io::exists(tok_path))
    throw Error::key("llm.dir", tok_path + " does not exist (the LLM methods tokenize prompts)");
  s.tok = std::make_unique<text::Tokenizer>(tok_path);
  cf::CfModel cf;
  if (!c.cf.run.empty()) {
    cf = cf::load_run(c.cf.run, s.data, s.device);
    if (cf->dim() != c.cf.dim)
      throw Error::key("cf.dim", "is " + std::to_string(c.cf.dim) + " but the CF run " + c.cf.run +
                                     " has dimension " + std::to_string(cf->dim()) +
                                     " (hint: --set cf.dim=" + std::to_string(cf->dim()) + ")");
    s.hist_len = cf->history_len();
  }
  auto dtype = s.device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  llm::Llama m = llm::load_llama(c.llm.dir, {.dtype = dtype, .device = s.device,
                                             .random_init = c.llm.random_init, .seed = c.train.seed});
  if (s.tok->vocab_size() > m->config().vocab_size)
    throw Error::key("llm.dir", "tokenizer has " + std::to_string(s.tok->vocab_size()) +
                                    " pieces but the model only " +
                                    std::to_string(m->config().vocab_size));
  m->set_checkpointing(c.llm.checkpointing);
  s.prompt.templ = !c.prompt.templ.empty() ? c.prompt.templ
                   : c.method == "collm"   ? kCollmMovieTemplate
                                           : kMovieTemplate;
  s.prompt.max_history = c.prompt.max_history;
  s.prompt.empty_history = c.prompt.empty_history;
  int32_t answer = answer_token(*s.tok, c.prompt.answer);
  seed_everything(c.train.seed);
  s.method = make_llm_method(c, m, cf, answer, s.device);
  return s;
}

// Scores every row of a split, in batches of similar length (little padding).
std::vector<float> predict(LlmMethod& m, const TokenizedSplit& tok, const cf::Rows& rows,
                           int64_t batch, const torch::Device& device, const char* what) {
  torch::NoGradGuard ng;
  m.set_training(false);
  std::vector<int64_t> order(tok.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return tok.length(a) < tok.length(b); });
  std::vector<float> out(tok.size());
  const double t0 = now_seconds();
  double last_print = t0;
  bool printed = false;
  for (size_t s = 0; s < order.size(); s += batch) {
    std::vector<int64_t> idx(order.begin() + s, order.begin() + std::min(order.size(), s + batch));
    auto sc = m.score(make_batch(tok, rows, idx, device)).to(torch::kCPU).contiguous();
    for (size_t k = 0; k < idx.size(); ++k) out[idx[k]] = sc.data_ptr<float>()[k];
    const double now = now_seconds();
    if (now - last_print > 2.0) {  // progress line for evaluations longer than a few seconds
      last_print = now;
      printed = true;
      const double done = static_cast<double>(s + idx.size()), rate = done / (now - t0);
      fprintf(stderr, "\revaluating %s [%lld/%lld] %.1f rows/s eta %.0fs   ", what,
              static_cast<long long>(done), static_cast<long long>(order.size()), rate,
              (order.size() - done) / std::max(rate, 1e-9));
    }
  }
  if (printed) fprintf(stderr, "\n");
  return out;
}

}  // namespace

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

double learning_rate(const config::TrainConfig& t, int64_t step, int64_t total) {
  if (step < t.warmup_steps)
    return t.warmup_start_lr + (t.lr - t.warmup_start_lr) * static_cast<double>(step) / t.warmup_steps;
  const double span = std::max<int64_t>(1, total - t.warmup_steps);
  const double progress = std::min(1.0, (step - t.warmup_steps) / span);
  return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + std::cos(M_PI * progress));
}

LlmTrainSummary train(const config::Config& cfg, const std::string& out_dir, bool resume) {
  const auto& tc = cfg.train;
  set_threads(cfg.threads);
  if (!resume && io::exists(out_dir + "/ckpt/progress.json"))
    throw Error::at(out_dir, 0, "already holds a run (hint: pass --resume, or choose a new --out)");
  Setup s = build(cfg);  // every input is checked before the run directory is created
  train::RunDir run(out_dir);
  auto prev = resume ? run.read_progress() : std::nullopt;
  run.write_config(cfg);
  const data::Split vsplit = selection_split(s.data.split(tc.valid_split), tc.valid_limit);
  auto tok_train = tokenize_split(s.data.train, s.data.items, *s.tok, s.prompt, s.tok->bos_id());
  auto tok_valid = tokenize_split(vsplit, s.data.items, *s.tok, s.prompt, s.tok->bos_id());
  auto rows_train = cf::make_rows(s.data.train, s.hist_len);
  auto rows_valid = cf::make_rows(vsplit, s.hist_len);
  Named params = s.method->trainable();
  std::vector<torch::Tensor> plist;
  std::vector<bool> decay;
  for (auto& [n, p] : params) {
    plist.push_back(p);
    decay.push_back(p.dim() >= 2);  // no decay on biases, norms and other 1-D tensors
  }
  train::Adam opt(plist, {.weight_decay = tc.weight_decay, .decoupled = true}, decay);
  train::Progress prog;
  Named best;
  if (prev) best = train::resume(run, params, opt, prog, tc.selection_metric);
  auto save = [&](bool done) {
    prog.done = done;
    train::save_checkpoint(run, params, opt, best, prog,
                           {{"format", "cora-llm-v1"}, {"method", cfg.method}});
  };

  const int64_t N = tok_train.size(), B = tc.batch_size;
  const int64_t iters = params.empty() ? 0 : (tc.iterations > 0 ? tc.iterations : (N + B - 1) / B);
  const int64_t epochs = params.empty() ? 1 : tc.epochs;  // ICL: one evaluation, no training
  const int64_t total_steps = epochs * iters;
  const double t0 = now_seconds() - prog.elapsed_s;
  double train_time = 0;
  int64_t samples = 0;
  // Row r of the infinite stream of shuffled passes: pass k is randperm(N, mix(seed, k)).
  torch::Tensor perm;
  int64_t perm_pass = -1;
  auto stream_row = [&](int64_t i) {
    int64_t pass = i / N;
    if (pass != perm_pass) {
      auto g = at::detail::createCPUGenerator(mix(tc.seed, -1 - pass));
      perm = torch::randperm(N, g, torch::kInt64);
      perm_pass = pass;
    }
    return perm.data_ptr<int64_t>()[i % N];
  };
  int64_t epochs_here = 0;
  while (!prog.done && prog.epoch + 1 < epochs) {
    if (tc.epochs_per_invocation > 0 && epochs_here++ == tc.epochs_per_invocation) {
      spdlog::info("left after {} epochs as train.epochs_per_invocation asks; continue with --resume",
                   tc.epochs_per_invocation);
      LlmTrainSummary partial;
      partial.epochs_run = prog.epoch + 1;
      partial.best_epoch = prog.best_epoch;
      return partial;
    }
    const int64_t epoch = prog.epoch + 1;
    double loss_sum = 0, t_ep = now_seconds(), lr = 0, last_print = 0;
    s.method->set_training(true);
    for (int64_t it = 0; it < iters; ++it) {
      const int64_t step = epoch * iters + it;
      lr = learning_rate(tc, step, total_steps);
      opt.zero_grad();
      for (int64_t a = 0; a < tc.grad_accum; ++a) {
        const int64_t micro = step * tc.grad_accum + a;
        torch::manual_seed(mix(tc.seed, micro));  // dropout masks of this micro-batch
        std::vector<int64_t> idx(B);
        for (int64_t k = 0; k < B; ++k) idx[k] = stream_row(micro * B + k);
        auto batch = make_batch(tok_train, rows_train, idx, s.device);
        auto loss = torch::binary_cross_entropy_with_logits(s.method->score(batch),
                                                            batch.rows.label) / tc.grad_accum;
        loss.backward();
        loss_sum += loss.item<double>();
        samples += B;
      }
      if (tc.grad_clip > 0) torch::nn::utils::clip_grad_norm_(plist, tc.grad_clip);
      opt.step(lr);
      ++prog.step;
      if (it + 1 == iters || now_seconds() - last_print > 1.0) {  // progress line, in place
        last_print = now_seconds();
        double el = now_seconds() - t_ep, rate = (it + 1) * B * tc.grad_accum / std::max(el, 1e-9);
        double eta = (iters - it - 1) * B * tc.grad_accum / std::max(rate, 1e-9);
        fprintf(stderr, "\repoch %lld [%lld/%lld] loss %.4f lr %.2e %.2f samples/s eta %.0fs   ",
                static_cast<long long>(epoch), static_cast<long long>(it + 1),
                static_cast<long long>(iters), loss_sum / (it + 1), lr, rate, eta);
      }
    }
    if (iters > 0) fprintf(stderr, "\n");
    train_time += now_seconds() - t_ep;
    auto scores = predict(*s.method, tok_valid, rows_valid, tc.eval_batch_size, s.device,
                          vsplit.name.c_str());
    double v_auc = eval::auc(scores, vsplit.label), v_uauc = eval::uauc(vsplit.uid, scores, vsplit.label).uauc;
    double metric = tc.selection_metric == "auc" ? v_auc : v_uauc;
    prog.epoch = epoch;
    prog.elapsed_s = now_seconds() - t0;
    run.append_metrics({prog.step, epoch, iters ? loss_sum / iters : 0.0, lr, v_auc, v_uauc, prog.elapsed_s});
    if (train::record_evaluation(prog, metric, epoch)) best = train::snapshot(params);
    spdlog::info("epoch {} step {} valid auc {:.4f} uauc {:.4f} | best {:.4f} @ {} | {:.0f}s", epoch,
                 prog.step, v_auc, v_uauc, prog.best_metric, prog.best_epoch, prog.elapsed_s);
    bool stop = (prog.bad_epochs >= tc.patience && epoch + 1 >= tc.min_epochs) || epoch + 1 >= epochs;
    save(stop);
  }
  if (best.empty()) best = train::snapshot(params);
  if (!prog.done) save(true);
  {
    torch::NoGradGuard ng;
    for (size_t k = 0; k < params.size(); ++k) params[k].second.copy_(best[k].second);
  }
  LlmTrainSummary sum;
  for (auto [split, res] : {std::pair{&vsplit, &sum.valid}, {&s.data.test, &sum.test}}) {
    auto tk = split == &vsplit ? tok_valid
                               : tokenize_split(*split, s.data.items, *s.tok, s.prompt, s.tok->bos_id());
    auto sc = predict(*s.method, tk, cf::make_rows(*split, s.hist_len), tc.eval_batch_size, s.device,
                      split->name.c_str());
    *res = eval::evaluate(*split, sc);
    run.write_eval(*res, *split, sc);
  }
  run.write_final(sum.valid, sum.test, prog, tc.selection_metric, cfg.method);
  sum.best_epoch = prog.best_epoch;
  sum.best_step = prog.best_step;
  sum.epochs_run = prog.epoch + 1;
  sum.seconds = now_seconds() - t0;
  sum.train_samples_per_s = train_time > 0 ? samples / train_time : 0;
  spdlog::info("best epoch {}: valid auc {:.4f} uauc {:.4f} | test auc {:.4f} uauc {:.4f}",
               prog.best_epoch, sum.valid.auc, sum.valid.uauc, sum.test.auc, sum.test.uauc);
  return sum;
}

eval::EvalResult evaluate_run(const std::string& run_dir, const std::string& split_name) {
  train::RunDir run(run_dir);
  config::Config cfg = run.read_config();
  set_threads(cfg.threads);
  Setup s = build(cfg);
  Named params = s.method->trainable();
  if (!params.empty())
    train::copy_named(params, io::load_safetensors(run.ckpt("best.safetensors")), run.ckpt("best.safetensors"));
  const auto& split = s.data.split(split_name);
  auto tk = tokenize_split(split, s.data.items, *s.tok, s.prompt, s.tok->bos_id());
  auto sc = predict(*s.method, tk, cf::make_rows(split, s.hist_len), cfg.train.eval_batch_size,
                    s.device, split.name.c_str());
  auto r = eval::evaluate(split, sc);
  run.write_eval(r, split, sc);
  return r;
}

}  // namespace cora::method
