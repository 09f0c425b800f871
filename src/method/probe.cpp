// `cora probe`: general-text perplexity and a WordNet hypernym cloze for a run's LLM, with and
// without what the run writes into it.
#include "cora/method/probe.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/llm/loader.h"
#include "cora/method/prompt.h"
#include "cora/train/run_dir.h"
#include "method/recipe.h"

namespace cora::method {
using json = nlohmann::json;

namespace {

// `t`'s shape with its first dimension set to B (a one-sample adapter input repeated).
std::vector<int64_t> with_batch(const torch::Tensor& t, int64_t B) {
  std::vector<int64_t> s(t.sizes().begin(), t.sizes().end());
  s[0] = B;
  return s;
}

bool lower_word(const std::string& w) {
  if (w.empty()) return false;
  for (char ch : w)
    if (ch < 'a' || ch > 'z') return false;
  return true;
}

std::string strip_punct(std::string w) {
  while (!w.empty() && std::string(",;:.!?)\"'").find(w.back()) != std::string::npos) w.pop_back();
  return w;
}

struct Cloze {
  double top1 = 0, mrr = 0, mean_rank = 0;
};
// One model's numbers: the perplexity and each cloze set's scores (in the order of the sets).
struct Scores {
  double perplexity = 0;
  std::vector<Cloze> cloze;
};
json to_json(const Scores& s, const std::vector<std::string>& names) {
  json j = {{"perplexity", s.perplexity}, {"cloze", json::object()}};
  for (size_t k = 0; k < names.size(); ++k)
    j["cloze"][names[k]] = {{"top1", s.cloze[k].top1}, {"mrr", s.cloze[k].mrr}, {"mean_rank", s.cloze[k].mean_rank}};
  return j;
}

// The text stream: BOS (when the tokenizer adds one) + pieces of each line, the first
// max_tokens + 1 tokens.
std::vector<int32_t> text_ids(const std::string& path, const text::Tokenizer& tok, int32_t bos,
                              int64_t max_tokens) {
  std::istringstream in(io::read_file(path));
  std::vector<int32_t> ids;
  for (std::string line; std::getline(in, line) && static_cast<int64_t>(ids.size()) <= max_tokens;) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (bos >= 0) ids.push_back(bos);
    for (int32_t id : tok.encode(line)) ids.push_back(id);
  }
  if (static_cast<int64_t>(ids.size()) > max_tokens + 1) ids.resize(max_tokens + 1);
  return ids;
}

// Cloze prompts as right-padded id rows.
struct ClozeBatch {
  std::vector<std::vector<int64_t>> prompts;
  std::vector<int64_t> answer;  // index into the candidates
};

ClozeBatch cloze_prompts(const ClozeSet& cs, const text::Tokenizer& tok, int32_t bos) {
  ClozeBatch b;
  std::map<std::string, int64_t> index;
  for (size_t k = 0; k < cs.candidates.size(); ++k) index[cs.candidates[k]] = static_cast<int64_t>(k);
  for (const auto& it : cs.items) {
    std::vector<int64_t> p;
    if (bos >= 0) p.push_back(bos);
    for (int32_t id : tok.encode(it.prefix)) p.push_back(id);
    b.prompts.push_back(std::move(p));
    b.answer.push_back(index.at(it.answer));
  }
  return b;
}

// Top-1 accuracy, mean reciprocal rank and mean rank of the right candidate (rank 1 + the number
// of candidates scored strictly higher).
Cloze score_cloze(llm::LlamaImpl& m, const ClozeBatch& cb, const std::vector<int32_t>& cand,
                  int64_t batch, llm::Adapter* adapter, const torch::Tensor& input) {
  torch::NoGradGuard ng;
  const auto dev = m.parameters().front().device();
  auto rows = torch::tensor(std::vector<int64_t>(cand.begin(), cand.end()), torch::kInt64).to(dev);
  const int64_t n = static_cast<int64_t>(cb.prompts.size());
  double top1 = 0, rr = 0, rank_sum = 0;
  for (int64_t s0 = 0; s0 < n; s0 += batch) {
    const int64_t B = std::min(batch, n - s0);
    int64_t T = 0;
    for (int64_t b = 0; b < B; ++b) T = std::max<int64_t>(T, cb.prompts[s0 + b].size());
    auto ids = torch::zeros({B, T}, torch::kInt64), mask = torch::zeros({B, T}, torch::kInt64);
    auto last = torch::empty({B}, torch::kInt64);
    for (int64_t b = 0; b < B; ++b) {
      const auto& p = cb.prompts[s0 + b];
      for (size_t t = 0; t < p.size(); ++t) {
        ids[b][t] = p[t];
        mask[b][t] = 1;
      }
      last[b] = static_cast<int64_t>(p.size()) - 1;
    }
    torch::Tensor in = input.defined() ? input.expand(with_batch(input, B)) : torch::Tensor();
    auto h = m.hidden_at({ids.to(dev), mask.to(dev), adapter, nullptr, in}, last.to(dev));
    auto lg = m.logits(h, rows).to(torch::kCPU, torch::kFloat32);  // [B, K]
    auto la = lg.accessor<float, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t a = cb.answer[s0 + b];
      int64_t rank = 1;
      for (int64_t k = 0; k < lg.size(1); ++k) rank += la[b][k] > la[b][a];
      top1 += rank == 1;
      rr += 1.0 / static_cast<double>(rank);
      rank_sum += static_cast<double>(rank);
    }
  }
  Cloze c;
  c.top1 = n ? top1 / n : 0;
  c.mrr = n ? rr / n : 0;
  c.mean_rank = n ? rank_sum / n : 0;
  return c;
}

