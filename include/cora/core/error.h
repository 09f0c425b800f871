// cora::Error: the one exception type for IO, config and data problems.
// Messages name the file and line or the config key, and may carry a `hint:`.
// Tensor invariants use TORCH_CHECK instead; the CLI turns either into `error: ...`.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace cora {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}

  /// "<file>:<line>: <msg>" (line 0 = the file as a whole).
  static Error at(const std::string& file, int64_t line, const std::string& msg) {
    return Error(line > 0 ? file + ":" + std::to_string(line) + ": " + msg : file + ": " + msg);
  }
  /// "config key '<key>': <msg>".
  static Error key(const std::string& key, const std::string& msg) {
    return Error("config key '" + key + "': " + msg);
  }
};

/// Raised for bad command-line usage (the CLI exits 2 instead of 1).
class UsageError : public Error {
 public:
  using Error::Error;
};

/// Raised when SIGTERM or SIGINT stopped a run after it wrote a resumable checkpoint
/// (the CLI exits kExitInterrupted).
class Interrupted : public Error {
 public:
  using Error::Error;
};

/// Exit code of a run stopped by a signal with a resumable checkpoint (sysexits' EX_TEMPFAIL:
/// run the same command again with --resume).
inline constexpr int kExitInterrupted = 75;

}  // namespace cora
