// A sentencepiece tokenizer (tokenizer.model of LLaMA-family checkpoints), used through the
// dlopen'ed C-ABI module libcora_spm so that sentencepiece's protobuf stays apart from
// libtorch's. Torch-free. The module is found via $CORA_SPM_MODULE, next to the running
// executable, or in the build directory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cora::text {

class Tokenizer {
 public:
  /// Loads `tokenizer.model`; throws cora::Error naming the file on failure.
  explicit Tokenizer(const std::string& model_path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  /// Pieces of `text`, without BOS/EOS.
  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;
  int32_t piece_to_id(const std::string& piece) const;  ///< unk id when absent
  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;  ///< -1 when the model defines none
  int32_t unk_id() const;

  /// Trains a sentencepiece model (arguments as for spm_train: "--input=f --model_prefix=p ...").
  static void train(const std::string& args);

  struct Api;  ///< the module's function table (defined in tokenizer.cpp)

 private:
  const Api* api_;
  void* handle_ = nullptr;
  std::string path_;
};

}  // namespace cora::text
