// Loads libcora_spm with RTLD_LOCAL|RTLD_DEEPBIND and forwards to its C functions.
#include "cora/text/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "cora/core/error.h"
#include "text/bpe.h"

#ifndef CORA_SPM_MODULE_PATH
#define CORA_SPM_MODULE_PATH ""
#endif

namespace cora::text {

struct Tokenizer::Api {
  void* (*load)(const char*, char*, int64_t);
  void (*free)(void*);
  int (*encode)(void*, const char*, int64_t, int32_t*, int64_t, int64_t*, char*, int64_t);
  int (*decode)(void*, const int32_t*, int64_t, char*, int64_t, int64_t*);
  int (*id_to_piece)(void*, int32_t, char*, int64_t, int64_t*);
  int32_t (*piece_to_id)(void*, const char*);
  int32_t (*info)(void*, int);
  int (*train)(const char*, char*, int64_t);
};

namespace {

std::string self_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "" : p.parent_path().string();
}

template <typename F>
void bind(void* lib, const char* name, F& fn, const std::string& path) {
  fn = reinterpret_cast<F>(::dlsym(lib, name));
  if (!fn) throw Error::at(path, 0, std::string("missing symbol ") + name);
}

const Tokenizer::Api& api_instance() {
  static std::once_flag once;
  static Tokenizer::Api api{};
  static std::string failure;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("CORA_SPM_MODULE")) candidates.emplace_back(env);
    candidates.push_back(self_dir() + "/libcora_spm.so");
    candidates.emplace_back(CORA_SPM_MODULE_PATH);
    std::string tried;
    for (const auto& c : candidates) {
      if (c.empty() || !std::filesystem::exists(c)) {
        tried += (tried.empty() ? "" : ", ") + (c.empty() ? std::string("(none)") : c);
        continue;
      }
#ifdef CORA_SPM_NO_DEEPBIND
      // Sanitized build: the sanitizers' dlopen refuses RTLD_DEEPBIND (allocations could cross
      // between their allocator and libc's). The module's API never passes ownership of memory
      // across (callers own every buffer; handles are freed by the module), so libc's own dlopen
      // is called for it, keeping sentencepiece's protobuf apart from libtorch's.
      using DlopenFn = void* (*)(const char*, int);
      static DlopenFn libc_dlopen = [] {
        void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        return libc ? reinterpret_cast<DlopenFn>(::dlsym(libc, "dlopen")) : nullptr;
      }();
      void* lib = libc_dlopen ? libc_dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)
                              : ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
#else
      void* lib = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
      if (!lib) {
        failure = "cannot load " + c + ": " + ::dlerror();
        return;
      }
      try {
        bind(lib, "cora_spm_load", api.load, c);
        bind(lib, "cora_spm_free", api.free, c);
        bind(lib, "cora_spm_encode", api.encode, c);
        bind(lib, "cora_spm_decode", api.decode, c);
        bind(lib, "cora_spm_id_to_piece", api.id_to_piece, c);
        bind(lib, "cora_spm_piece_to_id", api.piece_to_id, c);
        bind(lib, "cora_spm_info", api.info, c);
        bind(lib, "cora_spm_train", api.train, c);
      } catch (const Error& e) {
        failure = e.what();
      }
      return;
    }
    failure = "libcora_spm.so not found (tried " + tried +
              "; hint: set CORA_SPM_MODULE to the module built beside the cora binary)";
  });
  if (!failure.empty()) throw Error(failure);
  return api;
}
}  // namespace

Tokenizer::Tokenizer(const std::string& model_path) : path_(model_path) {
  if (!std::filesystem::exists(model_path))
    throw Error::at(model_path, 0, "tokenizer model does not exist");
  if (std::filesystem::path(model_path).extension() == ".json") {
    bpe_ = std::make_unique<BpeTokenizer>(model_path);
    return;
  }
  api_ = &api_instance();
  char err[512] = {0};
  handle_ = api_->load(model_path.c_str(), err, sizeof err);
  if (!handle_) throw Error::at(model_path, 0, std::string("cannot load tokenizer: ") + err);
}

