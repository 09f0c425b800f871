// `cora pretrain`: trains a sentencepiece tokenizer and a small LLaMA (causal LM, next-token
// cross-entropy, AdamW, warm-up + cosine, clipping) through the training engine on an offline
// corpus — WordNet glosses and the split's item titles/genres (item metadata only, never
// interactions) — and saves Hugging Face layout (config.json, model.safetensors,
// tokenizer.model) plus pretrain.json with the held-out perplexity beside a unigram model's, and
// heldout_glosses.txt: the WordNet glosses held out of training (general text for cora probe).
// Resumable with --resume.
#pragma once

#include <string>
#include <vector>

#include "cora/config/config.h"

namespace cora::method {

struct PretrainSummary {
  double heldout_ppl = 0, unigram_ppl = 0;
  int64_t params = 0, tokens_seen = 0, steps = 0;
  double seconds = 0;
  bool finished = false;  ///< false: left early (train.epochs_per_invocation)
};

/// Corpus lines: one gloss per WordNet synset, then one line per item (title [+ genres]);
/// `glosses` (optional) receives the number of leading gloss lines.
std::vector<std::string> pretrain_corpus(const config::Config& c, size_t* glosses = nullptr);

PretrainSummary pretrain(const config::Config& c, const std::string& out_dir, bool resume);

}  // namespace cora::method
