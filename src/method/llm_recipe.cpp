// The LLM-method recipe: the frozen LLM and tokenizer, the frozen CF run, the tokenized prompts
// and the registry's method, trained through the engine (AdamW, warm-up + cosine, BCE on the
// answer logit) — or, for ICL, evaluated once.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <numeric>

#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/llm/loader.h"
#include "cora/method/cf_run.h"
#include "cora/method/llm_method.h"
#include "cora/text/tokenizer.h"
#include "cora/train/checkpoint.h"
#include "cora/train/dist.h"
#include "method/recipe.h"

namespace cora::method {
namespace {

}  // namespace

LlmSetup build_llm_setup(const config::Config& c) {
  const MethodInfo& info = find_method(c.method);
  LlmSetup s;
  s.device = dist::device_for(torch::Device(resolve_device(c.device)));
  s.data = data::load_dataset(c.data.dir);
  for (const auto& key : info.requires_inputs)
    if ((key == "llm.dir" ? c.llm.dir : c.cf.run).empty())
      throw Error::key(key, "required for method '" + c.method + "'" +
                                (key == "cf.run" ? " (a finished CF run; hint: `cora train --config "
                                                   "configs/ml1m/mf.json --out runs/mf`, then --set "
                                                   "cf.run=runs/mf)"
                                                 : ""));
  if (!io::exists(c.llm.dir))
    throw Error::key("llm.dir", c.llm.dir + " does not exist (hint: a Hugging Face checkpoint "
                                            "directory such as Vicuna-7B, or `cora pretrain`'s output)");
  std::string tok_path;
  try {
    tok_path = text::Tokenizer::file_in(c.llm.dir);  // tokenizer.model, else tokenizer.json
  } catch (const Error& e) {
    throw Error::key("llm.dir", std::string(e.what()) + " (the LLM methods tokenize prompts)");
  }
  s.tok = std::make_unique<text::Tokenizer>(tok_path);
  cf::CfModel cf;
  if (!c.cf.run.empty()) {
    cf = load_cf_run(c.cf.run, s.data, s.device);
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
  s.prompt.templ = !c.prompt.templ.empty() ? c.prompt.templ : info.default_template;
  s.prompt.max_history = c.prompt.max_history;
  s.prompt.empty_history = c.prompt.empty_history;
  int32_t answer = answer_token(*s.tok, c.prompt.answer);
  seed_everything(c.train.seed);
  s.method = make_llm_method(c, m, cf, answer, s.device);
  return s;
}

void load_selected_state(LlmSetup& s, const std::string& run_dir) {
  train::Named params = s.method->trainable();
  train::RunDir run(run_dir, /*writer=*/false);
  if (!params.empty())
    train::copy_named(params, io::load_safetensors(run.ckpt("best.safetensors")), run.ckpt("best.safetensors"));
}

namespace {

// Scores every row of a split, in batches of similar length (little padding); under data
// parallelism each rank scores a run of whole batches and the scores are gathered.
std::vector<float> predict(LlmMethod& m, const TokenizedSplit& tok, const cf::Rows& rows,
                           int64_t batch, const torch::Device& device, const char* what) {
  torch::NoGradGuard ng;
  m.set_training(false);
  std::vector<int64_t> order(tok.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return tok.length(a) < tok.length(b); });
  return dist::score_sharded(order, batch, [&](const std::vector<int64_t>& mine) {
    std::vector<float> out;
    const double t0 = now_seconds();
    double last_print = t0;
    bool printed = false;
    for (size_t s = 0; s < mine.size(); s += batch) {
      std::vector<int64_t> idx(mine.begin() + s, mine.begin() + std::min(mine.size(), s + batch));
      auto sc = m.score(make_batch(tok, rows, idx, device)).to(torch::kCPU).contiguous();
      out.insert(out.end(), sc.data_ptr<float>(), sc.data_ptr<float>() + idx.size());
      const double now = now_seconds();
      if (dist::is_main() && now - last_print > 2.0) {  // for evaluations of more than a few seconds
        last_print = now;
        printed = true;
        const double done = static_cast<double>(out.size()), rate = done / (now - t0);
        std::fprintf(stderr, "\revaluating %s [%lld/%lld] %.1f rows/s eta %.0fs   ", what,
                     static_cast<long long>(done), static_cast<long long>(mine.size()), rate,
                     (mine.size() - done) / std::max(rate, 1e-9));
      }
    }
    if (printed) std::fprintf(stderr, "\n");
    return out;
  });
}

class LlmTrainable : public train::Trainable {
 public:
  LlmTrainable(LlmSetup& s, const data::Split& valid, const config::TrainConfig& t)
      : s_(s), valid_(valid), t_(t),
        tok_train_(tokenize_split(s.data.train, s.data.items, *s.tok, s.prompt, bos_of(*s.tok))),
        tok_valid_(tokenize_split(valid, s.data.items, *s.tok, s.prompt, bos_of(*s.tok))),
        rows_train_(cf::make_rows(s.data.train, s.hist_len)),
        rows_valid_(cf::make_rows(valid, s.hist_len)) {}
  train::Named parameters() override { return s_.method->trainable(); }
  void set_training(bool on) override { s_.method->set_training(on); }
  int64_t rows() const override { return tok_train_.size(); }
  torch::Tensor loss_sum(const std::vector<int64_t>& rows) override {
    auto batch = make_batch(tok_train_, rows_train_, rows, s_.device);
    return torch::binary_cross_entropy_with_logits(s_.method->score(batch), batch.rows.label, {},
                                                   {}, at::Reduction::Sum);
  }
  train::Validation validate() override {
    auto sc = predict(*s_.method, tok_valid_, rows_valid_, t_.eval_batch_size, s_.device,
                      valid_.name.c_str());
    return validation_of(valid_, sc, t_.selection_metric);
  }
  const TokenizedSplit& tok_valid() const { return tok_valid_; }

 private:
  LlmSetup& s_;
  const data::Split& valid_;
  const config::TrainConfig& t_;
  TokenizedSplit tok_train_, tok_valid_;
  cf::Rows rows_train_, rows_valid_;
};

std::vector<float> score_split(LlmSetup& s, const data::Split& split, int64_t batch) {
  auto tk = tokenize_split(split, s.data.items, *s.tok, s.prompt, bos_of(*s.tok));
  return predict(*s.method, tk, cf::make_rows(split, s.hist_len), batch, s.device, split.name.c_str());
}

}  // namespace

TrainSummary train_llm(const config::Config& cfg, const std::string& out_dir, bool resume) {
  const auto& tc = cfg.train;
  set_threads(cfg.threads);
  dist::on_main([&] { check_fresh(out_dir, resume); });
  const double t0 = now_seconds();
  LlmSetup s = build_llm_setup(cfg);  // every input is checked before the run directory is created
  train::RunDir run(out_dir, dist::is_main());
  run.write_config(cfg);
  const data::Split valid = selection_split(s.data.split(tc.valid_split), tc.valid_limit);
  LlmTrainable trainable(s, valid, tc);
  train::Engine engine(trainable, engine_options(cfg, Kind::llm,
                                                 {{"format", "cora-llm-v1"}, {"method", cfg.method}}),
                       run);
  auto r = engine.run(resume);
  auto score = [&](const data::Split& split) {
    if (&split == &valid)
      return predict(*s.method, trainable.tok_valid(), cf::make_rows(valid, s.hist_len),
                     tc.eval_batch_size, s.device, valid.name.c_str());
    return score_split(s, split, tc.eval_batch_size);
  };
  return finish_run(run, cfg, r, t0, score, valid, s.data.test);
}

eval::EvalResult evaluate_llm(const std::string& run_dir, const config::Config& cfg,
                              const std::string& split_name) {
  set_threads(cfg.threads);
  LlmSetup s = build_llm_setup(cfg);
  load_selected_state(s, run_dir);
  const auto& split = s.data.split(split_name);
  auto sc = score_split(s, split, cfg.train.eval_batch_size);
  auto r = eval::evaluate(split, sc);
  train::RunDir(run_dir, dist::is_main()).write_eval(r, split, sc);
  return r;
}

}  // namespace cora::method
