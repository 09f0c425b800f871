// `cora probe`: the WordNet cloze is built as specified from the dictionary format; the
// perplexity is the window-mean cross-entropy of an independent path; a LoRA or a CoRA pair's
// weights applied over many windows equal the merged weights; a trained TALLRec and a trained
// CoRA run are probed end to end (probe.json, the table), and wrong inputs are refused by name.
#include "cora/method/probe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "cora/core/error.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/llm/adapters.h"
#include "cora/method/train.h"
#include "llm_world.h"

namespace cora::method {
namespace {
using cora::testing::TempDir;
using cora::testing::write_text;
using json = nlohmann::json;

// data.noun in WordNet's format: offset lex_filenum n w_cnt(hex) words… p_cnt pointers… | gloss.
std::string synset(const std::string& off, const std::string& word, const std::string& hyper,
                   const std::string& gloss, const std::string& sym = "@") {
  std::string ptr = hyper.empty() ? "000" : "001 " + sym + " " + hyper + " n 0000";
  return off + " 05 n 01 " + word + " 0 " + ptr + " | " + gloss + "  \n";
}

const char* kGlosses[] = {
    "a living organism that moves",                     // 1 animal
    "a domesticated animal that barks",                 // 2 dog → animal
    "a small animal with whiskers",                     // 3 cat → animal
    "a tall plant with a trunk",                        // 4 tree → plant
    "a living organism without legs",                   // 5 plant
    "an intelligent dog with a curly coat",             // 6 poodle → dog
    "a tree that bears acorns",                         // 7 oak → tree
    "a flowerless plant; \"ferns grow in shade\"",      // 8 fern → plant
    "a large quadruped ridden by people",               // 9 horse → quadruped
    "an animal with four legs",                         // 10 quadruped → animal
    "a young one; \"a dog puppy\"",                     // 11 puppy → dog (only in the example)
    "a famous dog of television",                       // 12 Rex → dog (instance)
};

struct Dict {
  TempDir t;
  std::unique_ptr<text::Tokenizer> tok;
  Dict() {
    std::string noun = "  1 This software and database is being provided ... (licence header)\n";
    const char* words[] = {"animal", "dog", "cat", "tree", "plant", "poodle", "oak", "fern",
                           "horse", "quadruped", "puppy", "Rex"};
    const char* hyper[] = {"", "00000001", "00000001", "00000005", "", "00000002", "00000004",
                           "00000005", "00000010", "00000001", "00000002", "00000002"};
    for (int k = 0; k < 12; ++k) {
      char off[16];
      std::snprintf(off, sizeof off, "%08d", k + 1);
      noun += synset(off, words[k], hyper[k], kGlosses[k], k == 11 ? "@i" : "@");
    }
    write_text(t.file("wn/data.noun"), noun);
    std::string corpus;
    for (int r = 0; r < 20; ++r)
      for (const char* g : kGlosses) corpus += std::string(g) + "\n";
    write_text(t.file("corpus.txt"), corpus);
    // "▁quadruped" is not a piece: with 60 pieces it splits (the candidates need one token).
    text::Tokenizer::train("--input=" + t.file("corpus.txt") + " --model_prefix=" + t.file("tok") +
                           " --vocab_size=60 --model_type=bpe --hard_vocab_limit=false"
                           " --user_defined_symbols=▁animal,▁dog,▁plant,▁tree --minloglevel=2");
    tok = std::make_unique<text::Tokenizer>(t.file("tok.model"));
  }
};

TEST(Probe, ClozeFollowsTheHypernymsOfTheDictionary) {
  Dict d;
  ASSERT_GT(d.tok->encode_following("quadruped").size(), 1u);
  auto cs = build_cloze(d.t.file("wn"), *d.tok, 4, {}, 100, 0);
  // Frequencies: animal 3 (dog, cat, quadruped), dog 2 (poodle, Rex), plant 2 (tree, fern),
  // quadruped 1 (two pieces: left out), tree 1.
  EXPECT_EQ(cs.candidates, (std::vector<std::string>{"animal", "dog", "plant", "tree"}));
  ASSERT_EQ(cs.candidate_ids.size(), 4u);
  EXPECT_EQ(cs.candidate_ids[1], d.tok->encode_following("dog")[0]);
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& it : cs.items) got.push_back({it.prefix, it.answer});
  // Definitions only (the puppy's "dog" is in its example), the first occurrence after a word,
  // instance hypernyms included, in dictionary order; the horse's answer is no candidate.
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"a domesticated", "animal"}, {"a small", "animal"}, {"a tall", "plant"},
                     {"an intelligent", "dog"}, {"a", "tree"}, {"a flowerless", "plant"},
                     {"an", "animal"}, {"a famous", "dog"}}));
  EXPECT_EQ(cs.eligible, 8);
  // Held-out glosses only (as `cora pretrain` wrote them), and a seeded sample.
  std::set<std::string> held{kGlosses[5], kGlosses[7]};
  auto h = build_cloze(d.t.file("wn"), *d.tok, 4, [&](const std::string& g) { return held.count(g) > 0; }, 100, 0);
  EXPECT_EQ(h.candidates, cs.candidates);  // counted over the whole dictionary
  ASSERT_EQ(h.items.size(), 2u);
  EXPECT_EQ(h.items[0].answer, "dog");
  EXPECT_EQ(h.items[1].answer, "plant");
  auto s1 = build_cloze(d.t.file("wn"), *d.tok, 4, {}, 3, 5);
  auto s2 = build_cloze(d.t.file("wn"), *d.tok, 4, {}, 3, 5);
  ASSERT_EQ(s1.items.size(), 3u);
  EXPECT_EQ(s1.eligible, 8);
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(s1.items[k].prefix, s2.items[k].prefix);
  // A broken line is named by file and line.
  write_text(d.t.file("bad/data.noun"), synset("00000001", "animal", "", "x") + "00000002 05 n zz dog 0 000 | y\n");
  try {
    build_cloze(d.t.file("bad"), *d.tok, 4, {}, 100, 0);
    FAIL() << "a broken data.noun was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad/data.noun:2: word count 'zz'"), std::string::npos) << e.what();
  }
  try {
    build_cloze(d.t.file("none"), *d.tok, 4, {}, 100, 0);
    FAIL() << "a missing dictionary was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none/data.noun does not exist"), std::string::npos) << e.what();
  }
}

