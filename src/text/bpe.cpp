// Byte-level BPE (tokenizer.json): see bpe.h.
#include "text/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cora/core/error.h"
#include "cora/io/files.h"

namespace cora::text {
namespace {
using json = nlohmann::json;

// GPT-2's reversible byte -> printable code point table.
const std::vector<uint32_t>& byte_to_cp() {
  static const std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(256, 0);
    std::vector<bool> direct(256, false);
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) t[b] = direct[b] ? static_cast<uint32_t>(b) : next++;
    return t;
  }();
  return table;
}

void append_cp(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The byte-level string of raw bytes: one mapped code point per byte.
std::string to_byte_level(std::string_view bytes) {
  const auto& t = byte_to_cp();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) append_cp(out, t[c]);
  return out;
}

// The GPT-2 pre-tokenizer regex (ByteLevel with use_regex = true).
constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string token_content(const json& v) {  // "<s>" or {"content": "<s>", ...}
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

}  // namespace

struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() {
    if (code) pcre2_code_free(code);
  }
};

BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer::BpeTokenizer(const std::string& tokenizer_json) : path_(tokenizer_json) {
  json t;
  try {
    t = json::parse(io::read_file(path_));
  } catch (const json::exception& e) {
    throw Error::at(path_, 0, std::string("invalid JSON: ") + e.what());
  }
  auto refuse = [&](const std::string& what) {
    throw Error::at(path_, 0, what + " is not supported (cora reads byte-level BPE tokenizers: "
                                     "Llama-3.x, Qwen2/2.5/3, GPT-2 style)");
  };
  if (!t.is_object() || !t.contains("model") || !t["model"].is_object())
    throw Error::at(path_, 0, "no \"model\" object");
  const json& m = t["model"];
  if (m.value("type", std::string("BPE")) != "BPE") refuse("model type '" + m.value("type", std::string()) + "'");
  if (m.value("byte_fallback", false)) refuse("model.byte_fallback");
  if (m.value("dropout", json()).is_number() && m["dropout"].get<double>() > 0) refuse("BPE dropout");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(k) && m[k].is_string() && !m[k].get<std::string>().empty()) refuse(std::string("model.") + k);
  ignore_merges_ = m.value("ignore_merges", false);
  if (!m.contains("vocab") || !m["vocab"].is_object()) throw Error::at(path_, 0, "model.vocab is not an object");
  for (const auto& [tok, id] : m["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 30))
      throw Error::at(path_, 0, "model.vocab['" + tok + "'] is not a valid id");
    vocab_[tok] = id.get<int32_t>();
  }
  auto grow = [&](int32_t id) {
    if (id >= static_cast<int32_t>(id_to_token_.size())) {
      id_to_token_.resize(id + 1);
      special_.resize(id + 1, false);
    }
  };
  for (const auto& [tok, id] : vocab_) grow(id), id_to_token_[id] = tok;
  if (t.contains("added_tokens") && t["added_tokens"].is_array())
    for (const auto& a : t["added_tokens"]) {
      std::string c = a.value("content", std::string());
      int32_t id = a.value("id", -1);
      if (c.empty() || id < 0) throw Error::at(path_, 0, "an added token without content or id");
      if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false))
        refuse("added token '" + c + "' with lstrip/rstrip/single_word");
      grow(id);
      id_to_token_[id] = c;
      special_[id] = true;
      vocab_[c] = id;
      added_.emplace_back(c, id);
    }
  std::sort(added_.begin(), added_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  added_by_byte_.assign(256, {});  // encode tries only the tokens that start with the next byte
  for (uint32_t k = 0; k < added_.size(); ++k)
    added_by_byte_[static_cast<unsigned char>(added_[k].first[0])].push_back(k);
  vocab_size_ = static_cast<int32_t>(id_to_token_.size());

  // Merges: "a b" strings (older files) or ["a", "b"] pairs.
  if (!m.contains("merges") || !m["merges"].is_array()) throw Error::at(path_, 0, "model.merges is not an array");
  int32_t rank = 0;
  for (const auto& e : m["merges"]) {
    std::string a, b;
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) throw Error::at(path_, 0, "merge '" + s + "' is not two tokens");
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>(), b = e[1].get<std::string>();
    } else {
      throw Error::at(path_, 0, "merge " + std::to_string(rank) + " is neither \"a b\" nor [a, b]");
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b), ic = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || ic == vocab_.end())
      throw Error::at(path_, 0, "merge " + std::to_string(rank) + " ('" + a + "', '" + b +
                                    "') names a token that is not in the vocabulary");
    uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
    merges_.emplace(key, std::make_pair(rank, ic->second));  // the first (lowest) rank wins
    ++rank;
  }

  // Normalizer: none, NFC, or a Sequence of those.
  std::function<void(const json&)> normalizer = [&](const json& n) {
    if (n.is_null()) return;
    std::string type = n.value("type", std::string());
    if (type == "NFC") nfc_ = true;
    else if (type == "Sequence" && n.contains("normalizers"))
      for (const auto& x : n["normalizers"]) normalizer(x);
    else refuse("normalizer '" + type + "'");
  };
  normalizer(t.value("normalizer", json()));

  // Pre-tokenizer: Split(regex, Isolated) and/or ByteLevel.
  std::string pattern;
  bool byte_level = false;
  std::function<void(const json&)> pre = [&](const json& p) {
    if (p.is_null()) return;
    std::string type = p.value("type", std::string());
    if (type == "Sequence") {
      for (const auto& x : p["pretokenizers"]) pre(x);
    } else if (type == "Split") {
      if (!pattern.empty()) refuse("more than one Split pre-tokenizer");
      if (p.value("behavior", std::string()) != "Isolated" || p.value("invert", false))
        refuse("Split behaviour '" + p.value("behavior", std::string()) + "'");
      if (!p.contains("pattern") || !p["pattern"].contains("Regex")) refuse("a Split pattern that is not a Regex");
      pattern = p["pattern"]["Regex"].get<std::string>();
    } else if (type == "ByteLevel") {
      byte_level = true;
      add_prefix_space_ = p.value("add_prefix_space", false);
      if (p.value("use_regex", true)) {
        if (!pattern.empty()) refuse("a Split pre-tokenizer and ByteLevel use_regex together");
        pattern = kGpt2Regex;
      }
    } else {
      refuse("pre-tokenizer '" + type + "'");
    }
  };
  pre(t.value("pre_tokenizer", json()));
  if (!byte_level) refuse("a tokenizer without the ByteLevel pre-tokenizer");
  if (!pattern.empty()) {
    int err = 0;
    PCRE2_SIZE off = 0;
    split_ = std::make_unique<Regex>();
    split_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    if (!split_->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error::at(path_, 0, "pre-tokenizer regex does not compile at " + std::to_string(off) +
                                    ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(split_->code, PCRE2_JIT_COMPLETE);  // best effort
  }

  // BOS: the post-processor's template, else tokenizer_config.json's add_bos_token.
  std::string bos_token;
  std::function<void(const json&)> post = [&](const json& p) {
    if (p.is_null()) return;
    std::string type = p.value("type", std::string());
    if (type == "Sequence") {
      for (const auto& x : p["processors"]) post(x);
    } else if (type == "TemplateProcessing") {
      for (const auto& piece : p["single"]) {
        if (piece.contains("Sequence")) break;
        if (piece.contains("SpecialToken")) bos_token = piece["SpecialToken"].value("id", std::string()), add_bos_ = true;
      }
    } else if (type != "ByteLevel") {
      refuse("post-processor '" + type + "'");
    }
  };
  post(t.value("post_processor", json()));
  const std::string cfg_path = (std::filesystem::path(path_).parent_path() / "tokenizer_config.json").string();
  json cfg = json::object();
  if (io::exists(cfg_path)) {
    try {
      cfg = json::parse(io::read_file(cfg_path));
    } catch (const json::exception& e) {
      throw Error::at(cfg_path, 0, std::string("invalid JSON: ") + e.what());
    }
  }
  auto id_of = [&](const std::string& s) {
    auto it = vocab_.find(s);
    return it == vocab_.end() ? -1 : it->second;
  };
  if (bos_token.empty()) bos_token = token_content(cfg.value("bos_token", json()));
  if (!add_bos_ && cfg.value("add_bos_token", json()).is_boolean()) add_bos_ = cfg["add_bos_token"].get<bool>();
  bos_id_ = id_of(bos_token);
  eos_id_ = id_of(token_content(cfg.value("eos_token", json())));
  pad_id_ = id_of(token_content(cfg.value("pad_token", json())));
  if (add_bos_ && bos_id_ < 0) throw Error::at(path_, 0, "adds a BOS token '" + bos_token + "' that is not in the vocabulary");
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  size_t plain = 0, i = 0;
  while (i < text.size()) {
    const std::pair<std::string, int32_t>* hit = nullptr;
    for (uint32_t k : added_by_byte_[static_cast<unsigned char>(text[i])])
      if (text.compare(i, added_[k].first.size(), added_[k].first) == 0) {
        hit = &added_[k];
        break;
      }
    if (!hit) {
      ++i;
      continue;
    }
    encode_plain(text.substr(plain, i - plain), out);
    out.push_back(hit->second);
    i += hit->first.size();
    plain = i;
  }
  encode_plain(text.substr(plain), out);
  return out;
}

void BpeTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string norm;
  if (nfc_) {
    utf8proc_uint8_t* n = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(std::string(text).c_str()));
    if (!n) throw Error::at(path_, 0, "text is not valid UTF-8");
    norm = reinterpret_cast<char*>(n);
    std::free(n);
  } else {
    norm = std::string(text);
  }
  if (add_prefix_space_ && norm[0] != ' ') norm.insert(norm.begin(), ' ');
  if (!split_) {
    encode_word(norm, out);
    return;
  }
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(split_->code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(norm.data());
  size_t at = 0, gap = 0;
  while (at < norm.size()) {
    int rc = pcre2_match(split_->code, subject, norm.size(), at, 0, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(md);
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error::at(path_, 0, std::string("pre-tokenizer regex failed: ") + reinterpret_cast<const char*>(msg));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // an empty match takes nothing: search on from the next code point
      at = b + 1;
      while (at < norm.size() && (static_cast<unsigned char>(norm[at]) & 0xC0) == 0x80) ++at;
      continue;
    }
    if (b > gap) encode_word(std::string_view(norm).substr(gap, b - gap), out);  // Isolated: gaps too
    encode_word(std::string_view(norm).substr(b, e - b), out);
    at = gap = e;
  }
  pcre2_match_data_free(md);
  if (gap < norm.size()) encode_word(std::string_view(norm).substr(gap), out);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  static std::mutex mu;
  const std::string mapped = to_byte_level(word);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache_.find(mapped);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  auto whole = ignore_merges_ ? vocab_.find(mapped) : vocab_.end();
  if (whole != vocab_.end()) {
    ids.push_back(whole->second);
  } else {
    // One symbol per mapped code point (1 or 2 UTF-8 bytes), then the lowest-ranked merge first.
    for (size_t k = 0; k < mapped.size();) {
      size_t len = (static_cast<unsigned char>(mapped[k]) < 0x80) ? 1 : (static_cast<unsigned char>(mapped[k]) < 0xE0 ? 2 : 3);
      auto it = vocab_.find(mapped.substr(k, len));
      if (it == vocab_.end())
        throw Error::at(path_, 0, "the vocabulary lacks the byte symbol '" + mapped.substr(k, len) + "'");
      ids.push_back(it->second);
      k += len;
    }
    while (ids.size() > 1) {
      int32_t best_rank = INT32_MAX, merged = -1;
      size_t best = 0;
      for (size_t k = 0; k + 1 < ids.size(); ++k) {
        uint64_t key = (static_cast<uint64_t>(ids[k]) << 32) | static_cast<uint32_t>(ids[k + 1]);
        auto it = merges_.find(key);
        if (it != merges_.end() && it->second.first < best_rank)
          best_rank = it->second.first, merged = it->second.second, best = k;
      }
      if (merged < 0) break;
      // Merge every occurrence of that pair, left to right.
      const int32_t a = ids[best], b = ids[best + 1];
      std::vector<int32_t> next;
      next.reserve(ids.size());
      for (size_t k = 0; k < ids.size(); ++k) {
        if (k + 1 < ids.size() && ids[k] == a && ids[k + 1] == b) {
          next.push_back(merged);
          ++k;
        } else {
          next.push_back(ids[k]);
        }
      }
      ids.swap(next);
    }
  }
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(mu);
  if (cache_.size() < (1u << 20)) cache_.emplace(mapped, std::move(ids));
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  static const std::unordered_map<uint32_t, unsigned char> back = [] {
    std::unordered_map<uint32_t, unsigned char> m;
    const auto& t = byte_to_cp();
    for (int b = 0; b < 256; ++b) m[t[b]] = static_cast<unsigned char>(b);
    return m;
  }();
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size_) continue;
    const std::string& tok = id_to_token_[id];
    if (special_[id]) {
      out += tok;
      continue;
    }
    for (size_t k = 0; k < tok.size();) {  // code points back to bytes
      unsigned char c = static_cast<unsigned char>(tok[k]);
      uint32_t cp;
      size_t len;
      if (c < 0x80) cp = c, len = 1;
      else if (c < 0xE0) cp = ((c & 0x1F) << 6) | (tok[k + 1] & 0x3F), len = 2;
      else cp = ((c & 0x0F) << 12) | ((tok[k + 1] & 0x3F) << 6) | (tok[k + 2] & 0x3F), len = 3;
      auto it = back.find(cp);
      if (it != back.end()) out += static_cast<char>(it->second);
      k += len;
    }
  }
  return out;
}

std::string BpeTokenizer::piece(int32_t id) const {
  return id >= 0 && id < vocab_size_ ? id_to_token_[id] : std::string();
}

int32_t BpeTokenizer::piece_to_id(const std::string& piece) const {
  auto it = vocab_.find(piece);
  return it == vocab_.end() ? -1 : it->second;
}

}  // namespace cora::text