Scores measure(llm::LlamaImpl& m, const std::vector<int32_t>& text, const std::vector<ClozeBatch>& sets,
               const std::vector<int32_t>& cand, const ProbeOptions& o, llm::Adapter* adapter,
               const torch::Tensor& input) {
  Scores s;
  s.perplexity = std::exp(text_nll(m, text, o.window, o.batch, adapter, input));
  for (const auto& cb : sets) s.cloze.push_back(score_cloze(m, cb, cand, o.batch, adapter, input));
  return s;
}

}  // namespace

double text_nll(llm::LlamaImpl& m, const std::vector<int32_t>& ids, int64_t T, int64_t batch,
                llm::Adapter* adapter, const torch::Tensor& input) {
  torch::NoGradGuard ng;
  m.eval();
  const auto dev = m.parameters().front().device();
  const int64_t windows = (static_cast<int64_t>(ids.size()) - 1) / T;
  double total = 0;
  int64_t count = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += batch) {
    const int64_t n = std::min(batch, windows - w0);
    auto x = torch::empty({n, T + 1}, torch::kInt64);
    auto xa = x.accessor<int64_t, 2>();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t t = 0; t <= T; ++t) xa[b][t] = ids[(w0 + b) * T + t];
    x = x.to(dev);
    torch::Tensor in = input.defined() ? input.expand(with_batch(input, n)) : torch::Tensor();
    auto h = m.model->norm(m.forward_hidden({x.narrow(1, 0, T), {}, adapter, nullptr, in}));  // [n, T, D]
    auto logits = m.logits(h).to(torch::kFloat32);                                            // [n, T, V]
    auto loss = torch::nn::functional::cross_entropy(
        logits.reshape({n * T, -1}), x.narrow(1, 1, T).reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    total += loss.item<double>();
    count += n * T;
  }
  return count ? total / count : 0;
}

