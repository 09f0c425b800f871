// Byte-level BPE from a Hugging Face `tokenizer.json` (Llama-3.x, Qwen2/2.5/3, GPT-2 style):
// added/special tokens split out first, the NFC normalizer, the Split-regex and ByteLevel
// pre-tokenizers (PCRE2 with Unicode properties), GPT-2's byte-to-unicode mapping, merges by
// rank (`ignore_merges` honoured), and the post-processor's or tokenizer_config.json's BOS.
// Torch-free; private to src/text (used through cora::text::Tokenizer). Anything the file
// asks for that is not implemented is refused by name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cora::text {

class BpeTokenizer {
 public:
  /// Reads `tokenizer.json` and, when present beside it, `tokenizer_config.json`.
  explicit BpeTokenizer(const std::string& tokenizer_json);
  ~BpeTokenizer();
  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  /// Ids of `text` without BOS/EOS; added tokens in the text map to their ids.
  std::vector<int32_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;           ///< "" for an unknown id
  int32_t piece_to_id(const std::string& piece) const;  ///< -1 when absent
  int32_t vocab_size() const { return vocab_size_; }
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  bool add_bos() const { return add_bos_; }  ///< the tokenizer puts BOS before a sequence

 private:
  struct Regex;
  std::string path_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> special_;  // by id: an added token (decoded as its content)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a, b) -> (rank, merged)
  std::vector<std::pair<std::string, int32_t>> added_;  // content, id; longest first
  std::vector<std::vector<uint32_t>> added_by_byte_;    // first byte -> indices into added_
  std::unique_ptr<Regex> split_;  // the Split pre-tokenizer ("" = none)
  bool nfc_ = false, ignore_merges_ = false, add_prefix_space_ = false;
  bool add_bos_ = false;
  int32_t vocab_size_ = 0, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;

  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
};

}  // namespace cora::text
