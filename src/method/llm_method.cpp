// ICL and CoRA scoring; batch assembly.
#include "cora/method/llm_method.h"

#include <sstream>

#include "cora/core/error.h"
#include "cora/io/files.h"
#include "cora/io/safetensors.h"
#include "cora/train/checkpoint.h"
#include "cora/train/run_dir.h"

namespace cora::method {

PromptBatch make_batch(const TokenizedSplit& tok, const cf::Rows& rows,
                       const std::vector<int64_t>& idx, const torch::Device& device) {
  const int64_t B = static_cast<int64_t>(idx.size());
  int64_t T = 0;
  for (int64_t r : idx) T = std::max(T, tok.length(r));
  auto ids = torch::zeros({B, T}, torch::kInt64);
  auto mask = torch::zeros({B, T}, torch::kInt64);
  auto last = torch::empty({B}, torch::kInt64);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t r = idx[b], len = tok.length(r);
    for (int64_t t = 0; t < len; ++t) {
      ia[b][t] = tok.ids[tok.offsets[r] + t];
      ma[b][t] = 1;
    }
    last[b] = len - 1;
  }
  auto sel = torch::tensor(idx, torch::kInt64);
  PromptBatch out{ids.to(device), mask.to(device), last.to(device), rows.index(sel).to(device)};
  if (!tok.user_pos.empty()) {
    auto up = torch::empty({B}, torch::kInt64), ip = torch::empty({B}, torch::kInt64);
    for (int64_t b = 0; b < B; ++b) {
      up[b] = tok.user_pos[idx[b]];
      ip[b] = tok.item_pos[idx[b]];
    }
    out.user_pos = up.to(device);
    out.item_pos = ip.to(device);
  }
  return out;
}

CollmMlpImpl::CollmMlpImpl(int64_t d_cf, int64_t hidden, int64_t d_model)
    : fc1(register_module("fc1", torch::nn::Linear(d_cf, hidden))),
      fc2(register_module("fc2", torch::nn::Linear(hidden, d_model))) {}

torch::Tensor CollmMlpImpl::forward(const torch::Tensor& x) { return fc2(torch::relu(fc1(x))); }

llm::EmbedOverride slot_override(const PromptBatch& b, const torch::Tensor& user_values,
                                 const torch::Tensor& item_values) {
  TORCH_CHECK(b.user_pos.defined(), "CoLLM needs a prompt with <UserID> and <TargetItemID> slots");
  const int64_t B = b.ids.size(0);
  auto rows = torch::arange(B, b.ids.options());
  auto index = torch::cat({torch::stack({rows, b.user_pos}, 1), torch::stack({rows, b.item_pos}, 1)}, 0);
  return {index, torch::cat({user_values, item_values}, 0)};
}

namespace {

torch::Tensor answer_logit(llm::LlamaImpl& m, const PromptBatch& b, llm::Adapter* ad,
                           int32_t answer_id, const llm::EmbedOverride* embeds = nullptr) {
  auto h = m.hidden_at({b.ids, b.mask, ad, embeds}, b.last);  // [B, D], final norm at the last position
  auto row = torch::tensor({static_cast<int64_t>(answer_id)}, torch::kInt64);
  return m.logits(h, row).squeeze(-1).to(torch::kFloat32);  // [B]: only the answer row
}

std::vector<llm::Proj> targets_of(const std::string& list, const std::string& key) {
  std::vector<std::string> names;
  std::stringstream ss(list);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) names.push_back(t);
  return llm::parse_targets(names, key);
}

class IclMethod : public LlmMethod {
 public:
  IclMethod(llm::Llama llm, int32_t answer) : llm_(std::move(llm)), answer_(answer) {}
  torch::Tensor score(const PromptBatch& b) override { return answer_logit(*llm_, b, nullptr, answer_); }
  std::vector<std::pair<std::string, torch::Tensor>> trainable() override { return {}; }
  void set_training(bool) override {}

 private:
  llm::Llama llm_;
  int32_t answer_;
};

class CoraMethod : public LlmMethod {
 public:
  CoraMethod(const config::Config& c, llm::Llama llm, cf::CfModel cf, int32_t answer,
             const torch::Device& device)
      : llm_(std::move(llm)), cf_(std::move(cf)), answer_(answer) {
    const auto& lc = llm_->config();
    GeneratorOptions g{c.cora.n_queries, c.cora.layers, c.cora.heads, c.cora.hidden,
                       c.cora.intermediate, c.cora.dropout};
    generator_ = CollabQueryGenerator(g, cf_->dim(), lc.hidden_size, c.cora.rank);
    adapter_ = llm::PerSampleLowRank(
        lc, llm::LowRankOptions{targets_of(c.cora.targets, "cora.targets"), c.cora.rank,
                                c.cora.alpha, c.cora.lora_dropout});
    generator_->to(device);
    adapter_->to(device);
  }

  torch::Tensor score(const PromptBatch& b) override {
    torch::Tensor user, item;
    {
      torch::NoGradGuard ng;  // the CF model is frozen
      user = cf_->user_repr(b.rows);
      item = cf_->item_repr(b.rows.iid);
    }
    adapter_->set_wc(generator_(user, item));  // [B, D, r]
    return answer_logit(*llm_, b, adapter_.get(), answer_);
  }

  std::vector<std::pair<std::string, torch::Tensor>> trainable() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& p : generator_->named_parameters()) out.emplace_back("generator." + p.key(), p.value());
    for (auto& p : adapter_->named_parameters()) out.emplace_back("deltas." + p.key(), p.value());
    return out;
  }

  void set_training(bool on) override {
    generator_->train(on);
    adapter_->train(on);
  }

 private:
  llm::Llama llm_;
  cf::CfModel cf_;
  int32_t answer_;
  CollabQueryGenerator generator_{nullptr};
  llm::PerSampleLowRank adapter_{nullptr};
};

