// Offline pretraining of a small LLaMA with cora's own model code.
#include "cora/llm/pretrain.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

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
#include "cora/method/trainer.h"
#include "cora/text/tokenizer.h"
#include "cora/train/adam.h"

namespace cora::llm {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> pretrain_corpus(const config::Config& c) {
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

// Mean next-token cross-entropy of the model over non-overlapping windows of the stream.
double heldout_nll(LlamaImpl& m, const std::vector<int32_t>& ids, int64_t T, int64_t batch) {
  torch::NoGradGuard ng;
  m.eval();
  const int64_t windows = static_cast<int64_t>(ids.size() - 1) / T;
  double total = 0;
  int64_t count = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += batch) {
    const int64_t n = std::min(batch, windows - w0);
    auto x = torch::empty({n, T + 1}, torch::kInt64);
    auto xa = x.accessor<int64_t, 2>();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t t = 0; t <= T; ++t) xa[b][t] = ids[(w0 + b) * T + t];
    auto h = m.model->norm(m.forward_hidden({x.narrow(1, 0, T)}));       // [n, T, D]
    auto logits = m.logits(h);                                           // [n, T, V]
    auto loss = torch::nn::functional::cross_entropy(
        logits.reshape({n * T, -1}), x.narrow(1, 1, T).reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    total += loss.item<double>();
    count += n * T;
  }
  return count ? total / count : 0;
}

}  // namespace

