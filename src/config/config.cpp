// The config field table and its one validation pass.
#include "cora/config/config.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <variant>

#include "cora/core/error.h"
#include "cora/io/files.h"

namespace cora::config {
namespace {
using json = nlohmann::json;

using Slot = std::variant<std::string*, int64_t*, uint64_t*, double*, bool*>;

struct Field {
  std::string key;
  Slot slot;
  std::string doc;
  std::vector<std::string> choices = {};  // for strings; empty = free
  bool is_path = false;
  double min = -1e300;  // numeric lower bound (inclusive)
};

std::vector<Field> fields(Config& c) {
  return {
      {"method", &c.method, "which method to train (the method registry checks the name)"},
      {"data.dir", &c.data.dir, "split directory (items.tsv, train/valid/valid_small/test.tsv)",
       {}, true},
      {"cf.run", &c.cf.run, "finished CF run directory (LLM methods)", {}, true},
      {"cf.dim", &c.cf.dim, "CF embedding size", {}, false, 1},
      {"cf.layers", &c.cf.layers, "LightGCN layers / SASRec blocks", {}, false, 0},
      {"cf.heads", &c.cf.heads, "SASRec attention heads", {}, false, 1},
      {"cf.max_len", &c.cf.max_len, "SASRec history length", {}, false, 1},
      {"cf.dropout", &c.cf.dropout, "SASRec dropout probability", {}, false, 0},
      {"cf.init_std", &c.cf.init_std, "std of the N(0, s) embedding init", {}, false, 0},
      {"llm.dir", &c.llm.dir, "Hugging Face checkpoint directory", {}, true},
      {"llm.random_init", &c.llm.random_init, "random weights of the checkpoint's shape"},
      {"llm.checkpointing", &c.llm.checkpointing, "recompute decoder layers in backward"},
      {"prompt.template", &c.prompt.templ,
       "prompt with <ItemTitleList> and <TargetItemTitle> (CoLLM: also <UserID>, <TargetItemID>; \"\" = the movie template of the method)"},
      {"prompt.max_history", &c.prompt.max_history, "most recent liked titles shown", {}, false, 0},
      {"prompt.empty_history", &c.prompt.empty_history, "rendering of an empty history"},
      {"prompt.answer", &c.prompt.answer, "answer word whose first piece's logit is the score"},
      {"cora.n_queries", &c.cora.n_queries, "learnable queries", {}, false, 1},
      {"cora.layers", &c.cora.layers, "Q-Former layers", {}, false, 0},
      {"cora.heads", &c.cora.heads, "Q-Former heads", {}, false, 1},
      {"cora.hidden", &c.cora.hidden, "Q-Former width (0 = 2 x CF dim)", {}, false, 0},
      {"cora.intermediate", &c.cora.intermediate, "Q-Former FFN width", {}, false, 1},
      {"cora.dropout", &c.cora.dropout, "Q-Former dropout", {}, false, 0},
      {"cora.rank", &c.cora.rank, "rank r of W_c", {}, false, 1},
      {"cora.alpha", &c.cora.alpha, "delta scale numerator (scale = alpha / rank)", {}, false, 0},
      {"cora.lora_dropout", &c.cora.lora_dropout, "dropout on x before x W_c", {}, false, 0},
      {"cora.targets", &c.cora.targets, "comma-separated projections of every layer"},
      {"lora.rank", &c.lora.rank, "TALLRec LoRA rank", {}, false, 1},
      {"lora.alpha", &c.lora.alpha, "TALLRec LoRA scale numerator (scale = alpha / rank)", {}, false, 0},
      {"lora.dropout", &c.lora.dropout, "TALLRec LoRA input dropout", {}, false, 0},
      {"lora.targets", &c.lora.targets, "TALLRec LoRA projections of every layer"},
      {"collm.tallrec_run", &c.collm.tallrec_run,
       "finished TALLRec run whose LoRA CoLLM loads frozen (\"\" = none)", {}, true},
      {"collm.hidden", &c.collm.hidden, "CoLLM MLP width (0 = 10 x CF dim)", {}, false, 0},
      {"pretrain.wordnet_dir", &c.pretrain.wordnet_dir, "WordNet dict directory (\"\" = none)", {}, true},
      {"pretrain.items", &c.pretrain.items, "add data.dir's item titles/genres to the corpus"},
      {"pretrain.vocab_size", &c.pretrain.vocab_size, "tokenizer pieces", {}, false, 300},
      {"pretrain.hidden_size", &c.pretrain.hidden_size, "model width", {}, false, 8},
      {"pretrain.layers", &c.pretrain.layers, "decoder layers", {}, false, 1},
      {"pretrain.heads", &c.pretrain.heads, "attention heads", {}, false, 1},
      {"pretrain.kv_heads", &c.pretrain.kv_heads, "key/value heads (GQA)", {}, false, 1},
      {"pretrain.intermediate", &c.pretrain.intermediate, "SwiGLU width", {}, false, 1},
      {"pretrain.seq_len", &c.pretrain.seq_len, "training context length", {}, false, 8},
      {"pretrain.steps", &c.pretrain.steps, "optimiser steps", {}, false, 0},
      {"pretrain.eval_every", &c.pretrain.eval_every, "steps between held-out evaluations", {}, false, 1},
      {"pretrain.heldout_fraction", &c.pretrain.heldout_fraction, "corpus lines held out", {}, false, 0},
      {"prepare.positive_rating", &c.prepare.positive_rating, "label = 1 when rating >= this"},
      {"prepare.window_start", &c.prepare.window_start, "first kept UTC date (\"\" = unbounded)"},
      {"prepare.window_end", &c.prepare.window_end, "UTC date after the last kept second"},
      {"prepare.min_user_rows", &c.prepare.min_user_rows, "drop users with fewer rows", {}, false, 0},
      {"prepare.min_item_rows", &c.prepare.min_item_rows, "drop items with fewer rows", {}, false, 0},
      {"prepare.filter_until_stable", &c.prepare.filter_until_stable,
       "repeat the count filters until stable (false = users then items, once)"},
      {"prepare.split", &c.prepare.split,
       "dates: by valid_start/test_start; halves: train before valid_start, the rest halved in "
       "time order; ratios: shares of all rows in time order; user_ratios: shares of each user's "
       "rows in time order",
       {"dates", "halves", "ratios", "user_ratios"}},
      {"prepare.valid_start", &c.prepare.valid_start, "dates/halves: first valid UTC date"},
      {"prepare.test_start", &c.prepare.test_start, "dates: first test UTC date"},
      {"prepare.train_ratio", &c.prepare.train_ratio, "(user_)ratios: share of train", {}, false, 0},
      {"prepare.valid_ratio", &c.prepare.valid_ratio, "(user_)ratios: share of valid", {}, false, 0},
      {"prepare.valid_small_fraction", &c.prepare.valid_small_fraction,
       "share of valid sampled into valid_small", {}, false, 0},
      {"prepare.valid_small_seed", &c.prepare.valid_small_seed, "seed of the valid_small sample"},
      {"prepare.max_history", &c.prepare.max_history, "most recent positives kept (0 = all)", {},
       false, 0},
      {"train.seed", &c.train.seed, "seed for init, data order and dropout"},
      {"train.lr", &c.train.lr, "peak learning rate", {}, false, 0},
      {"train.weight_decay", &c.train.weight_decay, "Adam L2 (CF) / AdamW decay (LLM)", {},
       false, 0},
      {"train.batch_size", &c.train.batch_size, "rows per optimiser step (the global batch)", {},
       false, 1},
      {"train.micro_batch_size", &c.train.micro_batch_size,
       "rows per forward/backward pass, every method; gradients accumulate over the batch (0 = "
       "whole batch)", {}, false, 0},
      {"train.eval_batch_size", &c.train.eval_batch_size, "rows per evaluation forward", {},
       false, 1},
      {"train.epochs", &c.train.epochs, "maximum epochs", {}, false, 0},
      {"train.iterations", &c.train.iterations, "steps per epoch (0 = one pass over train)", {},
       false, 0},
      {"train.patience", &c.train.patience, "epochs without improvement before stopping", {},
       false, 1},
      {"train.min_epochs", &c.train.min_epochs, "no early stop before this many epochs", {},
       false, 0},
      {"train.selection_metric", &c.train.selection_metric, "validation metric for selection",
       {"auc", "uauc"}},
      {"train.valid_split", &c.train.valid_split, "split used for selection",
       {"valid", "valid_small"}},
      {"train.valid_limit", &c.train.valid_limit,
       "select on a fixed sample of this many valid rows (0 = all)", {}, false, 0},
      {"train.warmup_steps", &c.train.warmup_steps,
       "linear warm-up steps (LLM methods, pretrain; CF methods use a constant lr)", {}, false, 0},
      {"train.warmup_start_lr", &c.train.warmup_start_lr, "learning rate at step 0", {}, false, 0},
      {"train.min_lr", &c.train.min_lr, "cosine floor after warm-up", {}, false, 0},
      {"train.schedule", &c.train.schedule,
       "cora: warm-up on the global step, then cosine over the run's steps; reference: the "
       "official LinearWarmupCosineLRScheduler (warm-up ramps with the step within the epoch "
       "while the global step < warmup_steps; cosine over epochs x iterations from step 0)",
       {"cora", "reference"}},
      {"train.grad_clip", &c.train.grad_clip, "global gradient-norm clip (0 = off)", {}, false, 0},
      {"train.epochs_per_invocation", &c.train.epochs_per_invocation,
       "leave after this many epochs, resumable with --resume (0 = run to the end)", {}, false, 0},
      {"train.checkpoint_every_s", &c.train.checkpoint_every_s,
       "write the resumable checkpoint after an evaluation at most this often (seconds; 0 = "
       "after every evaluation); always at the end and on SIGTERM/SIGINT", {}, false, 0},
      {"device", &c.device, "compute device", {"cpu", "cuda", "auto"}},
      {"threads", &c.threads, "intra-op threads (0 = every core this process may run on: its CPU affinity)", {}, false, 0},
      {"log_level", &c.log_level, "logging level",
       {"trace", "debug", "info", "warn", "error"}},
  };
}

std::string type_name(const Slot& s) {
  return std::visit(
      [](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::string>) return "string";
        if constexpr (std::is_same_v<T, int64_t>) return "integer";
        if constexpr (std::is_same_v<T, uint64_t>) return "unsigned integer";
        if constexpr (std::is_same_v<T, double>) return "number";
        return "boolean";
      },
      s);
}

json slot_value(const Slot& s) {
  return std::visit([](auto* p) { return json(*p); }, s);
}

// Assigns `v` to the field, checking its JSON type; `where` names the source in errors.
void assign(const Field& f, const json& v, const std::string& where) {
  auto bad = [&](const std::string& why) {
    return Error::key(f.key, why + " (in " + where + ")");
  };
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (!v.is_string()) throw bad("expected a string, got " + v.dump());
          *p = v.get<std::string>();
        } else if constexpr (std::is_same_v<T, bool>) {
          if (!v.is_boolean()) throw bad("expected true or false, got " + v.dump());
          *p = v.get<bool>();
        } else if constexpr (std::is_same_v<T, double>) {
          if (!v.is_number()) throw bad("expected a number, got " + v.dump());
          *p = v.get<double>();
          if (*p < f.min) throw bad("must be >= " + json(f.min).dump() + ", got " + v.dump());
        } else {  // int64_t or uint64_t
          if (!v.is_number_integer()) throw bad("expected an integer, got " + v.dump());
          bool negative = !v.is_number_unsigned() && v.get<int64_t>() < 0;
          if (negative && std::is_same_v<T, uint64_t>) throw bad("must be >= 0, got " + v.dump());
          *p = v.get<T>();
          if (static_cast<double>(*p) < f.min)
            throw bad("must be >= " + json(static_cast<int64_t>(f.min)).dump() + ", got " +
                      v.dump());
        }
      },
      f.slot);
  if (!f.choices.empty()) {
    const auto& s = *std::get<std::string*>(f.slot);
    bool ok = false;
    for (const auto& c : f.choices) ok |= (c == s);
    if (!ok) {
      std::string list;
      for (const auto& c : f.choices) list += (list.empty() ? "" : ", ") + c;
      throw bad("'" + s + "' is not one of: " + list);
    }
  }
}

