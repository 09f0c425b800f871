// Offline pretraining of a small LLaMA with cora's own model code, through the engine.
#include "cora/method/pretrain.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/data/split.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/llm/model.h"
#include "cora/method/probe.h"
#include "cora/text/tokenizer.h"
#include "cora/train/dist.h"
#include "cora/train/engine.h"
#include "cora/train/run_dir.h"
#include "method/recipe.h"

namespace cora::method {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> pretrain_corpus(const config::Config& c, size_t* glosses) {
  std::vector<std::string> lines;
  if (!c.pretrain.wordnet_dir.empty()) {
    for (const char* pos : {"noun", "verb", "adj", "adv"}) {
      std::string path = c.pretrain.wordnet_dir + "/data." + pos;
      if (!io::exists(path))
        throw Error::key("pretrain.wordnet_dir", path + " does not exist (hint: apt-get install "
                                                        "wordnet-base, or set it to \"\")");
      std::istringstream in(io::read_file(path));
      for (std::string line; std::getline(in, line);) {
        if (line.rfind("  ", 0) == 0) continue;  // licence header
        auto bar = line.find(" | ");
        if (bar == std::string::npos) continue;
        std::string gloss = line.substr(bar + 3);
        while (!gloss.empty() && (gloss.back() == ' ' || gloss.back() == '\r')) gloss.pop_back();
        if (!gloss.empty()) lines.push_back(gloss);
      }
    }
  }
  if (glosses) *glosses = lines.size();
  if (c.pretrain.items) {
    // items.tsv: iid, title[, genres...] — item metadata only.
    std::istringstream in(io::read_file(c.data.dir + "/items.tsv"));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, '\t');) f.push_back(x);
      if (f.size() < 2) continue;
      std::string text = f[1];
      for (size_t k = 2; k < f.size(); ++k) text += " (" + f[k] + ")";
      lines.push_back(text);
    }
  }
  if (lines.empty()) throw Error::key("pretrain.wordnet_dir", "the corpus is empty");
  return lines;
}

namespace {

// Packs BOS + pieces of every line into one id stream.
std::vector<int32_t> encode_lines(const text::Tokenizer& tok, const std::vector<std::string>& lines) {
  std::vector<int32_t> ids;
  for (const auto& l : lines) {
    ids.push_back(tok.bos_id());
    for (int32_t id : tok.encode(l)) ids.push_back(id);
  }
  return ids;
}

// Causal-LM training windows: row k is the window of T + 1 tokens starting at token k.
class PretrainTrainable : public train::Trainable {
 public:
  PretrainTrainable(llm::Llama m, const std::vector<int32_t>& train_ids,
                    const std::vector<int32_t>& held_ids, int64_t T)
      : m_(std::move(m)), train_(train_ids), held_(held_ids), T_(T) {}
  train::Named parameters() override {
    train::Named out;
    for (auto& q : m_->named_parameters()) out.emplace_back(q.key(), q.value());
    return out;
  }
  void set_training(bool on) override { m_->train(on); }
  int64_t rows() const override { return static_cast<int64_t>(train_.size()) - T_; }
  torch::Tensor loss_sum(const std::vector<int64_t>& rows) override {
    const int64_t B = static_cast<int64_t>(rows.size()), T = T_;
    auto x = torch::empty({B, T + 1}, torch::kInt64);
    auto xa = x.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t <= T; ++t) xa[b][t] = train_[rows[b] + t];
    auto h = m_->model->norm(m_->forward_hidden({x.narrow(1, 0, T)}));   // [B, T, D]
    // Each row's loss is its mean next-token cross-entropy.
    return torch::nn::functional::cross_entropy(
               m_->logits(h).reshape({B * T, -1}), x.narrow(1, 1, T).reshape({-1}),
               torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
           static_cast<double>(T);
  }
  train::Validation validate() override {
    const double nll = text_nll(*m_, held_, T_, 16);
    return {-nll, {{"perplexity", std::exp(nll)}}};
  }

 private:
  llm::Llama m_;
  const std::vector<int32_t>& train_;
  const std::vector<int32_t>& held_;
  int64_t T_;
};

}  // namespace

