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

/// CoLLM's movie template (shared README): <UserID> and <TargetItemID> each become one token
/// position whose input embedding the CF mapping replaces.
inline constexpr const char* kCollmMovieTemplate =
    "#Question: A user has given high ratings to the following movies: <ItemTitleList>. "
    "Additionally, we have information about the user's preferences encoded in the feature "
    "<UserID>. Using all available information, make a prediction about whether the user would "
    "enjoy the movie titled <TargetItemTitle> with the feature <TargetItemID>? Answer with "
    "\"Yes\" or \"No\". \\n#Answer:";
inline constexpr const char* kCollmBookTemplate =
    "#Question: A user has given high ratings to the following books: <ItemTitleList>. "
    "Additionally, we have information about the user's preferences encoded in the feature "
    "<UserID>. Using all available information, make a prediction about whether the user would "
    "enjoy the book titled <TargetItemTitle> with the feature <TargetItemID>? Answer with "
    "\"Yes\" or \"No\". \\n#Answer:";
inline constexpr const char* kUserSlot = "<UserID>";
inline constexpr const char* kItemSlot = "<TargetItemID>";

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

/// Tokenized prompts of a split: BOS + pieces, CSR layout. When the template holds <UserID> /
/// <TargetItemID>, the text around each is encoded separately and the slot is one position
/// (holding the unk id) recorded in user_pos / item_pos; otherwise those stay empty.
struct TokenizedSplit {
  std::vector<int64_t> offsets;  ///< [n + 1]
  std::vector<int32_t> ids;
  std::vector<int64_t> user_pos, item_pos;  ///< [n] positions within each row's prompt
  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t length(int64_t r) const { return offsets[r + 1] - offsets[r]; }
};
/// `bos` < 0: no BOS (a tokenizer that adds none, e.g. Qwen's).
TokenizedSplit tokenize_split(const data::Split& split, const data::Items& items,
                              const text::Tokenizer& tok, const PromptOptions& o, int32_t bos);

/// The BOS a sequence starts with, or -1 when the tokenizer adds none.
int32_t bos_of(const text::Tokenizer& tok);

/// The id of the answer token: the first piece of `word` as it follows the prompt after a space
/// (sentencepiece LLaMA: "▁Yes"; byte-level BPE: "ĠYes").
int32_t answer_token(const text::Tokenizer& tok, const std::string& word);

}  // namespace cora::method
