// Prompt rendering (reference conventions) and split tokenization.
#include "cora/method/prompt.h"

#include <algorithm>

#include "cora/core/error.h"
#include "cora/text/tokenizer.h"

namespace cora::method {
namespace {

std::string strip(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

}  // namespace

std::string render_history(const data::Items& items, std::span<const int64_t> history,
                           const PromptOptions& o) {
  if (history.empty()) return o.empty_history;
  size_t start = history.size() > static_cast<size_t>(o.max_history)
                     ? history.size() - static_cast<size_t>(o.max_history)
                     : 0;
  std::string out;
  for (size_t k = start; k < history.size(); ++k) {
    int64_t id = history[k];
    const std::string& title = id < items.n_items() ? items.title[id] : std::string();
    out += (k > start ? ", \"" : "\"") + title + "\"";
  }
  return out;
}

std::string render_prompt(const data::Items& items, std::span<const int64_t> history,
                          int64_t target, const PromptOptions& o) {
  std::string s = o.templ;
  const std::string title = target < items.n_items() ? items.title[target] : std::string();
  replace_all(s, "<ItemTitleList>", render_history(items, history, o));
  replace_all(s, "<TargetItemTitle>", "\"" + strip(title) + "\"");
  return s;
}

TokenizedSplit tokenize_split(const data::Split& split, const data::Items& items,
                              const text::Tokenizer& tok, const PromptOptions& o, int32_t bos) {
  TokenizedSplit t;
  t.offsets.reserve(split.size() + 1);
  t.offsets.push_back(0);
  const bool slots = o.templ.find(kUserSlot) != std::string::npos ||
                     o.templ.find(kItemSlot) != std::string::npos;
  // A slot's id is never looked up (its embedding is replaced): unk, else pad, else 0.
  const int32_t slot_id = tok.unk_id() >= 0 ? tok.unk_id() : std::max(tok.pad_id(), 0);
  for (size_t r = 0; r < split.size(); ++r) {
    const int64_t start = static_cast<int64_t>(t.ids.size());
    if (bos >= 0) t.ids.push_back(bos);
    std::string text = render_prompt(items, split.history(r), split.iid[r], o);
    if (!slots) {
      for (int32_t id : tok.encode(text)) t.ids.push_back(id);
    } else {
      int64_t upos = -1, ipos = -1;
      size_t at = 0;
      while (true) {
        size_t u = text.find(kUserSlot, at), i = text.find(kItemSlot, at);
        size_t next = std::min(u, i);
        std::string seg = text.substr(at, next == std::string::npos ? std::string::npos : next - at);
        if (!seg.empty())
          for (int32_t id : tok.encode(seg)) t.ids.push_back(id);
        if (next == std::string::npos) break;
        (next == u ? upos : ipos) = static_cast<int64_t>(t.ids.size()) - start;
        t.ids.push_back(slot_id);
        at = next + std::string(next == u ? kUserSlot : kItemSlot).size();
      }
      if (upos < 0 || ipos < 0)
        throw Error(std::string("prompt.template must hold both ") + kUserSlot + " and " + kItemSlot +
                    " once for CoLLM");
      t.user_pos.push_back(upos);
      t.item_pos.push_back(ipos);
    }
    t.offsets.push_back(static_cast<int64_t>(t.ids.size()));
  }
  return t;
}

int32_t bos_of(const text::Tokenizer& tok) { return tok.add_bos() ? tok.bos_id() : -1; }

int32_t answer_token(const text::Tokenizer& tok, const std::string& word) {
  auto ids = tok.encode_following(word);  // the word as it follows the prompt
  if (!ids.empty() && tok.is_bpe() && tok.piece(ids[0]) == "Ġ" && ids.size() > 1)
    throw Error("the tokenizer splits ' " + word + "' into a lone space and the word; no single "
                "answer token");
  if (ids.empty() || ids[0] == tok.unk_id())
    throw Error("the tokenizer cannot encode the answer word '" + word +
                "' (hint: a tokenizer trained with it as a piece)");
  return ids[0];
}

}  // namespace cora::method
