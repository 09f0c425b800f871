// The method table and the unread-key check.
#include "cora/method/registry.h"

#include <spdlog/spdlog.h>

#include "cora/cf/model.h"
#include "cora/core/error.h"
#include "cora/method/prompt.h"
#include "method/methods.h"

namespace cora::method {
namespace {

// Keys every method reads.
const std::vector<std::string> kCommon = {"method", "data.dir", "device", "threads", "log_level",
                                          "train.seed", "train.epochs_per_invocation",
                                          "train.checkpoint_every_s"};
// The engine's keys for methods that select on validation AUC/UAUC.
const std::vector<std::string> kSelect = {
    "train.lr", "train.weight_decay", "train.batch_size", "train.micro_batch_size",
    "train.eval_batch_size", "train.epochs", "train.iterations", "train.patience",
    "train.min_epochs", "train.selection_metric", "train.valid_split", "train.valid_limit",
    "train.grad_clip"};
const std::vector<std::string> kSchedule = {"train.warmup_steps", "train.warmup_start_lr",
                                            "train.min_lr", "train.schedule"};

std::vector<std::string> join(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<MethodInfo> build() {
  const auto cf_keys = join({kCommon, kSelect, {"cf.dim", "cf.init_std"}});
  const auto llm_keys = join({kCommon, kSelect, kSchedule, {"llm.", "prompt."}});
  return {
      {"mf", Kind::cf, "matrix factorisation", {}, {}, cf_keys, "", cf::make_mf},
      {"lightgcn", Kind::cf, "LightGCN", {}, {}, join({cf_keys, {"cf.layers"}}), "",
       cf::make_lightgcn},
      {"sasrec", Kind::cf, "SASRec (CoLLM's variant)", {}, {},
       join({cf_keys, {"cf.layers", "cf.heads", "cf.max_len", "cf.dropout"}}), "", cf::make_sasrec},
      {"icl", Kind::llm, "the frozen LLM on the text prompt (nothing trains)", {"llm.dir"}, {},
       join({kCommon, {"train.eval_batch_size", "train.selection_metric", "train.valid_split",
                       "train.valid_limit", "llm.", "prompt."}}),
       kMovieTemplate, nullptr, make_icl},
      {"tallrec", Kind::llm, "a LoRA shared by every sample, trained on the text prompt",
       {"llm.dir"}, {}, join({llm_keys, {"lora."}}), kMovieTemplate, nullptr, make_tallrec},
      {"collm", Kind::llm, "CoLLM step 2: CF embeddings mapped into two prompt slots",
       {"llm.dir", "cf.run"}, {"collm.tallrec_run"}, join({llm_keys, {"cf.run", "cf.dim", "collm."}}),
       kCollmMovieTemplate, nullptr, make_collm},
      {"cora", Kind::llm, "CoRA: per-sample collaborative weights in the frozen LLM",
       {"llm.dir", "cf.run"}, {}, join({llm_keys, {"cf.run", "cf.dim", "cora."}}), kMovieTemplate, nullptr, make_cora},
      {"pretrain", Kind::pretrain, "a tokenizer and a small LLaMA trained offline (cora pretrain)",
       {}, {},
       join({kCommon, kSchedule, {"pretrain.", "train.lr", "train.weight_decay", "train.batch_size",
                                  "train.micro_batch_size", "train.grad_clip"}})},
  };
}

}  // namespace

const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> table = build();
  return table;
}

std::vector<std::string> method_names() {
  std::vector<std::string> out;
  for (const auto& m : methods()) out.push_back(m.name);
  return out;
}

const MethodInfo& find_method(const std::string& name) {
  for (const auto& m : methods())
    if (m.name == name) return m;
  std::string list;
  for (const auto& n : method_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error::key("method", (name.empty() ? std::string("missing") : "'" + name + "' is unknown") +
                                 " (one of: " + list + ")");
}

bool reads_key(const MethodInfo& m, const std::string& key) {
  for (const auto& k : m.keys)
    if (k.back() == '.' ? key.rfind(k, 0) == 0 : key == k) return true;
  return false;
}

void check_keys(const config::Config& c) {
  const MethodInfo& m = find_method(c.method);
  for (const auto& key : c.given) {
    if (reads_key(m, key)) continue;
    std::string why = "is not read by method '" + m.name + "' (" + m.summary + ")";
    if (key.rfind("train.", 0) == 0) {
      spdlog::warn("config key {} {}; it has no effect", key, why);
      continue;
    }
    throw Error::key(key, why + " (hint: remove it from the config)");
  }
}

}  // namespace cora::method
