// libcora_spm: sentencepiece behind a C ABI. It is loaded with dlopen(RTLD_LOCAL|RTLD_DEEPBIND)
// so its protobuf copy never meets libtorch's (two copies in one namespace crash at start-up).
// Built without torch; strings cross the boundary as (pointer, length) pairs.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {
void set_err(char* err, int64_t cap, const std::string& msg) {
  if (!err || cap <= 0) return;
  std::strncpy(err, msg.c_str(), static_cast<size_t>(cap - 1));
  err[cap - 1] = '\0';
}
int copy_out(const std::string& s, char* out, int64_t cap, int64_t* needed) {
  *needed = static_cast<int64_t>(s.size());
  if (static_cast<int64_t>(s.size()) > cap) return 1;
  std::memcpy(out, s.data(), s.size());
  return 0;
}
}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* cora_spm_load(const char* path, char* err,
                                                           int64_t errcap) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto st = sp->Load(path);
  if (!st.ok()) {
    set_err(err, errcap, st.ToString());
    delete sp;
    return nullptr;
  }
  return sp;
}

__attribute__((visibility("default"))) void cora_spm_free(void* h) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(h);
}

// Encodes text[0..len) into ids; returns 0, or 1 when cap < *n (call again with *n slots).
__attribute__((visibility("default"))) int cora_spm_encode(void* h, const char* text, int64_t len,
                                                           int32_t* ids, int64_t cap, int64_t* n,
                                                           char* err, int64_t errcap) {
  std::vector<int> out;
  auto st = static_cast<sentencepiece::SentencePieceProcessor*>(h)->Encode(
      std::string(text, static_cast<size_t>(len)), &out);
  if (!st.ok()) {
    set_err(err, errcap, st.ToString());
    return 2;
  }
  *n = static_cast<int64_t>(out.size());
  if (*n > cap) return 1;
  for (size_t i = 0; i < out.size(); ++i) ids[i] = out[i];
  return 0;
}

__attribute__((visibility("default"))) int cora_spm_decode(void* h, const int32_t* ids, int64_t n,
                                                           char* out, int64_t cap,
                                                           int64_t* needed) {
  std::vector<int> v(ids, ids + n);
  std::string s;
  auto st = static_cast<sentencepiece::SentencePieceProcessor*>(h)->Decode(v, &s);
  if (!st.ok()) return 2;
  return copy_out(s, out, cap, needed);
}

__attribute__((visibility("default"))) int cora_spm_id_to_piece(void* h, int32_t id, char* out,
                                                                int64_t cap, int64_t* needed) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  if (id < 0 || id >= sp->GetPieceSize()) return 2;
  return copy_out(sp->IdToPiece(id), out, cap, needed);
}

__attribute__((visibility("default"))) int32_t cora_spm_piece_to_id(void* h, const char* piece) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->PieceToId(piece);
}

// which: 0 vocab size, 1 bos, 2 eos, 3 pad, 4 unk.
__attribute__((visibility("default"))) int32_t cora_spm_info(void* h, int which) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  switch (which) {
    case 0: return sp->GetPieceSize();
    case 1: return sp->bos_id();
    case 2: return sp->eos_id();
    case 3: return sp->pad_id();
    default: return sp->unk_id();
  }
}

// Trains a model from sentencepiece's command-line style arguments ("--input=... --model_prefix=...").
__attribute__((visibility("default"))) int cora_spm_train(const char* args, char* err,
                                                          int64_t errcap) {
  auto st = sentencepiece::SentencePieceTrainer::Train(args);
  if (!st.ok()) {
    set_err(err, errcap, st.ToString());
    return 2;
  }
  return 0;
}

}  // extern "C"