PretrainSummary pretrain(const config::Config& c, const std::string& out_dir, bool resume) {
  const auto& p = c.pretrain;
  const auto& tc = c.train;
  set_threads(c.threads);
  const std::string ckpt = out_dir + "/ckpt";
  if (!resume && io::exists(ckpt + "/progress.json"))
    throw Error::at(out_dir, 0, "already holds a pretraining run (hint: --resume)");
  if (p.hidden_size % p.heads != 0 || p.heads % p.kv_heads != 0)
    throw Error::key("pretrain.heads", "hidden_size must divide by heads, heads by kv_heads");
  io::make_dirs(ckpt);
  double t0 = now_seconds();

  // 1. Corpus, split into train and held-out lines (seeded).
  auto lines = pretrain_corpus(c);
  std::mt19937_64 rng(tc.seed);
  std::shuffle(lines.begin(), lines.end(), rng);
  const size_t n_held = static_cast<size_t>(lines.size() * p.heldout_fraction);
  std::vector<std::string> held(lines.begin(), lines.begin() + n_held),
      train_lines(lines.begin() + n_held, lines.end());
  // 2. Tokenizer (kept when resuming).
  const std::string tok_path = out_dir + "/tokenizer.model";
  if (!resume || !io::exists(tok_path)) {
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
  }
  text::Tokenizer tok(tok_path);
  auto train_ids = encode_lines(tok, train_lines), held_ids = encode_lines(tok, held);
  spdlog::info("corpus: {} lines ({} held out), {} train tokens, {} held-out tokens, vocab {}",
               lines.size(), held.size(), train_ids.size(), held_ids.size(), tok.vocab_size());

  // 3. Model.
  LlamaConfig lc;
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
  Llama m(lc);
  m->init_random(tc.seed);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  std::vector<torch::Tensor> params;
  std::vector<bool> decay;
  int64_t n_params = 0;
  for (auto& q : m->named_parameters()) {
    named.emplace_back(q.key(), q.value());
    params.push_back(q.value());
    decay.push_back(q.value().dim() >= 2 && q.key().find("norm") == std::string::npos);
    n_params += q.value().numel();
  }
  train::Adam opt(params, {.beta2 = 0.95, .weight_decay = tc.weight_decay, .decoupled = true}, decay);
  int64_t step = 0;
  if (resume && io::exists(ckpt + "/progress.json")) {
    auto j = json::parse(io::read_file(ckpt + "/progress.json"));
    step = j.at("step").get<int64_t>();
    auto all = io::load_safetensors(ckpt + "/latest.safetensors");
    torch::NoGradGuard ng;
    std::map<std::string, torch::Tensor> os;
    for (auto& [k, v] : all)
      if (k.rfind("optim.", 0) == 0) os[k.substr(6)] = v;
    for (auto& [k, v] : named) v.copy_(all.at("model." + k));
    opt.load_state(os);
    spdlog::info("resuming pretraining at step {}", step);
  }
  auto save_ckpt = [&] {
    std::vector<std::pair<std::string, torch::Tensor>> all;
    for (auto& [k, v] : named) all.emplace_back("model." + k, v);
    for (auto& [k, v] : opt.state()) all.emplace_back("optim." + k, v);
    io::save_safetensors(ckpt + "/latest.safetensors", all);
    io::write_file_atomic(ckpt + "/progress.json", json{{"step", step}}.dump() + "\n");
  };

  // 4. Train: batch b of step s starts at random offsets drawn from (seed, s).
  const int64_t T = p.seq_len, B = tc.batch_size;
  const int64_t max_start = static_cast<int64_t>(train_ids.size()) - T - 1;
  if (max_start <= 0) throw Error::key("pretrain.seq_len", "longer than the tokenized corpus");
  double t_train = now_seconds(), last_print = 0;
  const int64_t first_step = step;
  while (step < p.steps) {
    m->train();
    auto g = at::detail::createCPUGenerator(tc.seed * 1000003ull + static_cast<uint64_t>(step));
    auto starts = torch::randint(0, max_start, {B}, g, torch::kInt64);
    auto x = torch::empty({B, T + 1}, torch::kInt64);
    auto xa = x.accessor<int64_t, 2>();
    auto sa = starts.accessor<int64_t, 1>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t <= T; ++t) xa[b][t] = train_ids[sa[b] + t];
    auto h = m->model->norm(m->forward_hidden({x.narrow(1, 0, T)}));   // [B, T, D]
    auto loss = torch::nn::functional::cross_entropy(m->logits(h).reshape({B * T, -1}),
                                                     x.narrow(1, 1, T).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    if (tc.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, tc.grad_clip);
    opt.step(method::learning_rate(tc, step, p.steps));
    ++step;
    const double el = now_seconds() - t_train;
    if (now_seconds() - last_print > 1.0 || step == p.steps) {
      last_print = now_seconds();
      double tps = (step - first_step) * B * T / std::max(el, 1e-9);
      fprintf(stderr, "\rstep %lld/%lld loss %.3f %.0f tokens/s eta %.0fs   ",
              static_cast<long long>(step), static_cast<long long>(p.steps), loss.item<double>(), tps,
              (p.steps - step) * B * T / std::max(tps, 1e-9));
    }
    if (step % p.eval_every == 0 || step == p.steps) {
      double nll = heldout_nll(*m, held_ids, T, 16);
      fprintf(stderr, "\n");
      spdlog::info("step {} held-out perplexity {:.2f}", step, std::exp(nll));
      save_ckpt();
    }
  }

  // 5. Unigram baseline (add-one) on the same held-out tokens, and the HF-layout output.
  std::vector<double> counts(lc.vocab_size, 1.0);
  for (int32_t id : train_ids) counts[id] += 1;
  double total = 0;
  for (double v : counts) total += v;
  double uni = 0;
  int64_t n_eval = 0;
  const int64_t windows = static_cast<int64_t>(held_ids.size() - 1) / T;
  for (int64_t i = 1; i <= windows * T; ++i, ++n_eval) uni -= std::log(counts[held_ids[i]] / total);
  PretrainSummary s;
  s.heldout_ppl = std::exp(heldout_nll(*m, held_ids, T, 16));
  s.unigram_ppl = std::exp(uni / std::max<int64_t>(1, n_eval));
  s.params = n_params;
  s.steps = step;
  s.tokens_seen = step * B * T;
  s.seconds = now_seconds() - t0;
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (auto& [k, v] : named) weights.emplace_back(k, v);
  io::save_safetensors(out_dir + "/model.safetensors", weights, {{"format", "pt"}});
  io::write_file_atomic(out_dir + "/config.json", to_json(lc));
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

}  // namespace cora::llm
