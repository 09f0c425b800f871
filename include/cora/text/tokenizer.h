// The tokenizer of a checkpoint, behind one interface: sentencepiece (`tokenizer.model`: LLaMA-2,
// Vicuna, Mistral), used through the dlopen'ed C-ABI module libcora_spm so that sentencepiece's
// protobuf stays apart from libtorch's (the module is found via $CORA_SPM_MODULE, next to the
// running executable, or in the build directory); or byte-level BPE from a Hugging Face
// `tokenizer.json` (Llama-3.x, Qwen2/2.5/3), in process. Torch-free.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cora::text {

class BpeTokenizer;

class Tokenizer {
 public:
  /// Loads a `tokenizer.model` (sentencepiece) or a `tokenizer.json` (byte-level BPE, with its
  /// `tokenizer_config.json` beside it); throws cora::Error naming the file on failure.
  explicit Tokenizer(const std::string& model_path);
  /// The tokenizer file a checkpoint directory holds: tokenizer.model, else tokenizer.json;
  /// throws naming the directory when it has neither.
  static std::string file_in(const std::string& model_dir);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  /// Pieces of `text`, without BOS/EOS.
  std::vector<int32_t> encode(const std::string& text) const;
  /// Pieces of `word` as they follow earlier text after a space (sentencepiece: encode(word),
  /// whose dummy prefix is that space; BPE: encode(" " + word)): the answer token's source.
  std::vector<int32_t> encode_following(const std::string& word) const;
  /// Whether a sequence starts with BOS (sentencepiece LLaMA: yes; BPE: as the file says).
  bool add_bos() const;
  bool is_bpe() const { return bpe_ != nullptr; }
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;
  int32_t piece_to_id(const std::string& piece) const;  ///< unk id when absent
  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;  ///< -1 when the model defines none
  int32_t unk_id() const;  ///< -1 when the model defines none (byte-level BPE)

  /// Trains a sentencepiece model (arguments as for spm_train: "--input=f --model_prefix=p ...").
  static void train(const std::string& args);

  struct Api;  ///< the module's function table (defined in tokenizer.cpp)

 private:
  const Api* api_ = nullptr;
  void* handle_ = nullptr;
  std::string path_;
  std::unique_ptr<BpeTokenizer> bpe_;
};

}  // namespace cora::text