llm::SharedLowRank make_lora(const config::Config& c, const llm::LlamaConfig& lc) {
  return llm::SharedLowRank(lc, llm::LowRankOptions{targets_of(c.lora.targets, "lora.targets"),
                                                    c.lora.rank, c.lora.alpha, c.lora.dropout});
}

// TALLRec: a LoRA shared by every sample on the text prompt.
class TallrecMethod : public LlmMethod {
 public:
  TallrecMethod(const config::Config& c, llm::Llama llm, int32_t answer, const torch::Device& device)
      : llm_(std::move(llm)), answer_(answer), lora_(make_lora(c, llm_->config())) {
    lora_->to(device);
  }
  torch::Tensor score(const PromptBatch& b) override {
    return answer_logit(*llm_, b, lora_.get(), answer_);
  }
  std::vector<std::pair<std::string, torch::Tensor>> trainable() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& p : lora_->named_parameters()) out.emplace_back("lora." + p.key(), p.value());
    return out;
  }
  void set_training(bool on) override { lora_->train(on); }

 private:
  llm::Llama llm_;
  int32_t answer_;
  llm::SharedLowRank lora_;
};

// CoLLM step 2: frozen TALLRec LoRA (optional) and CF model; only the MLP trains.
class CollmMethod : public LlmMethod {
 public:
  CollmMethod(const config::Config& c, llm::Llama llm, cf::CfModel cf, int32_t answer,
              const torch::Device& device)
      : llm_(std::move(llm)), cf_(std::move(cf)), answer_(answer) {
    const int64_t hidden = c.collm.hidden > 0 ? c.collm.hidden : 10 * cf_->dim();
    mlp_ = CollmMlp(cf_->dim(), hidden, llm_->config().hidden_size);
    mlp_->to(device);
    if (!c.collm.tallrec_run.empty()) {
      train::RunDir step1(c.collm.tallrec_run, /*writer=*/false);
      const std::string best = step1.ckpt("best.safetensors");
      if (!io::exists(c.collm.tallrec_run + "/metrics.json") || !io::exists(best))
        throw Error::key("collm.tallrec_run", c.collm.tallrec_run +
                                                  " is not a finished TALLRec run (no metrics.json "
                                                  "or ckpt/best.safetensors)");
      config::Config tc = step1.read_config();
      if (tc.method != "tallrec")
        throw Error::key("collm.tallrec_run", c.collm.tallrec_run + " is a '" + tc.method +
                                                  "' run, not a TALLRec run");
      if (tc.llm.dir != c.llm.dir || tc.llm.random_init != c.llm.random_init)
        throw Error::key("collm.tallrec_run", "its LLM (" + tc.llm.dir + ") differs from llm.dir (" +
                                                  c.llm.dir + ")");
      lora_ = make_lora(tc, llm_->config());
      lora_->to(device);
      std::vector<std::pair<std::string, torch::Tensor>> named;
      for (auto& p : lora_->named_parameters()) named.emplace_back("lora." + p.key(), p.value());
      train::copy_named(named, io::load_safetensors(best), best);
      for (auto& p : lora_->parameters()) p.set_requires_grad(false);
    }
  }

  torch::Tensor score(const PromptBatch& b) override {
    torch::Tensor user, item;
    {
      torch::NoGradGuard ng;  // the CF model is frozen
      user = cf_->user_repr(b.rows);
      item = cf_->item_repr(b.rows.iid);
    }
    auto ov = slot_override(b, mlp_(user), mlp_(item));
    return answer_logit(*llm_, b, lora_ ? lora_.get() : nullptr, answer_, &ov);
  }
  std::vector<std::pair<std::string, torch::Tensor>> trainable() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& p : mlp_->named_parameters()) out.emplace_back("mlp." + p.key(), p.value());
    return out;
  }
  void set_training(bool on) override {
    mlp_->train(on);
    if (lora_) lora_->train(on);  // PEFT keeps LoRA dropout active in training mode
  }

 private:
  llm::Llama llm_;
  cf::CfModel cf_;
  int32_t answer_;
  CollmMlp mlp_{nullptr};
  llm::SharedLowRank lora_{nullptr};
};

}  // namespace

std::unique_ptr<LlmMethod> make_llm_method(const config::Config& c, llm::Llama llm,
                                           cf::CfModel cf, int32_t answer_id,
                                           const torch::Device& device) {
  if (c.method == "icl") return std::make_unique<IclMethod>(std::move(llm), answer_id);
  if (c.method == "cora") {
    if (!cf)
      throw Error::key("cf.run", "CoRA needs a finished CF run (hint: `cora train --config "
                                 "configs/ml1m/mf.json --out runs/mf`, then --set cf.run=runs/mf)");
    return std::make_unique<CoraMethod>(c, std::move(llm), std::move(cf), answer_id, device);
  }
  if (c.method == "tallrec") return std::make_unique<TallrecMethod>(c, std::move(llm), answer_id, device);
  if (c.method == "collm") {
    if (!cf)
      throw Error::key("cf.run", "CoLLM needs a finished CF run (hint: --set cf.run=runs/mf)");
    return std::make_unique<CollmMethod>(c, std::move(llm), std::move(cf), answer_id, device);
  }
  throw Error::key("method", "'" + c.method + "' is not an LLM method (icl, tallrec, collm, cora)");
}

}  // namespace cora::method