ClozeSet build_cloze(const std::string& wordnet_dir, const text::Tokenizer& tok, int64_t candidates,
                     const std::function<bool(const std::string&)>& keep, int64_t max_items,
                     uint64_t seed) {
  const std::string path = wordnet_dir + "/data.noun";
  if (!io::exists(path))
    throw Error(path + " does not exist (hint: apt-get install wordnet-base, or --wordnet DIR)");
  struct Synset {
    std::string lemma, gloss;
    std::string hyper;  // offset of the first (instance) hypernym
  };
  std::map<std::string, Synset> by_offset;
  std::vector<std::string> order;
  std::istringstream in(io::read_file(path));
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.rfind("  ", 0) == 0 || line.empty()) continue;  // licence header
    auto bar = line.find(" | ");
    if (bar == std::string::npos) throw Error::at(path, line_no, "no ' | ' before the gloss");
    std::istringstream f(line.substr(0, bar));
    std::string offset, lex, type, wcnt_hex;
    if (!(f >> offset >> lex >> type >> wcnt_hex)) throw Error::at(path, line_no, "short synset line");
    Synset s;
    int64_t wcnt = 0;
    try {
      wcnt = std::stoll(wcnt_hex, nullptr, 16);
    } catch (const std::exception&) {
      throw Error::at(path, line_no, "word count '" + wcnt_hex + "' is not hexadecimal");
    }
    for (int64_t k = 0; k < wcnt; ++k) {
      std::string word, lex_id;
      if (!(f >> word >> lex_id)) throw Error::at(path, line_no, "fewer words than its count");
      if (k == 0) s.lemma = word;
    }
    int64_t pcnt = 0;
    if (!(f >> pcnt)) throw Error::at(path, line_no, "no pointer count");
    for (int64_t k = 0; k < pcnt; ++k) {
      std::string sym, off, pos, st;
      if (!(f >> sym >> off >> pos >> st)) throw Error::at(path, line_no, "fewer pointers than its count");
      if (s.hyper.empty() && (sym == "@" || sym == "@i") && pos == "n") s.hyper = off;
    }
    s.gloss = line.substr(bar + 3);
    while (!s.gloss.empty() && (s.gloss.back() == ' ' || s.gloss.back() == '\r')) s.gloss.pop_back();
    order.push_back(offset);
    by_offset[offset] = std::move(s);
  }
  // Every noun whose definition (the gloss before its quoted examples) names its hypernym's lemma
  // after at least one word: the prefix up to that word is the cloze.
  struct Eligible {
    ClozeItem item;
    const std::string* gloss;
  };
  std::vector<Eligible> all;
  std::map<std::string, int64_t> freq;
  for (const auto& off : order) {
    const Synset& s = by_offset[off];
    if (s.hyper.empty()) continue;
    auto h = by_offset.find(s.hyper);
    if (h == by_offset.end()) continue;
    std::string answer = h->second.lemma;
    std::transform(answer.begin(), answer.end(), answer.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (!lower_word(answer)) continue;
    std::string def = s.gloss.substr(0, s.gloss.find("; \""));
    std::istringstream ws(def);
    std::vector<std::string> words;
    for (std::string w; ws >> w;) words.push_back(w);
    for (size_t k = 1; k < words.size(); ++k) {
      if (strip_punct(words[k]) != answer) continue;
      std::string prefix = words[0];
      for (size_t j = 1; j < k; ++j) prefix += " " + words[j];
      all.push_back({{prefix, answer}, &s.gloss});
      ++freq[answer];
      break;
    }
  }
  // Candidates: the most frequent answers that are one token (ties: alphabetical).
  std::vector<std::pair<int64_t, std::string>> ranked;
  for (const auto& [w, n] : freq) ranked.push_back({-n, w});
  std::sort(ranked.begin(), ranked.end());
  ClozeSet cs;
  for (const auto& [negn, w] : ranked) {
    if (static_cast<int64_t>(cs.candidates.size()) == candidates) break;
    auto ids = tok.encode_following(w);
    if (ids.size() != 1) continue;
    cs.candidates.push_back(w);
    cs.candidate_ids.push_back(ids[0]);
  }
  if (static_cast<int64_t>(cs.candidates.size()) < 2)
    throw Error(path + ": fewer than two hypernyms are one token in this vocabulary");
  std::set<std::string> cand(cs.candidates.begin(), cs.candidates.end());
  std::vector<ClozeItem> items;
  for (const auto& e : all)
    if (cand.count(e.item.answer) && (!keep || keep(*e.gloss)))
      items.push_back(e.item);
  cs.eligible = static_cast<int64_t>(items.size());
  if (static_cast<int64_t>(items.size()) > max_items) {
    std::vector<size_t> idx(items.size());
    for (size_t k = 0; k < idx.size(); ++k) idx[k] = k;
    std::mt19937_64 rng(seed);
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(max_items);
    std::sort(idx.begin(), idx.end());
    std::vector<ClozeItem> kept;
    for (size_t k : idx) kept.push_back(items[k]);
    items = std::move(kept);
  }
  if (items.empty()) throw Error(path + ": no cloze items (no noun of this set names its hypernym)");
  cs.items = std::move(items);
  return cs;
}

