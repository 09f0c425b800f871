// The training engine: data order (passes of a seeded permutation, a partial last batch per
// epoch or a continuous stream), micro-batches that give the gradients of one pass (dropout
// included, through per-sample keys), the schedules, and selection that a NaN cannot capture.
#include "cora/train/engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <set>

#include "cora/core/dropout.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/llm/loader.h"
#include "cora/method/cf_run.h"
#include "cora/method/llm_method.h"
#include "cora/text/tokenizer.h"
#include "method/llm_world.h"

namespace cora::train {
namespace {

// A trainable with no parameters of its own use: only the data order is looked at.
class Rows : public Trainable {
 public:
  explicit Rows(int64_t n) : n_(n), w_(torch::zeros({1}, torch::requires_grad())) {}
  Named parameters() override { return {{"w", w_}}; }
  void set_training(bool) override {}
  int64_t rows() const override { return n_; }
  torch::Tensor loss_sum(const std::vector<int64_t>&) override { return w_.sum(); }
  Validation validate() override { return {}; }

 private:
  int64_t n_;
  torch::Tensor w_;
};

TEST(Engine, EpochsArePassesWithAPartialLastBatch) {
  Rows r(10);
  RunDir nowhere("", false);
  Engine e(r, {.seed = 3, .batch_size = 4, .epochs = 2}, nowhere);
  EXPECT_EQ(e.steps_per_epoch(), 3);
  EXPECT_EQ(e.batch_positions(2), (std::pair<int64_t, int64_t>{8, 10}));   // partial
  EXPECT_EQ(e.batch_positions(3), (std::pair<int64_t, int64_t>{10, 14}));  // epoch 1
  for (int64_t pass : {0, 1}) {
    std::set<int64_t> seen;
    for (int64_t p = pass * 10; p < pass * 10 + 10; ++p) seen.insert(e.row_at(p));
    EXPECT_EQ(seen.size(), 10u);  // each pass is a permutation
  }
  std::vector<int64_t> a, b;
  for (int64_t p = 0; p < 10; ++p) a.push_back(e.row_at(p)), b.push_back(e.row_at(p + 10));
  EXPECT_NE(a, b);  // passes differ
  Engine same(r, {.seed = 3, .batch_size = 4, .epochs = 2}, nowhere);
  for (int64_t p = 0; p < 20; ++p) EXPECT_EQ(same.row_at(p), e.row_at(p));  // a function of (seed, p)
  EXPECT_NE(e.sample_key(0), e.sample_key(1));
}

TEST(Engine, IterationsMakeAContinuousStream) {
  Rows r(10);
  RunDir nowhere("", false);
  Engine e(r, {.batch_size = 4, .iterations = 5, .epochs = 3, .max_steps = 12}, nowhere);
  EXPECT_EQ(e.batch_positions(2), (std::pair<int64_t, int64_t>{8, 12}));  // crosses into pass 1
  EXPECT_EQ(e.total_steps(), 12);
}

TEST(Engine, Schedules) {
  EngineOptions o{.lr = 0.5};
  EXPECT_EQ(learning_rate(o, 0, 10), 0.5);
  EXPECT_EQ(learning_rate(o, 9, 10), 0.5);
  o.schedule = Schedule::warmup_cosine;
  o.warmup_steps = 2, o.warmup_start_lr = 0.1, o.min_lr = 0.0;
  EXPECT_DOUBLE_EQ(learning_rate(o, 1, 10), 0.3);
  EXPECT_DOUBLE_EQ(learning_rate(o, 2, 10), 0.5);
  EXPECT_NEAR(learning_rate(o, 6, 10), 0.25, 1e-12);
}

TEST(Engine, ReferenceScheduleRampsWithinTheEpoch) {
  // The ML-1M MF config: 100 iterations an epoch, warm-up 200 from 1e-5 to 1e-3, cosine to 8e-5
  // over 1000 epochs x 100 iterations (worked by hand from the official scheduler).
  EngineOptions o{.schedule = Schedule::reference, .lr = 1e-3, .warmup_start_lr = 1e-5,
                  .min_lr = 8e-5, .warmup_steps = 200};
  const int64_t total = 1000 * 100;
  EXPECT_DOUBLE_EQ(learning_rate(o, 0, total, 100), 1e-5);
  EXPECT_NEAR(learning_rate(o, 99, total, 100), 1e-5 + 99.0 / 200 * (1e-3 - 1e-5), 1e-15);  // ~5e-4
  EXPECT_DOUBLE_EQ(learning_rate(o, 100, total, 100), 1e-5);  // epoch 1 starts the ramp again
  EXPECT_NEAR(learning_rate(o, 150, total, 100), 1e-5 + 50.0 / 200 * (1e-3 - 1e-5), 1e-15);
  // Global step 200: the cosine starts at (almost) the full lr, counted from step 0.
  EXPECT_NEAR(learning_rate(o, 200, total, 100),
              (1e-3 - 8e-5) * 0.5 * (1 + std::cos(M_PI * 200 / total)) + 8e-5, 1e-15);
  EXPECT_NEAR(learning_rate(o, 50000, total, 100), 8e-5 + 0.5 * (1e-3 - 8e-5), 1e-15);
  EXPECT_NEAR(learning_rate(o, total, total, 100), 8e-5, 1e-15);
  // cora's schedule on the same steps: one ramp on the global step.
  o.schedule = Schedule::warmup_cosine;
  EXPECT_NEAR(learning_rate(o, 150, total, 100), 1e-5 + 150.0 / 200 * (1e-3 - 1e-5), 1e-15);
  EXPECT_DOUBLE_EQ(learning_rate(o, 200, total, 100), 1e-3);
}

TEST(Engine, NaNValidationNeverHoldsTheBest) {
  Progress p;
  EXPECT_TRUE(record_evaluation(p, std::nan(""), 0));  // nothing seen yet
  EXPECT_TRUE(record_evaluation(p, 0.6, 1));           // any number beats a NaN best
  EXPECT_EQ(p.best_epoch, 1);
  EXPECT_FALSE(record_evaluation(p, std::nan(""), 2));
  EXPECT_FALSE(record_evaluation(p, 0.5, 3));
  EXPECT_EQ(p.bad_epochs, 2);
  EXPECT_TRUE(record_evaluation(p, 0.7, 4));
  EXPECT_DOUBLE_EQ(p.best_metric, 0.7);
}

// CoRA on the tiny world's prompts, rows = the train split.
class Prompts : public Trainable {
 public:
  Prompts(method::LlmMethod& m, method::TokenizedSplit tok, cf::Rows rows)
      : m_(m), tok_(std::move(tok)), rows_(std::move(rows)) {}
  Named parameters() override { return m_.trainable(); }
  void set_training(bool on) override { m_.set_training(on); }
  int64_t rows() const override { return tok_.size(); }
  torch::Tensor loss_sum(const std::vector<int64_t>& rows) override {
    auto b = method::make_batch(tok_, rows_, rows, torch::kCPU);
    return torch::binary_cross_entropy_with_logits(m_.score(b), b.rows.label, {}, {},
                                                   at::Reduction::Sum);
  }
  Validation validate() override { return {}; }