llm::LlamaConfig small() {
  llm::LlamaConfig c;
  c.hidden_size = 32, c.intermediate_size = 40, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 50;
  return c;
}

std::vector<int32_t> random_ids(int64_t n, int seed) {
  auto g = torch::make_generator<at::CPUGeneratorImpl>(seed);
  auto t = torch::randint(50, {n}, g, torch::kInt64);
  std::vector<int32_t> ids(n);
  for (int64_t k = 0; k < n; ++k) ids[k] = static_cast<int32_t>(t[k].item<int64_t>());
  return ids;
}

TEST(Probe, PerplexityIsTheMeanCrossEntropyOfWholeWindows) {
  llm::Llama m(small());
  m->init_random(3);
  const int64_t T = 8;
  auto ids = random_ids(3 * T + 5, 1);  // three whole windows of T + 1; the 4 left over are not scored
  double nll = 0;
  torch::NoGradGuard ng;
  for (int64_t w = 0; w < 3; ++w) {
    std::vector<int64_t> win(ids.begin() + w * T, ids.begin() + w * T + T + 1);
    auto x = torch::tensor(win, torch::kInt64).unsqueeze(0);
    auto lp = torch::log_softmax(m->logits(m->hidden_at({x.narrow(1, 0, T)}, torch::arange(T).unsqueeze(0))), -1);
    for (int64_t t = 0; t < T; ++t) nll -= lp[0][t][win[t + 1]].item<double>();
  }
  EXPECT_NEAR(text_nll(*m, ids, T, 2), nll / (3 * T), 1e-5);
  EXPECT_NEAR(text_nll(*m, ids, T, 1), nll / (3 * T), 1e-5);  // batching does not matter
}

// Adds (α/r)·B·Aᵀ (A = W_cᵀ for CoRA, A as trained for LoRA) to a copy of `m`'s attention weights.
llm::Llama merged(const llm::Llama& m, const std::function<torch::Tensor(int64_t, const std::string&)>& delta) {
  llm::Llama out(m->config());
  torch::NoGradGuard ng;
  auto src = m->named_parameters();
  for (auto& p : out->named_parameters()) p.value().copy_(src[p.key()]);
  for (int64_t l = 0; l < m->config().num_hidden_layers; ++l) {
    auto& layer = *out->model->layers[l]->as<llm::DecoderLayerImpl>();
    for (auto [lin, name] : {std::pair{layer.self_attn->q_proj, "q_proj"}, {layer.self_attn->k_proj, "k_proj"},
                             {layer.self_attn->v_proj, "v_proj"}, {layer.self_attn->o_proj, "o_proj"}})
      lin->weight.add_(delta(l, name));
  }
  return out;
}