json probe(const ProbeOptions& o) {
  if (o.run.empty() == o.llm.empty()) throw UsageError("give exactly one of --run and --llm");
  if (o.window < 1 || o.batch < 1 || o.max_tokens < 1 || o.candidates < 2 || o.cloze_items < 1 || o.pairs < 1)
    throw UsageError("--window, --batch, --max-tokens, --cloze-items and --pairs must be >= 1, --candidates >= 2");
  set_threads(o.threads);
  const double t0 = now_seconds();

  // The LLM (a run's, with its method and selected state; or a checkpoint alone).
  config::Config c;
  std::unique_ptr<LlmSetup> setup;
  llm::Llama base{nullptr};
  std::unique_ptr<text::Tokenizer> own_tok;
  std::string llm_dir = o.llm;
  if (!o.run.empty()) {
    if (!io::exists(o.run + "/metrics.json") || !io::exists(o.run + "/config.resolved.json"))
      throw Error(o.run + " is not a finished run (no metrics.json or config.resolved.json)");
    c = train::RunDir(o.run, /*writer=*/false).read_config();
    if (find_method(c.method).kind != Kind::llm)
      throw Error(o.run + " is a '" + c.method + "' run: cora probe measures an LLM method's run");
    c.device = o.device;
    c.threads = o.threads;
    setup = std::make_unique<LlmSetup>(build_llm_setup(c));
    load_selected_state(*setup, o.run);
    setup->method->set_training(false);
    llm_dir = c.llm.dir;
  } else {
    torch::Device device(resolve_device(o.device));
    base = llm::load_llama(o.llm, {.dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat32,
                                   .device = device});
    own_tok = std::make_unique<text::Tokenizer>(text::Tokenizer::file_in(o.llm));
  }
  llm::LlamaImpl& m = setup ? setup->method->llm() : *base;
  const text::Tokenizer& tok = setup ? *setup->tok : *own_tok;
  const int32_t bos = bos_of(tok);
  m.eval();

  // Held-out text and the cloze set.
  const std::string held = llm_dir + "/heldout_glosses.txt";
  const std::string text_file = !o.text.empty() ? o.text : held;
  if (!io::exists(text_file))
    throw Error(o.text.empty() ? llm_dir + " has no heldout_glosses.txt (not a `cora pretrain` model): "
                                           "give held-out text with --text FILE"
                               : "--text " + o.text + " does not exist");
  if (o.text.empty() && io::read_file(held).empty())
    throw Error(held + " is empty (the LLM was pretrained without WordNet): give held-out text with --text FILE");
  auto text = text_ids(text_file, tok, bos, o.max_tokens);
  if (static_cast<int64_t>(text.size()) < o.window + 1)
    throw Error(text_file + ": " + std::to_string(text.size()) + " tokens, fewer than one window of " +
                std::to_string(o.window + 1) + " (--window)");
  std::string wordnet = o.wordnet;
  if (wordnet.empty()) {
    wordnet = "/usr/share/wordnet";
    json pc = json::parse(io::exists(llm_dir + "/config.resolved.json")
                              ? io::read_file(llm_dir + "/config.resolved.json") : "{}", nullptr, false);
    if (pc.is_object() && pc.contains("pretrain") && pc["pretrain"].is_object() &&
        pc["pretrain"].value("wordnet_dir", "") != "")
      wordnet = pc["pretrain"]["wordnet_dir"].get<std::string>();
  }
  // Cloze sets: with a `cora pretrain` model, definitions it learned in pretraining (a seeded
  // sample) and definitions held out of it; with another checkpoint, a sample of all of WordNet.
  std::set<std::string> held_glosses;
  if (io::exists(held)) {
    std::istringstream in(io::read_file(held));
    for (std::string l; std::getline(in, l);) held_glosses.insert(l);
  }
  const bool pretrained_here = !held_glosses.empty();  // empty: pretrained without WordNet
  struct SetSpec {
    std::string name, glosses;
    std::function<bool(const std::string&)> keep;
  };
  std::vector<SetSpec> specs;
  if (pretrained_here) {
    specs.push_back({"learned", "definitions the LLM read in pretraining",
                     [&](const std::string& g) { return !held_glosses.count(g); }});
    specs.push_back({"held_out", "definitions held out of the LLM's pretraining",
                     [&](const std::string& g) { return held_glosses.count(g) > 0; }});
  } else {
    specs.push_back({"wordnet", "all of WordNet", {}});
  }
  std::vector<ClozeSet> sets;
  std::vector<ClozeBatch> batches;
  std::vector<std::string> names;
  for (const auto& sp : specs) {
    sets.push_back(build_cloze(wordnet, tok, o.candidates, sp.keep, o.cloze_items, o.seed));
    batches.push_back(cloze_prompts(sets.back(), tok, bos));
    names.push_back(sp.name);
  }
  const ClozeSet& first = sets.front();  // every set has the same candidates
  double harmonic = 0;
  for (size_t k = 1; k <= first.candidates.size(); ++k) harmonic += 1.0 / static_cast<double>(k);
  const double K = static_cast<double>(first.candidates.size());

  json j;
  j["llm"] = io::absolute(llm_dir);
  if (!o.run.empty()) {
    j["run"] = io::absolute(o.run);
    j["method"] = c.method;
    if (c.llm.random_init) j["llm_random_init"] = true;
  }
  j["text"] = {{"file", io::absolute(text_file)}, {"tokens", (static_cast<int64_t>(text.size()) - 1) / o.window * o.window},
               {"window", o.window}};
  j["cloze"] = {{"wordnet", wordnet}, {"candidates", first.candidates}, {"chance_top1", 1.0 / K},
                {"chance_mrr", harmonic / K}, {"chance_mean_rank", (K + 1) / 2}, {"sets", json::object()}};
  for (size_t k = 0; k < sets.size(); ++k)
    j["cloze"]["sets"][names[k]] = {{"items", sets[k].items.size()}, {"eligible", sets[k].eligible},
                                    {"glosses", specs[k].glosses}};
  spdlog::info("probe: {} text tokens; cloze over {} candidates: {}", j["text"]["tokens"].get<int64_t>(),
               first.candidates.size(), j["cloze"]["sets"].dump());
  const auto& cand = first.candidate_ids;
  j["base"] = to_json(measure(m, text, batches, cand, o, nullptr, {}), names);

  llm::Adapter* ad = setup ? setup->method->adapter() : nullptr;
  if (setup && ad) {
    if (c.method == "cora") {
      // CoRA: the weights of `pairs` real (user, item) pairs of the test split, one at a time.
      const data::Split& test = setup->data.test;
      auto rows = cf::make_rows(test, setup->hist_len);
      const int64_t n = std::min<int64_t>(o.pairs, rows.size());
      auto g = torch::make_generator<at::CPUGeneratorImpl>(o.seed);
      auto sel = torch::randperm(rows.size(), g, torch::TensorOptions().dtype(torch::kInt64)).narrow(0, 0, n);
      cf::Rows probe_rows = rows.index(sel).to(setup->device);
      auto wc = setup->method->adapter_input(probe_rows);  // [n, D, r]
      auto uid = probe_rows.uid.to(torch::kCPU), iid = probe_rows.iid.to(torch::kCPU);
      json per = json::array();
      Scores mean, worst;
      mean.cloze.resize(sets.size());
      worst.cloze.assign(sets.size(), Cloze{1e300, 1e300, 0});
      for (int64_t p = 0; p < n; ++p) {
        Scores s = measure(m, text, batches, cand, o, ad, wc.narrow(0, p, 1));
        json e = to_json(s, names);
        e["uid"] = uid[p].item<int64_t>();
        e["iid"] = iid[p].item<int64_t>();
        per.push_back(e);
        mean.perplexity += s.perplexity / n;
        worst.perplexity = std::max(worst.perplexity, s.perplexity);
        for (size_t k = 0; k < sets.size(); ++k) {
          mean.cloze[k].top1 += s.cloze[k].top1 / n;
          mean.cloze[k].mrr += s.cloze[k].mrr / n;
          mean.cloze[k].mean_rank += s.cloze[k].mean_rank / n;
          worst.cloze[k].top1 = std::min(worst.cloze[k].top1, s.cloze[k].top1);
          worst.cloze[k].mrr = std::min(worst.cloze[k].mrr, s.cloze[k].mrr);
          worst.cloze[k].mean_rank = std::max(worst.cloze[k].mean_rank, s.cloze[k].mean_rank);
        }
        if ((p + 1) % 10 == 0) spdlog::info("probe: {}/{} pairs", p + 1, n);
      }
      j["pairs"] = {{"split", "test"}, {"n", n}, {"seed", o.seed}, {"mean", to_json(mean, names)},
                    {"worst", to_json(worst, names)}, {"per_pair", per}};
    } else {
      j["tuned"] = to_json(measure(m, text, batches, cand, o, ad, {}), names);  // the LoRA, as merged
    }
  }
  j["seconds"] = now_seconds() - t0;
  if (!o.run.empty()) io::write_file_atomic(o.run + "/probe.json", j.dump(2) + "\n");
  return j;
}