 private:
  method::LlmMethod& m_;
  method::TokenizedSplit tok_;
  cf::Rows rows_;
};

TEST(Engine, MicroBatchesGiveTheGradientsOfOnePassDropoutIncluded) {
  cora::testing::World w;
  auto c = w.cora_config();
  c.cora.dropout = 0.3, c.cora.lora_dropout = 0.3;  // dropout everywhere it can be
  auto data = data::load_dataset(c.data.dir);
  text::Tokenizer tok(c.llm.dir + "/tokenizer.model");
  auto cf = method::load_cf_run(c.cf.run, data, torch::kCPU);
  auto tk = method::tokenize_split(data.train, data.items, tok, {}, tok.bos_id());
  auto grads = [&](int64_t micro) {
    auto m = llm::load_llama(c.llm.dir, {.random_init = true, .seed = 3});
    seed_everything(5);
    auto method = method::make_llm_method(c, m, cf, method::answer_token(tok, "Yes"), torch::kCPU);
    {
      torch::NoGradGuard ng;  // B away from zero so that every gradient path is live
      for (auto& [n, p] : method->trainable())
        if (n.find("lora_B") != std::string::npos) p.normal_(0, 0.1);
    }
    Prompts pr(*method, tk, cf::make_rows(data.train, 0));
    RunDir nowhere("", false);
    Engine e(pr, {.seed = 7, .batch_size = 16, .micro_batch_size = micro, .iterations = 1}, nowhere);
    pr.set_training(true);
    e.step(0, 0.0);  // lr 0: the parameters stay, the gradients remain to compare
    std::vector<torch::Tensor> g;
    for (auto& [n, p] : method->trainable()) g.push_back(p.grad().clone());
    return g;
  };
  auto whole = grads(0), four = grads(4), odd = grads(5);
  ASSERT_EQ(whole.size(), four.size());
  double total = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_TRUE(torch::allclose(four[i], whole[i], 1e-4, 1e-6)) << i;
    EXPECT_TRUE(torch::allclose(odd[i], whole[i], 1e-4, 1e-6)) << i;  // 5 + 5 + 5 + 1
    total += whole[i].abs().sum().item<double>();
  }
  EXPECT_GT(total, 0);
}

// w [4] fitted to rows (x_r, y_r) through keyed dropout; raises SIGTERM during step `raise_at`.
class Toy : public Trainable {
 public:
  explicit Toy(int64_t raise_at = -1) : raise_at_(raise_at) {
    torch::manual_seed(1);
    x_ = torch::randn({30, 4});
    y_ = x_.matmul(torch::tensor({1.0f, -2.0f, 0.5f, 3.0f}));
    w_ = torch::zeros({4}, torch::requires_grad());
  }
  Named parameters() override { return {{"w", w_}}; }
  void set_training(bool on) override { training_ = on; }
  int64_t rows() const override { return 30; }
  torch::Tensor loss_sum(const std::vector<int64_t>& rows) override {
    if (calls_++ == raise_at_) std::raise(SIGTERM);
    auto idx = torch::tensor(rows, torch::kInt64);
    auto x = cora::dropout(x_.index_select(0, idx), 0.2, training_);
    return (x.matmul(w_) - y_.index_select(0, idx)).pow(2).sum();
  }
  Validation validate() override {
    double err = (x_.matmul(w_) - y_).pow(2).mean().item<double>();
    return {-err, {{"mse", err}}};
  }
  torch::Tensor w_;

