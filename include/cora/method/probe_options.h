// The options of `cora probe` (method/probe.h), apart so that the CLI's header stays light.
#pragma once

#include <cstdint>
#include <string>

namespace cora::method {

struct ProbeOptions {
  std::string run;             ///< a finished LLM run, or
  std::string llm;             ///< a checkpoint directory alone (base numbers only)
  std::string text;            ///< held-out text, one document per line (default: <llm>/heldout_glosses.txt)
  std::string wordnet;         ///< WordNet dict directory (default: the LLM's pretraining one, else /usr/share/wordnet)
  int64_t pairs = 100;         ///< CoRA: (user, item) pairs sampled from the test split
  int64_t max_tokens = 8192;   ///< text tokens scored (the first ones)
  int64_t window = 128;        ///< tokens per window
  int64_t candidates = 50;     ///< cloze candidate set size
  int64_t cloze_items = 500;   ///< at most this many cloze items (seeded sample)
  int64_t batch = 16;
  uint64_t seed = 0;
  std::string device = "auto";
  int64_t threads = 0;
};

}  // namespace cora::method