TEST(Probe, AppliedWeightsEqualMergedOnEveryWindow) {
  llm::Llama m(small());
  m->init_random(3);
  m->eval();
  auto ids = random_ids(5 * 8 + 1, 2);
  // CoRA: one pair's W_c [1, D, r], repeated over the windows of a batch.
  llm::PerSampleLowRank cora(small(), llm::LowRankOptions{.rank = 4, .alpha = 8, .dropout = 0.1});
  cora->eval();
  {
    torch::NoGradGuard ng;
    for (auto& p : cora->parameters()) p.normal_(0, 0.5);
  }
  auto wc = torch::randn({1, 32, 4});
  auto cnamed = cora->named_parameters();
  auto mc = merged(m, [&](int64_t l, const std::string& n) {
    return 2.0 * cnamed["layers." + std::to_string(l) + "." + n + ".lora_B"].matmul(wc[0].t());
  });
  const double applied = text_nll(*m, ids, 8, 3, cora.get(), wc), base = text_nll(*m, ids, 8, 3);
  EXPECT_NEAR(applied, text_nll(*mc, ids, 8, 3), 1e-5);
  EXPECT_GT(std::abs(applied - base), 1e-3);  // the weights change the model
  // TALLRec: the shared LoRA is W + (α/r)·B·A.
  llm::SharedLowRank lora(small(), llm::LowRankOptions{.rank = 4, .alpha = 8, .dropout = 0.1});
  lora->eval();
  {
    torch::NoGradGuard ng;
    for (auto& p : lora->parameters()) p.normal_(0, 0.5);
  }
  auto lnamed = lora->named_parameters();
  auto ml = merged(m, [&](int64_t l, const std::string& n) {
    const std::string k = "layers." + std::to_string(l) + "." + n;
    return 2.0 * lnamed[k + ".lora_B"].matmul(lnamed[k + ".lora_A"]);
  });
  EXPECT_NEAR(text_nll(*m, ids, 8, 3, lora.get()), text_nll(*ml, ids, 8, 3), 1e-5);
}

