// Small file helpers: whole-file reads and atomic writes (temp file + fsync + rename), so a
// crash never leaves a half-written checkpoint, metrics file or split behind.
#pragma once

#include <string>

namespace cora::io {

/// Reads a whole file; throws cora::Error naming the path on failure.
std::string read_file(const std::string& path);

/// Writes `content` to `path` atomically (same-directory temp file, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& content);

/// Appends one line (adds '\n') and flushes; used for metrics.jsonl.
void append_line(const std::string& path, const std::string& line);

/// mkdir -p; throws cora::Error on failure.
void make_dirs(const std::string& path);

bool exists(const std::string& path);

/// Absolute, lexically normalised path (relative paths resolve against the current directory).
std::string absolute(const std::string& path);

}  // namespace cora::io
