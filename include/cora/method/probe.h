// `cora probe`: what a trained run does to its LLM outside recommendation — the paper's
// motivation experiment (fine-tuning the LLM on recommendation text costs it general knowledge;
// CoRA leaves the text space alone), measured on any run:
//  - general-text perplexity on held-out text (a cora-pretrained LLM's heldout_glosses.txt, the
//    WordNet glosses its pretraining never saw, or any text file), in non-overlapping windows;
//  - a WordNet hypernym cloze built offline: a noun's definition cut before the first word that
//    is its hypernym's lemma ("an intelligent ___" → dog), the right word ranked among a fixed
//    candidate set (the K most frequent such hypernyms that are one token in the LLM's
//    vocabulary); with a cora-pretrained LLM in two sets, definitions it learned in pretraining
//    (knowledge it may forget) and definitions held out of it;
//  each for the base LLM (the run's frozen LLM; CoRA with no weights applied), the LLM with the
//  TALLRec/CoLLM LoRA applied (the same function as the merged weights), and CoRA with the
//  per-sample weights of real (user, item) pairs of the test split (mean and worst).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cora/llm/model.h"
#include "cora/method/probe_options.h"
#include "cora/text/tokenizer.h"

namespace cora::method {

struct ClozeItem {
  std::string prefix;  ///< the definition up to the hypernym word
  std::string answer;  ///< the hypernym's lemma
};
struct ClozeSet {
  std::vector<ClozeItem> items;
  std::vector<std::string> candidates;  ///< most frequent first
  std::vector<int32_t> candidate_ids;   ///< their one token each
  int64_t eligible = 0;                 ///< items before sampling
};

/// The hypernym cloze of `wordnet_dir`/data.noun for `tok`: the candidates are counted over the
/// whole dictionary; `keep` (optional) selects the items by their synset's gloss line (as `cora
/// pretrain` reads it); at most `max_items`, a seeded sample. Errors name the file and line.
ClozeSet build_cloze(const std::string& wordnet_dir, const text::Tokenizer& tok, int64_t candidates,
                     const std::function<bool(const std::string&)>& keep, int64_t max_items,
                     uint64_t seed);

/// Mean next-token negative log-likelihood of `ids` over its non-overlapping windows of T + 1
/// tokens (batches of `batch` windows), with an optional adapter and a per-sample adapter input
/// of one sample ([1, ...], repeated over the windows).
double text_nll(llm::LlamaImpl& m, const std::vector<int32_t>& ids, int64_t T, int64_t batch,
                llm::Adapter* adapter = nullptr, const torch::Tensor& input = {});

/// Runs the probe; with --run also writes <run>/probe.json (atomic). Returns that JSON.
nlohmann::json probe(const ProbeOptions& o);

/// The probe's table (markdown) from its JSON.
std::string probe_table(const nlohmann::json& j);

}  // namespace cora::method
