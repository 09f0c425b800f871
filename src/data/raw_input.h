// Raw-input primitives of `cora prepare` (torch-free, private to src/data): a streaming line
// reader over plain or gzip files that hashes the bytes it reads, text decoding (Latin-1, UTF-8
// checks, \u escapes), and one scanner for the two object-literal dialects Amazon ships:
// JSON lines and Python dict literals (2014 metadata).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cora::data::raw {

/// Reads a file line by line in large blocks; gzip (one or more members) is detected from the
/// magic bytes and inflated on the fly. Memory is bounded by the longest line plus a block.
/// Lines exclude the '\n' and a trailing '\r'. A truncated or corrupt gzip stream is a
/// cora::Error naming the file and the line reached.
class LineReader {
 public:
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// Next line, valid until the following call; false at the end of the file.
  bool next(std::string_view& line);
  int64_t line_no() const { return line_no_; }
  const std::string& path() const { return path_; }
  bool gzip() const;
  uint64_t file_bytes() const;   ///< bytes read from disk so far (compressed size for gzip)
  uint64_t text_bytes() const { return text_bytes_; }  ///< uncompressed bytes delivered
  std::string sha256_hex();      ///< of the file's bytes; call after the last line

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  int64_t line_no_ = 0;
  uint64_t text_bytes_ = 0;
  bool fill();
};

/// The first non-empty line of a file (plain or gzip), or "" for an empty file.
std::string first_line(const std::string& path);

/// Latin-1 bytes to UTF-8.
std::string latin1_to_utf8(std::string_view s);
bool valid_utf8(std::string_view s);
/// `s` if it is valid UTF-8, else `s` read as Latin-1.
std::string utf8_or_latin1(std::string_view s);
/// Appends code point `cp` as UTF-8 (invalid code points become U+FFFD).
void append_utf8(std::string& out, uint32_t cp);
/// A title fit for one TSV field: tabs and line breaks become spaces, outer spaces trimmed.
std::string clean_field(std::string_view s);

/// One RFC-4180 CSV line (no embedded line breaks) into fields; false on an unbalanced quote.
bool split_csv(std::string_view line, std::vector<std::string>& out);

enum class Dialect { json, python };

/// One top-level value found by scan_object.
struct Value {
  enum Kind { absent, string, number, boolean, null, object, array };
  Kind kind = absent;
  std::string text;  ///< decoded string, or the number's characters
};

/// Scans one object literal `{...}` (the whole line, surrounding spaces allowed) and fills
/// out[k] for each top-level key in `keys`. Returns "" on success, else what is malformed.
/// Values of other keys are checked for well-formedness and skipped without decoding.
std::string scan_object(std::string_view line, Dialect dialect,
                        std::span<const std::string_view> keys, std::span<Value> out);

/// "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS" (UTC) to Unix seconds; false when malformed.
bool parse_utc(std::string_view s, int64_t& seconds);
/// Unix seconds to "YYYY-MM-DD HH:MM:SS" (UTC).
std::string format_utc(int64_t seconds);

}  // namespace cora::data::raw
