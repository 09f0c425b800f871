// The reading half of `cora prepare` (private to src/data): interned rows inside the time
// window, item metadata of the items that occur, bad-line accounting, the format readers and
// the input roles. prepare.cpp applies the protocol to what the Collector holds.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "data/raw_input.h"

namespace cora::data::prep {
namespace fs = std::filesystem;
using raw::LineReader;

std::string base_name(const std::string& path);

// The collector: interned rows inside the window, item metadata, counters

struct StrHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Interner {
  std::unordered_map<std::string, uint32_t, StrHash, std::equal_to<>> map;
  std::vector<std::string> names;
  uint32_t get(std::string_view s) {
    auto it = map.find(s);
    if (it != map.end()) return it->second;
    uint32_t id = static_cast<uint32_t>(names.size());
    names.emplace_back(s);
    map.emplace(names.back(), id);
    return id;
  }
  int64_t find(std::string_view s) const {
    auto it = map.find(s);
    return it == map.end() ? int64_t{-1} : static_cast<int64_t>(it->second);
  }
};

struct Row {
  uint32_t user, item;
  float rating;
  int64_t ts;
};

struct ItemMeta {
  std::string title, genres;
  bool seen = false;  // a metadata line named this item
};

struct InputStat {
  std::string path, role;
  uint64_t bytes = 0, text_bytes = 0;
  int64_t lines = 0;
  bool gzip = false;
  std::string sha256;
};

class Collector {
 public:
  Collector(const config::PrepareConfig& p, int64_t max_bad, bool progress)
      : max_bad_(max_bad), progress_(progress) {
    if (!p.window_start.empty() && !raw::parse_utc(p.window_start, start_))
      throw Error::key("prepare.window_start", "expected a UTC date YYYY-MM-DD, got '" +
                                                   p.window_start + "'");
    if (!p.window_end.empty() && !raw::parse_utc(p.window_end, end_))
      throw Error::key("prepare.window_end", "expected a UTC date YYYY-MM-DD, got '" +
                                                 p.window_end + "'");
    if (start_ >= end_) throw Error::key("prepare.window_end", "must be after prepare.window_start");
  }

  void add(std::string_view user, std::string_view item, double rating, int64_t ts) {
    ++read_rows_;
    if (ts < start_ || ts >= end_) {
      ++outside_window_;
      return;
    }
    rows_.push_back({users_.get(user), items_.get(item), static_cast<float>(rating), ts});
  }

  // Metadata for an item: kept only when the item occurs in the interactions.
  void meta(std::string_view item, std::string title, std::string genres) {
    ++meta_lines_;
    int64_t id = items_.find(item);
    if (id < 0) {
      ++meta_unused_;
      return;
    }
    if (meta_.size() < items_.names.size()) meta_.resize(items_.names.size());
    ItemMeta& m = meta_[id];
    if (m.seen) {
      ++meta_duplicate_;
      return;
    }
    m.seen = true;
    m.title = raw::clean_field(title);
    m.genres = raw::clean_field(genres);
    if (m.title.empty()) ++meta_without_title_;
  }

  void bad(const LineReader& r, const std::string& why) {
    ++bad_lines_;
    std::string where = r.path() + ":" + std::to_string(r.line_no()) + ": " + why;
    if (examples_.size() < 5) {
      examples_.push_back(where);
      spdlog::warn("malformed line: {}", where);
    }
    if (bad_lines_ > max_bad_)
      throw Error::at(r.path(), r.line_no(),
                      why + " (" + std::to_string(bad_lines_) + " malformed line" +
                          (bad_lines_ > 1 ? "s" : "") + " so far, --max-bad-lines " +
                          std::to_string(max_bad_) + "; nothing was written)");
  }

  // Reads every line of `path` through `on_line`, with a progress line; records the input.
  void read(const std::string& path, const std::string& role,
            const std::function<void(LineReader&, std::string_view)>& on_line) {
    LineReader r(path);
    uint64_t total = fs::file_size(path);
    double t0 = now_seconds(), last = t0;
    std::string_view line;
    while (r.next(line)) {
      on_line(r, line);
      if (progress_ && (r.line_no() & 0xFFFF) == 0) {
        double t = now_seconds();
        if (t - last > 1.0) {
          last = t;
          double frac = total ? static_cast<double>(r.file_bytes()) / total : 1.0;
          double mbs = r.text_bytes() / 1e6 / (t - t0);
          std::fprintf(stderr, "\r%s: %3.0f%% %lld lines %.0f MB/s eta %.0fs   ",
                       base_name(path).c_str(), 100 * frac, static_cast<long long>(r.line_no()),
                       mbs, frac > 0 ? (t - t0) * (1 - frac) / frac : 0.0);
        }
      }
    }
    if (progress_ && now_seconds() - t0 > 1.0) std::fprintf(stderr, "\n");
    InputStat s{path, role, r.file_bytes(), r.text_bytes(), r.line_no(), r.gzip(), r.sha256_hex()};
    double dt = now_seconds() - t0;
    spdlog::info("read {} ({}): {} lines, {:.1f} MB{} in {:.1f}s", path, role, s.lines,
                 s.text_bytes / 1e6, s.gzip ? " uncompressed" : "", dt);
    inputs_.push_back(std::move(s));
  }

  int64_t max_bad_;
  bool progress_;
  int64_t start_ = INT64_MIN, end_ = INT64_MAX;
  Interner users_, items_;
  std::vector<Row> rows_;
  std::vector<ItemMeta> meta_;
  int64_t read_rows_ = 0, outside_window_ = 0, bad_lines_ = 0;
  int64_t meta_lines_ = 0, meta_unused_ = 0, meta_duplicate_ = 0, meta_without_title_ = 0;
  std::vector<std::string> examples_;
  std::vector<InputStat> inputs_;
};

/// Files named by --input (directories expand to their files, sorted).
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs);
/// "interactions", "items" or "" (not read by this format).
std::string role_of(const std::string& format, const std::string& path);
/// Reads every interaction file, then every metadata file, with the format's readers.
void read_inputs(Collector& c, const std::string& format, const std::vector<std::string>& inter,
                 const std::vector<std::string>& meta);

}  // namespace cora::data::prep