std::string probe_table(const json& j) {
  auto num = [](const json& v, int digits) {
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", digits, v.get<double>());
    return std::string(b);
  };
  const json& cz = j["cloze"];
  std::vector<std::string> names;
  for (auto it = cz["sets"].begin(); it != cz["sets"].end(); ++it) names.push_back(it.key());
  std::string out = "| LLM | perplexity |", rule = "|---|---|";
  for (const auto& n : names) {
    out += " " + n + " cloze top-1 | " + n + " cloze MRR |";
    rule += "---|---|";
  }
  out += "\n" + rule + "\n";
  auto row = [&](const std::string& name, const json& s) {
    std::string r = "| " + name + " | " + num(s["perplexity"], 2) + " |";
    for (const auto& n : names) r += " " + num(s["cloze"][n]["top1"], 3) + " | " + num(s["cloze"][n]["mrr"], 3) + " |";
    return r + "\n";
  };
  std::string method = j.value("method", "");
  out += row(method == "cora" ? "base (CoRA with no weights)" : "base", j["base"]);
  if (j.contains("tuned")) out += row(method + " LoRA applied (= merged)", j["tuned"]);
  if (j.contains("pairs")) {
    const std::string n = std::to_string(j["pairs"]["n"].get<int64_t>());
    out += row("CoRA weights, mean of " + n + " pairs", j["pairs"]["mean"]);
    out += row("CoRA weights, worst of " + n + " pairs", j["pairs"]["worst"]);
  }
  out += "| chance | – |";
  for (size_t k = 0; k < names.size(); ++k) out += " " + num(cz["chance_top1"], 3) + " | " + num(cz["chance_mrr"], 3) + " |";
  out += "\n\nPerplexity over " + std::to_string(j["text"]["tokens"].get<int64_t>()) + " held-out tokens (" +
         j["text"]["file"].get<std::string>() + "). Cloze: WordNet definitions cut before their hypernym, ranked among " +
         std::to_string(cz["candidates"].size()) + " candidates;";
  for (const auto& n : names)
    out += " " + n + ": " + std::to_string(cz["sets"][n]["items"].get<int64_t>()) + " " +
           cz["sets"][n]["glosses"].get<std::string>() + ";";
  out.back() = '.';
  return out + "\n";
}

}  // namespace cora::method