TEST(Probe, TrainedRunsEndToEnd) {
  cora::testing::World w;
  Dict d;
  // Held-out text: the dictionary's glosses (any text file serves with --text).
  std::string text;
  for (int r = 0; r < 6; ++r)
    for (const char* g : kGlosses) text += std::string(g) + "\n";
  write_text(w.t.file("held.txt"), text);
  // The probe reads the run's LLM through its tokenizer: the World's (its vocabulary has no
  // one-piece hypernyms), so give the dictionary's tokenizer to the World's LLM.
  std::filesystem::copy_file(d.t.file("tok.model"), w.t.file("llm/tokenizer.model"),
                             std::filesystem::copy_options::overwrite_existing);
  // The runs lie in a `cora table` layout (OUT/runs/<row>/seed<k>), with the MF run beside them.
  auto c = w.config("tallrec");
  c.prompt.answer = "dog";  // a piece of this tokenizer
  train(c, w.t.file("table/runs/tallrec/seed0"), false);
  auto cc = w.config("cora");
  cc.prompt.answer = "dog";
  train(cc, w.t.file("table/runs/cora/seed0"), false);
  io::make_dirs(w.t.file("table/runs/mf"));
  std::filesystem::copy(w.t.file("cf"), w.t.file("table/runs/mf/seed0"), std::filesystem::copy_options::recursive);

  // `cora probe --table`: every LLM run not yet probed, one JSON line each; then nothing left.
  const std::string cli = std::string(std::getenv("CORA_BIN") ? std::getenv("CORA_BIN") : "./cora") +
                          " probe --table " + w.t.file("table") + " --text " + w.t.file("held.txt") +
                          " --wordnet " + d.t.file("wn") + " --candidates 4 --window 16 --pairs 2";
  auto run_cli = [&](const std::string& cmd) {
    std::string out;
    FILE* p = ::popen((cmd + " 2>" + w.t.file("cli.err")).c_str(), "r");
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    EXPECT_EQ(::pclose(p), 0) << io::read_file(w.t.file("cli.err"));
    return out;
  };
  std::istringstream lines(run_cli(cli));
  std::vector<std::string> methods;
  for (std::string l; std::getline(lines, l);) methods.push_back(json::parse(l)["method"]);
  EXPECT_EQ(methods, (std::vector<std::string>{"cora", "tallrec"}));
  EXPECT_EQ(json::parse(io::read_file(w.t.file("table/runs/cora/seed0/probe.json")))["pairs"]["n"], 2);
  EXPECT_FALSE(io::exists(w.t.file("table/runs/mf/seed0/probe.json")));
  EXPECT_EQ(run_cli(cli), "");
  EXPECT_NE(io::read_file(w.t.file("cli.err")).find("probed before"), std::string::npos);

  ProbeOptions o;
  o.text = w.t.file("held.txt");
  o.wordnet = d.t.file("wn");
  o.candidates = 4;
  o.window = 16;
  o.run = w.t.file("table/runs/tallrec/seed0");
  json tj = probe(o);
  EXPECT_EQ(tj["method"], "tallrec");
  EXPECT_EQ(tj["cloze"]["sets"]["wordnet"]["items"], 8);
  EXPECT_EQ(tj["cloze"]["sets"]["wordnet"]["glosses"], "all of WordNet");
  EXPECT_NEAR(tj["cloze"]["chance_mrr"].get<double>(), (1 + 0.5 + 1.0 / 3 + 0.25) / 4, 1e-12);
  for (const char* k : {"top1", "mrr", "mean_rank"}) {
    EXPECT_TRUE(tj["base"]["cloze"]["wordnet"].contains(k)) << k;
    EXPECT_TRUE(tj["tuned"]["cloze"]["wordnet"].contains(k)) << k;
  }
  const double mrr = tj["base"]["cloze"]["wordnet"]["mrr"].get<double>();
  EXPECT_GE(mrr, 0.25);  // ranks 1..4
  EXPECT_LE(mrr, 1.0);
  EXPECT_GT(tj["base"]["perplexity"].get<double>(), 1.0);
  EXPECT_NE(tj["tuned"]["perplexity"].get<double>(), tj["base"]["perplexity"].get<double>());
  EXPECT_EQ(json::parse(io::read_file(w.t.file("table/runs/tallrec/seed0/probe.json")))["tuned"], tj["tuned"]);
  EXPECT_NE(probe_table(tj).find("tallrec LoRA applied (= merged)"), std::string::npos);

  o.run = w.t.file("table/runs/cora/seed0");
  o.pairs = 4;
  json cj = probe(o);
  ASSERT_TRUE(cj.contains("pairs"));
  EXPECT_FALSE(cj.contains("tuned"));
  EXPECT_EQ(cj["pairs"]["n"], 4);
  ASSERT_EQ(cj["pairs"]["per_pair"].size(), 4u);
  double lo = 1e300, hi = 0, sum = 0;
  for (const auto& p : cj["pairs"]["per_pair"]) {
    const double v = p["perplexity"].get<double>();
    lo = std::min(lo, v), hi = std::max(hi, v), sum += v;
  }
  EXPECT_NEAR(cj["pairs"]["mean"]["perplexity"].get<double>(), sum / 4, 1e-9);
  EXPECT_EQ(cj["pairs"]["worst"]["perplexity"].get<double>(), hi);
  EXPECT_GT(hi, lo);  // the pairs' weights differ
  EXPECT_NE(probe_table(cj).find("CoRA weights, worst of 4 pairs"), std::string::npos);
  double worst_mrr = 1;
  for (const auto& p : cj["pairs"]["per_pair"]) worst_mrr = std::min(worst_mrr, p["cloze"]["wordnet"]["mrr"].get<double>());
  EXPECT_EQ(cj["pairs"]["worst"]["cloze"]["wordnet"]["mrr"].get<double>(), worst_mrr);

  // Refused by name: a CF run, no held-out text, both --run and --llm.
  ProbeOptions bad = o;
  bad.run = w.t.file("cf");
  try {
    probe(bad);
    FAIL() << "a CF run was probed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a 'mf' run"), std::string::npos) << e.what();
  }
  bad = o;
  bad.text.clear();
  try {
    probe(bad);
    FAIL() << "probed without held-out text";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no heldout_glosses.txt"), std::string::npos) << e.what();
  }
  write_text(w.t.file("llm/heldout_glosses.txt"), "");  // pretrained without WordNet
  try {
    probe(bad);
    FAIL() << "probed an empty held-out text";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("heldout_glosses.txt is empty"), std::string::npos) << e.what();
  }
  bad = o;
  bad.llm = w.t.file("llm");
  EXPECT_THROW(probe(bad), UsageError);
}

}  // namespace
}  // namespace cora::method