PretrainSummary pretrain(const config::Config& c, const std::string& out_dir, bool resume) {
  const auto& p = c.pretrain;
  const auto& tc = c.train;
  if (find_method(c.method).kind != Kind::pretrain)
    throw Error::key("method", "cora pretrain needs method \"pretrain\"");
  check_keys(c);
  set_threads(c.threads);
  dist::on_main([&] { check_fresh(out_dir, resume); });
  if (p.hidden_size % p.heads != 0 || p.heads % p.kv_heads != 0)
    throw Error::key("pretrain.heads", "hidden_size must divide by heads, heads by kv_heads");
  const double t0 = now_seconds();

  // 1. Corpus, split into train and held-out lines (seeded).
  size_t n_glosses = 0;
  auto lines = pretrain_corpus(c, &n_glosses);
  std::vector<size_t> order(lines.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::mt19937_64 rng(tc.seed);
  std::shuffle(order.begin(), order.end(), rng);
  const size_t n_held = static_cast<size_t>(lines.size() * p.heldout_fraction);
  std::vector<std::string> held, train_lines;
  std::string held_glosses;  // general text the model never trains on (cora probe reads it)
  for (size_t k = 0; k < order.size(); ++k) {
    (k < n_held ? held : train_lines).push_back(lines[order[k]]);
    if (k < n_held && order[k] < n_glosses) held_glosses += lines[order[k]] + "\n";
  }
  train::RunDir run(out_dir, dist::is_main());
  run.write_config(c);
  dist::on_main([&] { io::write_file_atomic(out_dir + "/heldout_glosses.txt", held_glosses); });
  // 2. Tokenizer (kept when resuming), trained by rank 0 (data parallel: one node, or a shared
  // --out); the other ranks read it.
  const std::string ckpt = out_dir + "/ckpt", tok_path = out_dir + "/tokenizer.model";
  dist::on_main([&] {
    if (resume && io::exists(tok_path)) return;
    std::string corpus;
    for (const auto& l : train_lines) corpus += l + "\n";
    io::write_file_atomic(ckpt + "/corpus.txt", corpus);
    text::Tokenizer::train("--input=" + ckpt + "/corpus.txt --model_prefix=" + ckpt + "/tokenizer" +
                           " --vocab_size=" + std::to_string(p.vocab_size) +
                           " --model_type=bpe --byte_fallback=true --character_coverage=0.9995"
                           " --user_defined_symbols=▁Yes,▁No --input_sentence_size=2000000"
                           " --shuffle_input_sentence=true --minloglevel=2");
    fs::rename(ckpt + "/tokenizer.model", tok_path);
    fs::remove(ckpt + "/tokenizer.vocab");
    fs::remove(ckpt + "/corpus.txt");
  });
  text::Tokenizer tok(tok_path);
  auto train_ids = encode_lines(tok, train_lines), held_ids = encode_lines(tok, held);
  spdlog::info("corpus: {} lines ({} held out), {} train tokens, {} held-out tokens, vocab {}",
               lines.size(), held.size(), train_ids.size(), held_ids.size(), tok.vocab_size());

  // 3. Model.
  llm::LlamaConfig lc;
  lc.hidden_size = p.hidden_size;
  lc.intermediate_size = p.intermediate;
  lc.num_hidden_layers = p.layers;
  lc.num_attention_heads = p.heads;
  lc.num_key_value_heads = p.kv_heads;
  lc.vocab_size = tok.vocab_size();
  lc.max_position_embeddings = std::max<int64_t>(512, p.seq_len);
  lc.rms_norm_eps = 1e-5;
  lc.bos_token_id = tok.bos_id();
  lc.eos_token_id = tok.eos_id();
  llm::Llama m(lc);
  m->init_random(tc.seed);
  const int64_t T = p.seq_len, B = tc.batch_size;
  if (static_cast<int64_t>(train_ids.size()) - T - 1 <= 0)
    throw Error::key("pretrain.seq_len", "longer than the tokenized corpus");
  PretrainTrainable trainable(m, train_ids, held_ids, T);

  // 4. Train through the engine: an epoch is eval_every steps, ending with the held-out
  // perplexity; no selection (the last state is the model).
  auto o = engine_options(c, Kind::llm, {{"format", "cora-pretrain-v2"}});
  o.adam.beta2 = 0.95;
  o.iterations = p.eval_every;
  o.epochs = (p.steps + p.eval_every - 1) / p.eval_every;
  o.max_steps = p.steps;
  o.select = false;
  o.metric_name = "perplexity";
  train::Engine engine(trainable, o, run);
  auto r = engine.run(resume);
  PretrainSummary s;
  s.finished = r.finished;
  s.steps = r.progress.step;
  if (!r.finished) return s;

  // 5. Unigram baseline (add-one) on the same held-out tokens, and the HF-layout output.
  std::vector<double> counts(lc.vocab_size, 1.0);
  for (int32_t id : train_ids) counts[id] += 1;
  double total = 0;
  for (double v : counts) total += v;
  double uni = 0;
  int64_t n_eval = 0;
  const int64_t windows = static_cast<int64_t>(held_ids.size() - 1) / T;
  for (int64_t i = 1; i <= windows * T; ++i, ++n_eval) uni -= std::log(counts[held_ids[i]] / total);
  s.heldout_ppl = std::exp(text_nll(*m, held_ids, T, 16));
  s.unigram_ppl = std::exp(uni / std::max<int64_t>(1, n_eval));
  for (auto& q : m->parameters()) s.params += q.numel();
  s.tokens_seen = s.steps * B * T;
  s.seconds = now_seconds() - t0;
  if (!dist::is_main()) return s;
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (auto& q : m->named_parameters()) weights.emplace_back(q.key(), q.value());
  io::save_safetensors(out_dir + "/model.safetensors", weights, {{"format", "pt"}});
  io::write_file_atomic(out_dir + "/config.json", llm::to_json(lc));
  json summary = {{"heldout_perplexity", s.heldout_ppl}, {"unigram_perplexity", s.unigram_ppl},
                  {"parameters", s.params},              {"tokens_seen", s.tokens_seen},
                  {"steps", s.steps},                    {"seconds", s.seconds},
                  {"train_tokens", train_ids.size()},    {"heldout_tokens", held_ids.size()},
                  {"vocab_size", lc.vocab_size}};
  io::write_file_atomic(out_dir + "/pretrain.json", summary.dump(2) + "\n");
  spdlog::info("held-out perplexity {:.2f} (unigram {:.2f}); {} parameters, {} tokens, {:.0f}s",
               s.heldout_ppl, s.unigram_ppl, s.params, s.tokens_seen, s.seconds);
  return s;
}

}  // namespace cora::method