 private:
  int64_t raise_at_, calls_ = 0;
  bool training_ = false;
  torch::Tensor x_, y_;
};

TEST(Engine, SigtermCheckpointsMidEpochAndResumeEqualsAnUninterruptedRun) {
  cora::testing::TempDir t;
  EngineOptions o{.seed = 4, .batch_size = 4, .micro_batch_size = 2, .epochs = 3, .lr = 0.05,
                  .adam = {.weight_decay = 0.01, .decoupled = true}};
  Toy whole;
  RunDir a(t.file("a"));
  ASSERT_TRUE(Engine(whole, o, a).run(false).finished);
  auto lines = [](const std::string& text) { return std::count(text.begin(), text.end(), '\n'); };
  EXPECT_EQ(lines(io::read_file(t.file("a/metrics.jsonl"))), 3);
  // 8 steps an epoch (7 of 2 micro-batches, then 1). Micro-batch 21 is in step 3 of epoch 1 (a
  // best exists); micro-batch 5 is in step 2 of epoch 0, before any evaluation selected a best.
  struct Stop {
    int64_t micro_batch, step, epoch, epoch_step;
  };
  for (const Stop& s : {Stop{21, 12, 0, 4}, Stop{5, 3, -1, 3}}) {
    SCOPED_TRACE(s.micro_batch);
    install_stop_signals();
    Toy stopped(s.micro_batch);
    RunDir b(t.file("b" + std::to_string(s.micro_batch)));
    auto msg = cora::testing::error_of([&] { Engine(stopped, o, b).run(false); });
    EXPECT_NE(msg.find("SIGTERM stopped the run mid-epoch (step " + std::to_string(s.step) + ")"),
              std::string::npos)
        << msg;
    EXPECT_EQ(stop_requested(), SIGTERM);
    clear_stop_request();
    std::signal(SIGTERM, SIG_DFL);
    auto progress = b.read_progress();
    ASSERT_TRUE(progress);
    EXPECT_EQ(progress->step, s.step);
    EXPECT_EQ(progress->epoch, s.epoch);
    EXPECT_EQ(progress->epoch_step, s.epoch_step);
    EXPECT_FALSE(progress->done);
    EXPECT_EQ(io::exists(b.ckpt("best.safetensors")), s.epoch >= 0);
    Toy resumed;
    auto r = Engine(resumed, o, b).run(true);
    ASSERT_TRUE(r.finished);
    EXPECT_TRUE(torch::equal(resumed.w_, whole.w_)) << resumed.w_ << whole.w_;
    EXPECT_EQ(lines(io::read_file(b.path() + "/metrics.jsonl")), 3);
  }
}

}  // namespace
}  // namespace cora::train
