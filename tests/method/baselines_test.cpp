// TALLRec and CoLLM on a tiny random LLM: TALLRec trains only its LoRA (base weights untouched);
// CoLLM's CF embeddings enter at exactly the two slot positions, its step 1 LoRA is loaded
// frozen, and only the MLP trains.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/llm/loader.h"
#include "cora/method/llm_method.h"
#include "cora/method/cf_run.h"
#include "cora/method/train.h"
#include "cora/text/tokenizer.h"
#include "cora/train/adam.h"
#include "method/llm_world.h"
#include "test_util.h"

namespace cora::method {
namespace {
using cora::testing::error_of;
using cora::testing::World;

std::vector<torch::Tensor> copies(llm::Llama& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m->parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(Tallrec, TrainsOnlyItsLoraAndLeavesTheBaseWeightsUntouched) {
  World w;
  auto c = w.cora_config();
  c.method = "tallrec";
  auto data = data::load_dataset(c.data.dir);
  text::Tokenizer tok(c.llm.dir + "/tokenizer.model");
  auto m = llm::load_llama(c.llm.dir, {.random_init = true, .seed = 3});
  auto before = copies(m);
  auto method = make_llm_method(c, m, nullptr, answer_token(tok, "Yes"), torch::kCPU);
  auto params = method->trainable();
  ASSERT_EQ(params.size(), 2u * 2 * 2);  // 2 layers x {q, v} x {A, B}
  for (auto& [name, p] : params) EXPECT_EQ(name.rfind("lora.layers.", 0), 0u) << name;
  std::vector<torch::Tensor> plist;
  for (auto& [n, p] : params) plist.push_back(p);
  train::Adam opt(plist, {.weight_decay = 0.0, .decoupled = true});
  auto tk = tokenize_split(data.train, data.items, tok, {}, tok.bos_id());
  auto rows = cf::make_rows(data.train, 0);
  method->set_training(true);
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    auto b = make_batch(tk, rows, {0, 1, 2, 3, 4, 5}, torch::kCPU);
    torch::binary_cross_entropy_with_logits(method->score(b), b.rows.label).backward();
    opt.step(1e-2);
  }
  auto after = m->parameters();
  for (size_t k = 0; k < after.size(); ++k) {
    EXPECT_FALSE(after[k].requires_grad());
    EXPECT_TRUE(torch::equal(after[k], before[k])) << "base parameter " << k << " changed";
  }
  double b_norm = 0;
  for (auto& [n, p] : params)
    if (n.find("lora_B") != std::string::npos) b_norm += p.norm().item<double>();
  EXPECT_GT(b_norm, 0);  // B left zero: the LoRA trained
}

TEST(Collm, SlotsAreSingleTokenPositionsWhoseEmbeddingsAreReplaced) {
  World w;
  auto c = w.config("collm");
  c.collm.hidden = 16;
  auto data = data::load_dataset(c.data.dir);
  text::Tokenizer tok(c.llm.dir + "/tokenizer.model");
  auto m = llm::load_llama(c.llm.dir, {.random_init = true, .seed = 3});
  auto cf = load_cf_run(c.cf.run, data, torch::kCPU);
  PromptOptions po;
  po.templ = kCollmMovieTemplate;
  auto tk = tokenize_split(data.test, data.items, tok, po, tok.bos_id());
  ASSERT_EQ(tk.user_pos.size(), data.test.size());
  for (int64_t r = 0; r < 5; ++r) {
    // One position each, holding the unk id; the text before the user slot encodes as usual.
    const int32_t* row = tk.ids.data() + tk.offsets[r];
    EXPECT_EQ(row[tk.user_pos[r]], tok.unk_id());
    EXPECT_EQ(row[tk.item_pos[r]], tok.unk_id());
    EXPECT_LT(tk.user_pos[r], tk.item_pos[r]);
    std::string text = render_prompt(data.items, data.test.history(r), data.test.iid[r], po);
    auto head = tok.encode(text.substr(0, text.find(kUserSlot)));
    ASSERT_EQ(static_cast<int64_t>(head.size()) + 1, tk.user_pos[r]);
    for (size_t k = 0; k < head.size(); ++k) EXPECT_EQ(row[1 + k], head[k]);
  }
  auto method = make_llm_method(c, m, cf, answer_token(tok, "Yes"), torch::kCPU);
  method->set_training(false);
  torch::NoGradGuard ng;
  auto b = make_batch(tk, cf::make_rows(data.test, 0), {0, 1, 2, 3}, torch::kCPU);
  auto base = method->score(b);
  // Whatever token sits at a slot, the score is the same: its embedding is replaced.
  auto b2 = b;
  b2.ids = b.ids.clone();
  for (int64_t k = 0; k < 4; ++k) {
    b2.ids[k][b.user_pos[k]] = 5;
    b2.ids[k][b.item_pos[k]] = 7;
  }
  EXPECT_TRUE(torch::allclose(method->score(b2), base, 1e-6, 1e-6));
  // A token anywhere else does change it; so do different CF embeddings at the slots.
  auto b3 = b;
  b3.ids = b.ids.clone();
  for (int64_t k = 0; k < 4; ++k) {
    auto at = b3.ids[k][b.user_pos[k] - 1];
    at.add_(1);  // any other token
  }
  EXPECT_FALSE(torch::allclose(method->score(b3), base, 1e-6, 1e-6));
  auto b4 = b;
  b4.rows.uid = b.rows.uid.remainder(data.n_users - 1) + 1;  // every row another user
  EXPECT_FALSE(torch::allclose(method->score(b4), base, 1e-6, 1e-6));
  // The override's index is (row, slot) for users then items.
  auto ov = slot_override(b, torch::zeros({4, 32}), torch::ones({4, 32}));
  EXPECT_TRUE(torch::equal(ov.index.select(1, 1), torch::cat({b.user_pos, b.item_pos})));
  EXPECT_TRUE(torch::equal(ov.index.select(1, 0), torch::arange(4).repeat({2})));
}

TEST(Collm, LoadsTheTallrecLoraFrozenAndTrainsOnlyItsMlp) {
  World w;
  method::train(w.config("tallrec"), w.t.file("tallrec"), false);
  auto c = w.config("collm");
  c.collm.tallrec_run = w.t.file("tallrec");
  c.prompt.templ = kCollmMovieTemplate;
  auto data = data::load_dataset(c.data.dir);
  text::Tokenizer tok(c.llm.dir + "/tokenizer.model");
  auto m = llm::load_llama(c.llm.dir, {.random_init = true, .seed = c.train.seed});
  auto cf = load_cf_run(c.cf.run, data, torch::kCPU);
  auto method = make_llm_method(c, m, cf, answer_token(tok, "Yes"), torch::kCPU);
  auto params = method->trainable();
  ASSERT_EQ(params.size(), 4u);  // fc1, fc2 weights and biases
  for (auto& [n, p] : params) EXPECT_EQ(n.rfind("mlp.", 0), 0u) << n;
  EXPECT_EQ(params[0].second.size(0), 16);
  EXPECT_EQ(params[0].second.size(1), 8);   // d_cf
  EXPECT_EQ(params[2].second.size(0), 32);  // d_model
  // The whole CoLLM run trains and evaluates; a non-TALLRec step-1 run is refused.
  auto sum = method::train(c, w.t.file("collm"), false);
  EXPECT_TRUE(std::isfinite(sum.test.auc));
  auto cfg = nlohmann::json::parse(io::read_file(w.t.file("collm/metrics.json")));
  EXPECT_EQ(cfg["method"], "collm");
  c.collm.tallrec_run = w.t.file("collm");
  std::string e = error_of([&] { make_llm_method(c, m, cf, answer_token(tok, "Yes"), torch::kCPU); });
  EXPECT_NE(e.find("collm.tallrec_run"), std::string::npos) << e;
  EXPECT_NE(e.find("not a TALLRec run"), std::string::npos) << e;
}

TEST(Trainer, SelectionSplitIsAFixedSample) {
  data::Split s;
  s.name = "valid";
  s.hist_offsets.push_back(0);
  for (int i = 0; i < 50; ++i) s.push_row(1 + i % 7, 1 + i, i % 2, 1000 + i, 1, {});
  auto a = selection_split(s, 20), b = selection_split(s, 20);
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(a.iid, b.iid);
  EXPECT_TRUE(std::is_sorted(a.timestamp.begin(), a.timestamp.end()));
  EXPECT_EQ(selection_split(s, 0).size(), 50u);
  EXPECT_EQ(selection_split(s, 80).size(), 50u);
}

}  // namespace
}  // namespace cora::method
