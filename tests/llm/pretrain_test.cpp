// `cora pretrain` on a tiny corpus: the Hugging Face layout it writes loads back through the
// loader with the trained weights, passes an independent Python reader, and the tokenizer keeps
// "Yes" whole.
#include "cora/method/pretrain.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/llm/loader.h"
#include "cora/method/prompt.h"
#include "cora/text/tokenizer.h"
#include "test_util.h"

namespace cora::llm {
namespace {
using cora::testing::TempDir;
using cora::testing::write_text;

TEST(Pretrain, TinyRunRoundTripsThroughTheLoader) {
  TempDir t;
  const char* words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "story",
                         "night", "love", "war", "house", "river", "star", "king", "queen", "city"};
  std::mt19937 rng(1);
  std::string items = "iid\ttitle\n";
  for (int i = 1; i <= 400; ++i) {
    std::string title;
    for (int w = 0; w < 4; ++w) title += std::string(w ? " " : "") + words[rng() % 18];
    items += std::to_string(i) + "\t" + title + " (" + std::to_string(1950 + i % 50) + ")\n";
  }
  write_text(t.file("data/items.tsv"), items);
  auto c = config::parse(R"({"method": "pretrain", "data": {"dir": ")" + t.file("data") + R"("},
    "pretrain": {"wordnet_dir": "", "vocab_size": 320, "hidden_size": 16, "layers": 1, "heads": 2,
                 "kv_heads": 1, "intermediate": 24, "seq_len": 16, "steps": 6, "eval_every": 3,
                 "heldout_fraction": 0.1},
    "train": {"batch_size": 4, "lr": 0.01, "warmup_steps": 2}, "log_level": "warn", "threads": 2})", "t");
  auto s = method::pretrain(c, t.file("m"), false);
  EXPECT_EQ(s.steps, 6);
  EXPECT_TRUE(std::isfinite(s.heldout_ppl));
  EXPECT_GT(s.unigram_ppl, 1.0);
  for (auto f : {"config.json", "model.safetensors", "tokenizer.model", "pretrain.json"})
    EXPECT_TRUE(io::exists(t.file("m/") + f)) << f;
  // The held-out WordNet glosses (general text for `cora probe`): none without WordNet.
  EXPECT_EQ(io::read_file(t.file("m/heldout_glosses.txt")), "");
  // The loader reads the same weights the trainer last checkpointed.
  Llama m = load_llama(t.file("m"));
  auto ck = io::load_safetensors(t.file("m/ckpt/latest.safetensors"));
  Llama fresh(m->config());
  {
    torch::NoGradGuard ng;
    for (auto& p : fresh->named_parameters()) p.value().copy_(ck.at("model." + p.key()));
  }
  torch::NoGradGuard ng;
  auto ids = torch::tensor({{1, 5, 9, 30, 7}}, torch::kInt64);
  auto pos = torch::tensor({4});
  EXPECT_TRUE(torch::equal(m->logits(m->hidden_at({ids}, pos)), fresh->logits(fresh->hidden_at({ids}, pos))));
  text::Tokenizer tok(t.file("m/tokenizer.model"));
  EXPECT_EQ(tok.encode("Yes").size(), 1u);
  EXPECT_EQ(tok.piece(method::answer_token(tok, "Yes")), "▁Yes");
  // An independent reader of the safetensors specification (Debian's python3-torch, which
  // scripts/setup.sh installs: the check runs everywhere the test command runs).
  ASSERT_TRUE(io::exists("/usr/bin/python3")) << "no /usr/bin/python3 (scripts/setup.sh installs it)";
  std::string cmd = "/usr/bin/python3 " + std::string(CORA_SOURCE_DIR) +
                    "/tests/fixtures/check_hf_layout.py " + t.file("m") + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512] = {0};
  std::string out;
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.rfind("OK ", 0), 0u) << out;
}

}  // namespace
}  // namespace cora::llm
