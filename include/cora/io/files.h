// Small file helpers: whole-file reads and atomic writes (temp file + fsync + rename), so a
// crash never leaves a half-written checkpoint, metrics file or split behind.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace cora::io {

/// Reads a whole file; throws cora::Error naming the path on failure.
std::string read_file(const std::string& path);

/// Writes `content` to `path` atomically (same-directory temp file, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& content);

/// Writes several files as one change: each content becomes a complete "<path>.new" (temp
/// file, fsync, rename) first, and only when every one exists are they renamed into place, in
/// order. A failure while writing (disk full, read-only file system, quota) removes the .new
/// files and leaves every existing file as it was; the error names the file and the reason.
/// A process killed between the renames is completed by finish_files_atomic.
void write_files_atomic(const std::vector<std::pair<std::string, std::string>>& files);

/// Completes a write_files_atomic of `paths` (the same order) that a killed process left
/// half-renamed: if the last path's .new exists the change was whole and the remaining .new
/// files are renamed into place (returns true); otherwise stale .new files are removed.
bool finish_files_atomic(const std::vector<std::string>& paths);

/// Appends one line (adds '\n') and flushes; used for metrics.jsonl.
void append_line(const std::string& path, const std::string& line);

/// Throws cora::Error naming `dir` unless a small file can be created, written and removed in
/// it (a read-only file system, missing permission or a full disk, found before any work).
void check_writable(const std::string& dir);

/// mkdir -p; throws cora::Error on failure.
void make_dirs(const std::string& path);

bool exists(const std::string& path);

/// Absolute, lexically normalised path (relative paths resolve against the current directory).
std::string absolute(const std::string& path);

}  // namespace cora::io
