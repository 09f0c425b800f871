// Shared helpers of the libFuzzer targets (tests/fuzz): inputs become files where the code under
// test reads files, and only cora::Error counts as a clean rejection. Anything else escaping a
// target (another exception type, a crash, a sanitizer report) is a finding.
#pragma once

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "cora/core/error.h"

namespace cora::fuzz {

/// A per-process scratch file (TMPDIR, default /dev/shm) holding `bytes`.
inline std::string scratch_file(const std::string& tag, std::string_view bytes) {
  const char* dir = std::getenv("TMPDIR");
  std::string base = dir && *dir ? dir : "/dev/shm";
  std::string path = base + "/cora-fuzz-" + std::to_string(::getpid()) + "-" + tag;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
  return path;
}

/// Splits the input at its first NUL byte (the second part is empty when there is none).
inline std::pair<std::string_view, std::string_view> split_at_nul(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t k = all.find('\0');
  if (k == std::string_view::npos) return {all, {}};
  return {all.substr(0, k), all.substr(k + 1)};
}

/// Runs `f`; a cora::Error with a non-empty message is a clean rejection, anything else escapes.
template <class F>
void rejects_cleanly(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    if (std::string_view(e.what()).empty()) std::abort();  // an error must say what is wrong
  }
}

/// Logging off in every target (set before the first input).
[[maybe_unused]] inline const bool kQuiet = (spdlog::set_level(spdlog::level::off), true);

}  // namespace cora::fuzz
