// A tiny world for LLM-method tests: a planted split, a trained MF run, and an LLM directory
// (config.json of a 2-layer LLaMA + a sentencepiece tokenizer trained on the prompts).
#pragma once

#include <filesystem>
#include <sstream>

#include "cora/method/train.h"
#include "cora/config/config.h"
#include "cora/io/files.h"
#include "cora/llm/config.h"
#include "cora/method/prompt.h"
#include "cora/text/tokenizer.h"
#include "synthetic.h"
#include "test_util.h"

namespace cora::testing {

// data/, cf/ (a trained MF run), llm/ (config.json + tokenizer.model).
struct World {
  TempDir t;
  World() {
    write_planted_split(t.file("data"), 24, 20, 2, 16);
    auto cfg = cora::config::parse(R"({"method": "mf", "data": {"dir": ")" + t.file("data") +
                                 R"("}, "cf": {"dim": 8, "init_std": 0.1}, "train": {"epochs": 5, "lr": 0.01},
                                 "log_level": "warn", "threads": 2})", "test");
    cora::method::train(cfg, t.file("cf"), false);
    std::ostringstream corpus;
    for (int i = 1; i <= 20; ++i)
      corpus << cora::method::render_prompt(cora::data::load_dataset(t.file("data")).items, {}, i, {}) << "\n";
    write_text(t.file("corpus.txt"), corpus.str());
    cora::io::make_dirs(t.file("llm"));
    cora::text::Tokenizer::train("--input=" + t.file("corpus.txt") + " --model_prefix=" + t.file("llm/tokenizer") +
                           " --vocab_size=400 --model_type=bpe --byte_fallback=true --minloglevel=2");
    std::filesystem::copy_file(t.file("llm/tokenizer.model"), t.file("llm/tokenizer.model.bak"));
    cora::llm::LlamaConfig lc;
    lc.hidden_size = 32, lc.intermediate_size = 48, lc.num_hidden_layers = 2;
    lc.num_attention_heads = 4, lc.num_key_value_heads = 2, lc.vocab_size = 400;
    write_text(t.file("llm/config.json"), cora::llm::to_json(lc));
  }
  cora::config::Config cora_config(const std::string& extra = "") const { return config("cora", extra); }
  // A small config of `method` with only the sections it reads (the registry refuses others).
  cora::config::Config config(const std::string& method, const std::string& extra = "") const {
    return cora::config::parse(config_json(method, extra), "test");
  }
  // The same as JSON text (for the `cora` binary); `extra` continues the "train" object.
  std::string config_json(const std::string& method, const std::string& extra = "") const {
    const bool cf = method == "cora" || method == "collm";
    const std::string section = method == "cora"
        ? R"("cora": {"layers": 1, "heads": 2, "intermediate": 32, "rank": 4, "alpha": 8},)"
        : method == "collm" ? R"("collm": {"hidden": 16},)" : "";
    return R"({"method": ")" + method + R"(", "data": {"dir": ")" + t.file("data") +
                             R"("}, )" + (cf ? R"("cf": {"run": ")" + t.file("cf") + R"(", "dim": 8},)" : std::string()) + R"(
      "llm": {"dir": ")" + t.file("llm") + R"(", "random_init": true},
      )" + section + R"(
      "train": {"batch_size": 4, "iterations": 3, "epochs": 3, "lr": 0.001, "weight_decay": 0.001,
                "warmup_steps": 2, "min_lr": 0.0001, "eval_batch_size": 32, "valid_split": "valid_small",
                "patience": 5, "grad_clip": 1.0)" + extra + R"(},
      "log_level": "warn", "threads": 2})";
  }
};


}  // namespace cora::testing