Tokenizer::~Tokenizer() {
  if (handle_) api_->free(handle_);
}

std::string Tokenizer::file_in(const std::string& model_dir) {
  for (const char* name : {"tokenizer.model", "tokenizer.json"})
    if (std::filesystem::exists(model_dir + "/" + name)) return model_dir + "/" + name;
  throw Error::at(model_dir, 0, "holds neither tokenizer.model (sentencepiece) nor tokenizer.json "
                                "(Hugging Face byte-level BPE)");
}

std::vector<int32_t> Tokenizer::encode_following(const std::string& word) const {
  return encode(bpe_ ? " " + word : word);
}

bool Tokenizer::add_bos() const { return bpe_ ? bpe_->add_bos() : true; }

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  if (bpe_) return bpe_->encode(text);
  std::vector<int32_t> ids(text.size() + 16);
  int64_t n = 0;
  char err[512] = {0};
  int rc = api_->encode(handle_, text.data(), static_cast<int64_t>(text.size()), ids.data(),
                        static_cast<int64_t>(ids.size()), &n, err, sizeof err);
  if (rc == 1) {
    ids.resize(n);
    rc = api_->encode(handle_, text.data(), static_cast<int64_t>(text.size()), ids.data(), n, &n,
                      err, sizeof err);
  }
  if (rc != 0) throw Error::at(path_, 0, std::string("encode failed: ") + err);
  ids.resize(n);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  if (bpe_) return bpe_->decode(ids);
  std::string out(ids.size() * 8 + 16, '\0');
  int64_t need = 0;
  int rc = api_->decode(handle_, ids.data(), static_cast<int64_t>(ids.size()), out.data(),
                        static_cast<int64_t>(out.size()), &need);
  if (rc == 1) {
    out.resize(need);
    rc = api_->decode(handle_, ids.data(), static_cast<int64_t>(ids.size()), out.data(), need, &need);
  }
  if (rc != 0) throw Error::at(path_, 0, "decode failed (an id out of range?)");
  out.resize(need);
  return out;
}

std::string Tokenizer::piece(int32_t id) const {
  if (bpe_) {
    if (id < 0 || id >= bpe_->vocab_size()) throw Error::at(path_, 0, "no piece with id " + std::to_string(id));
    return bpe_->piece(id);
  }
  std::string out(64, '\0');
  int64_t need = 0;
  int rc = api_->id_to_piece(handle_, id, out.data(), static_cast<int64_t>(out.size()), &need);
  if (rc == 1) {
    out.resize(need);
    rc = api_->id_to_piece(handle_, id, out.data(), need, &need);
  }
  if (rc != 0) throw Error::at(path_, 0, "no piece with id " + std::to_string(id));
  out.resize(need);
  return out;
}

int32_t Tokenizer::piece_to_id(const std::string& piece) const {
  return bpe_ ? bpe_->piece_to_id(piece) : api_->piece_to_id(handle_, piece.c_str());
}
int32_t Tokenizer::vocab_size() const { return bpe_ ? bpe_->vocab_size() : api_->info(handle_, 0); }
int32_t Tokenizer::bos_id() const { return bpe_ ? bpe_->bos_id() : api_->info(handle_, 1); }
int32_t Tokenizer::eos_id() const { return bpe_ ? bpe_->eos_id() : api_->info(handle_, 2); }
int32_t Tokenizer::pad_id() const { return bpe_ ? bpe_->pad_id() : api_->info(handle_, 3); }
int32_t Tokenizer::unk_id() const { return bpe_ ? -1 : api_->info(handle_, 4); }

void Tokenizer::train(const std::string& args) {
  char err[1024] = {0};
  if (api_instance().train(args.c_str(), err, sizeof err) != 0)
    throw Error(std::string("sentencepiece training failed: ") + err);
}

}  // namespace cora::text