// Line number of byte offset `byte` (1-based) in `text`.
int64_t line_of(const std::string& text, size_t byte) {
  int64_t line = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

// Flattens nested objects into dotted keys, in document order.
void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, json>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string k = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object())
      flatten(*it, k, out);
    else
      out.emplace_back(k, *it);
  }
}

std::string suggest(const std::vector<Field>& table, const std::string& key) {
  std::string section = key.substr(0, key.find('.') == std::string::npos ? 0 : key.find('.') + 1);
  std::string list;
  for (const auto& f : table)
    if (!section.empty() ? f.key.rfind(section, 0) == 0 : f.key.find('.') == std::string::npos)
      list += (list.empty() ? "" : ", ") + f.key;
  return list.empty() ? "" : " (hint: known keys here: " + list + ")";
}

}  // namespace

namespace {
bool allowed_in_prepare(const std::string& k) {
  return k.rfind("prepare.", 0) == 0 || k == "log_level" || k == "threads";
}

Config parse_impl(const std::string& text, const std::string& source,
                  const std::vector<std::string>& overrides, bool prepare_only) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error::at(source, line_of(text, e.byte), std::string("invalid JSON: ") + e.what());
  } catch (const json::exception& e) {  // e.g. a number too large for a double
    throw Error::at(source, 0, std::string("invalid JSON: ") + e.what());
  }
  if (!root.is_object()) throw Error::at(source, 1, "a config must be a JSON object");

  Config c;
  auto table = fields(c);
  std::map<std::string, const Field*> by_key;
  for (const auto& f : table) by_key[f.key] = &f;

  std::vector<std::pair<std::string, json>> items;
  flatten(root, "", items);
  for (auto& [k, v] : items) {
    auto it = by_key.find(k);
    if (it == by_key.end()) {
      if (k == "train.grad_accum")
        throw Error::key(k, "was removed (in " + source + "; hint: train.batch_size is the global "
                            "batch per optimiser step, train.micro_batch_size splits it)");
      throw Error::key(k, "unknown key in " + source + suggest(table, k));
    }
    if (prepare_only && !allowed_in_prepare(k))
      throw Error::key(k, "not a data-protocol key (in " + source +
                              "; a `cora prepare` config holds prepare.* keys only)");
    assign(*it->second, v, source);
    c.given.push_back(k);
  }
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("--set expects key.path=value, got '" + o + "'");
    std::string k = o.substr(0, eq), raw = o.substr(eq + 1);
    auto it = by_key.find(k);
    if (it == by_key.end()) throw Error::key(k, "unknown key in --set" + suggest(table, k));
    if (prepare_only && !allowed_in_prepare(k))
      throw Error::key(k, "not a data-protocol key (`cora prepare --set` takes prepare.* keys)");
    json v;
    // Strings may be given bare (--set data.dir=/x); everything else as JSON.
    if (std::holds_alternative<std::string*>(it->second->slot)) {
      v = raw;
      if (raw.size() >= 2 && raw.front() == '"') v = json::parse(raw, nullptr, false);
      if (v.is_discarded()) v = raw;
    } else {
      v = json::parse(raw, nullptr, false);
      if (v.is_discarded()) throw Error::key(k, "cannot parse --set value '" + raw + "'");
    }
    assign(*it->second, v, "--set");
    c.given.push_back(k);
  }

  if (prepare_only) return c;
  if (c.method.empty()) throw Error::key("method", "missing (in " + source + ")");
  if (c.data.dir.empty()) throw Error::key("data.dir", "missing (in " + source + ")");
  for (auto* p : {&c.data.dir, &c.cf.run, &c.llm.dir, &c.collm.tallrec_run})
    if (!p->empty()) *p = io::absolute(*p);
  return c;
}
}  // namespace

