// The recommendation prompt of TALLRec/CoRA (and CoLLM's variant) rendered exactly as the
// reference code does, plus its tokenization. Torch-free.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cora/data/split.h"

namespace cora::text {
class Tokenizer;
}

namespace cora::method {

/// TALLRec/CoRA's movie template. `\n` is the two characters backslash and n, as in the
/// reference prompt files.
inline constexpr const char* kMovieTemplate =
    "#Question: A user has given high ratings to the following movies: <ItemTitleList>. "
    "Leverage the information to predict whether the user would enjoy the movie titled "
    "<TargetItemTitle>? Answer with \"Yes\" or \"No\". \\n#Answer:";
inline constexpr const char* kBookTemplate =
    "#Question: A user has given high ratings to the following books: <ItemTitleList>. "
    "Leverage the information to predict whether the user would enjoy the book titled "
    "<TargetItemTitle>? Answer with \"Yes\" or \"No\". \\n#Answer:";

struct PromptOptions {
  std::string templ = kMovieTemplate;  ///< placeholders <ItemTitleList>, <TargetItemTitle>
  int64_t max_history = 10;            ///< the most recent titles shown
  std::string empty_history = "unkow";  ///< the reference's literal word (sic)
};

/// `"Title A", "Title B"` from the last max_history items (oldest first), or empty_history.
std::string render_history(const data::Items& items, std::span<const int64_t> history,
                           const PromptOptions& o);
/// The full prompt text for one row.
std::string render_prompt(const data::Items& items, std::span<const int64_t> history,
                          int64_t target, const PromptOptions& o);

/// Tokenized prompts of a split: BOS + pieces, CSR layout.
struct TokenizedSplit {
  std::vector<int64_t> offsets;  ///< [n + 1]
  std::vector<int32_t> ids;
  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t length(int64_t r) const { return offsets[r + 1] - offsets[r]; }
};
TokenizedSplit tokenize_split(const data::Split& split, const data::Items& items,
                              const text::Tokenizer& tok, const PromptOptions& o, int32_t bos);

/// The id of the answer token: the first piece of encoding `word` (LLaMA: "▁Yes").
int32_t answer_token(const text::Tokenizer& tok, const std::string& word);

}  // namespace cora::method