Config parse(const std::string& text, const std::string& source,
             const std::vector<std::string>& overrides) {
  return parse_impl(text, source, overrides, false);
}

Config load_prepare(const std::string& path, const std::vector<std::string>& overrides) {
  // Without a config: the whole time range and a per-user time-ordered 80/10/10 split, which
  // works for any dataset's dates (the paper's ML-1M dates are a config: configs/data/ml1m.json).
  if (path.empty())
    return parse_impl(R"({"prepare": {"window_start": "", "window_end": "", "split": "user_ratios"}})",
                      "the defaults", overrides, true);
  return parse_impl(io::read_file(path), path, overrides, true);
}

std::string prepare_to_json(const Config& c_in) {
  Config c = c_in;
  json out = json::object();
  for (const auto& f : fields(c))
    if (f.key.rfind("prepare.", 0) == 0) out[f.key.substr(8)] = slot_value(f.slot);
  return out.dump();
}

Config load(const std::string& path, const std::vector<std::string>& overrides) {
  return parse(io::read_file(path), path, overrides);
}

std::string to_json(const Config& c_in) {
  Config c = c_in;
  json root = json::object();
  for (const auto& f : fields(c)) {
    json* node = &root;
    std::string k = f.key;
    for (auto dot = k.find('.'); dot != std::string::npos; dot = k.find('.')) {
      node = &(*node)[k.substr(0, dot)];
      k = k.substr(dot + 1);
    }
    (*node)[k] = slot_value(f.slot);
  }
  return root.dump(2) + "\n";
}

std::string describe_keys(const std::vector<std::string>& method_choices,
                          const std::function<std::string(const std::string&)>& readers) {
  Config c;
  std::ostringstream out;
  out << "| key | type | default | meaning |" << (readers ? " read by |\n|---|---|---|---|---|\n"
                                                              : "\n|---|---|---|---|\n");
  for (const auto& f : fields(c)) {
    out << "| `" << f.key << "` | " << type_name(f.slot) << " | `" << slot_value(f.slot).dump()
        << "` | " << f.doc;
    const auto& choices = f.key == "method" ? method_choices : f.choices;
    if (!choices.empty()) {
      out << " (";
      for (size_t i = 0; i < choices.size(); ++i) out << (i ? ", " : "") << choices[i];
      out << ")";
    }
    out << " |";
    if (readers) out << " " << readers(f.key) << " |";
    out << "\n";
  }
  return out.str();
}

}  // namespace cora::config
