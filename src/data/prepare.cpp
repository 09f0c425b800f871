// `cora prepare`: format readers (streaming), the temporal protocol, and the atomic output.
#include "cora/data/prepare.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <sstream>
#include <unordered_map>

#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/data/split.h"
#include "cora/io/files.h"
#include "data/raw_input.h"

namespace cora::data {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using raw::LineReader;
using raw::Value;

// ---------------------------------------------------------------------------------------------
// Small parsing helpers

bool to_double(std::string_view s, double& v) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(v);
}

// Splits on a separator string (e.g. "::", "|", "\t").
void split_on(std::string_view line, std::string_view sep, std::vector<std::string_view>& out) {
  out.clear();
  while (true) {
    size_t at = line.find(sep);
    if (at == std::string_view::npos) {
      out.push_back(line);
      return;
    }
    out.push_back(line.substr(0, at));
    line.remove_prefix(at + sep.size());
  }
}

// One RFC-4180 CSV line (no embedded line breaks); false on an unbalanced quote.
bool split_csv(std::string_view line, std::vector<std::string>& out) {
  out.clear();
  std::string cur;
  size_t i = 0;
  while (true) {
    cur.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) return false;
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cur += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        cur += line[i++];
      }
      if (i < line.size() && line[i] != ',') return false;
    } else {
      size_t c = line.find(',', i);
      size_t e = c == std::string_view::npos ? line.size() : c;
      cur.assign(line.substr(i, e - i));
      if (cur.find('"') != std::string::npos) return false;
      i = e;
    }
    out.push_back(cur);
    if (i >= line.size()) return true;
    ++i;  // the comma
    if (i == line.size()) {
      out.emplace_back();
      return true;
    }
  }
}

std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// ---------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------
// Format readers

int64_t to_seconds(const Value& v, bool milliseconds, bool& ok) {
  double d = 0;
  ok = (v.kind == Value::number || v.kind == Value::string) && to_double(v.text, d);
  if (!ok) return 0;
  if (milliseconds) d /= 1000.0;
  return static_cast<int64_t>(std::floor(d));
}

// Amazon review lines (JSON): user, item, rating, time keys; `ms` = time in milliseconds.
void read_amazon_reviews(Collector& c, const std::string& path, const char* user_key,
                         const char* item_key, const char* rating_key, const char* time_key,
                         bool ms) {
  const std::string_view keys[4] = {user_key, item_key, rating_key, time_key};
  Value vals[4];
  c.read(path, "interactions", [&](LineReader& r, std::string_view line) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    std::string err = raw::scan_object(line, raw::Dialect::json, keys, vals);
    if (!err.empty()) return c.bad(r, "invalid JSON: " + err);
    for (int k = 0; k < 4; ++k)
      if (vals[k].kind == Value::absent) return c.bad(r, "missing field '" + std::string(keys[k]) + "'");
    for (int k = 0; k < 2; ++k)
      if (vals[k].kind != Value::string || vals[k].text.empty())
        return c.bad(r, "field '" + std::string(keys[k]) + "' must be a non-empty string");
    double rating = 0;
    if (!((vals[2].kind == Value::number || vals[2].kind == Value::string) &&
          to_double(vals[2].text, rating)))
      return c.bad(r, "field '" + std::string(keys[2]) + "' is not a number");
    bool ok = false;
    int64_t ts = to_seconds(vals[3], ms, ok);
    if (!ok) return c.bad(r, "field '" + std::string(keys[3]) + "' is not a number");
    c.add(vals[0].text, vals[1].text, rating, ts);
  });
}

void read_amazon_meta(Collector& c, const std::string& path, raw::Dialect dialect,
                      const char* item_key) {
  const std::string_view keys[3] = {item_key, "title", "categories"};
  Value vals[3];
  c.read(path, "items", [&](LineReader& r, std::string_view line) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    std::string err = raw::scan_object(line, dialect, keys, vals);
    if (!err.empty())
      return c.bad(r, std::string(dialect == raw::Dialect::json ? "invalid JSON: "
                                                                 : "invalid Python literal: ") +
                          err);
    if (vals[0].kind != Value::string || vals[0].text.empty())
      return c.bad(r, "missing field '" + std::string(item_key) + "'");
    std::string title = vals[1].kind == Value::string ? vals[1].text : "";
    c.meta(vals[0].text, std::move(title), "");
  });
}

// A delimited ratings file: user, item, rating, time in the given column order.
void read_delimited_ratings(Collector& c, const std::string& path, std::string_view sep,
                            bool header) {
  std::vector<std::string_view> f;
  c.read(path, "interactions", [&](LineReader& r, std::string_view line) {
    if (header && r.line_no() == 1) return;
    if (line.empty()) return;
    split_on(line, sep, f);
    if (f.size() != 4)
      return c.bad(r, "expected 4 fields separated by '" + std::string(sep == "\t" ? "\\t" : sep) +
                          "', got " + std::to_string(f.size()));
    double rating = 0, ts = 0;
    if (f[0].empty() || f[1].empty()) return c.bad(r, "empty user or item id");
    if (!to_double(f[2], rating)) return c.bad(r, "rating '" + std::string(f[2]) + "' is not a number");
    if (!to_double(f[3], ts)) return c.bad(r, "timestamp '" + std::string(f[3]) + "' is not a number");
    c.add(f[0], f[1], rating, static_cast<int64_t>(std::floor(ts)));
  });
}

const char* kMl100kGenres[] = {"unknown", "Action", "Adventure", "Animation", "Children's",
                               "Comedy", "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir",
                               "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                               "War", "Western"};

void read_ml_items(Collector& c, const std::string& path, bool ml100k) {
  std::vector<std::string_view> f;
  c.read(path, "items", [&](LineReader& r, std::string_view line) {
    if (line.empty()) return;
    split_on(line, ml100k ? "|" : "::", f);
    if (ml100k ? f.size() < 5 : f.size() != 3)
      return c.bad(r, ml100k ? "expected at least 5 '|'-separated fields"
                             : "expected 3 '::'-separated fields (id::title::genres)");
    if (f[0].empty()) return c.bad(r, "empty movie id");
    std::string genres;
    if (ml100k) {
      for (size_t g = 5; g < f.size() && g - 5 < std::size(kMl100kGenres); ++g)
        if (f[g] == "1") genres += (genres.empty() ? "" : "|") + std::string(kMl100kGenres[g - 5]);
    } else {
      genres = raw::latin1_to_utf8(f[2]);
    }
    c.meta(f[0], raw::latin1_to_utf8(f[1]), genres);  // MovieLens .dat/.item files are Latin-1
  });
}

// Column index of `name` in a header row; -1 when absent.
int find_column(const std::vector<std::string>& header, std::string_view name) {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

void read_csv_ratings(Collector& c, const std::string& path) {
  std::vector<std::string> f;
  int cu = -1, ci = -1, cr = -1, ct = -1;
  c.read(path, "interactions", [&](LineReader& r, std::string_view line) {
    if (r.line_no() == 1) {
      if (!split_csv(line, f)) throw Error::at(path, 1, "unbalanced quote in the header");
      cu = find_column(f, "userId"), ci = find_column(f, "movieId"), cr = find_column(f, "rating"),
      ct = find_column(f, "timestamp");
      if (cu < 0 || ci < 0 || cr < 0 || ct < 0)
        throw Error::at(path, 1, "header must name userId, movieId, rating and timestamp, got '" +
                                     std::string(line) + "'");
      return;
    }
    if (line.empty()) return;
    if (!split_csv(line, f)) return c.bad(r, "unbalanced quote");
    int need = std::max({cu, ci, cr, ct});
    if (static_cast<int>(f.size()) <= need)
      return c.bad(r, "expected at least " + std::to_string(need + 1) + " fields");
    double rating = 0, ts = 0;
    if (f[cu].empty() || f[ci].empty()) return c.bad(r, "empty userId or movieId");
    if (!to_double(f[cr], rating)) return c.bad(r, "rating '" + f[cr] + "' is not a number");
    if (!to_double(f[ct], ts)) return c.bad(r, "timestamp '" + f[ct] + "' is not a number");
    c.add(f[cu], f[ci], rating, static_cast<int64_t>(std::floor(ts)));
  });
}

void read_csv_items(Collector& c, const std::string& path) {
  std::vector<std::string> f;
  int ci = -1, ct = -1, cg = -1;
  c.read(path, "items", [&](LineReader& r, std::string_view line) {
    if (r.line_no() == 1) {
      if (!split_csv(line, f)) throw Error::at(path, 1, "unbalanced quote in the header");
      ci = find_column(f, "movieId"), ct = find_column(f, "title"), cg = find_column(f, "genres");
      if (ci < 0 || ct < 0)
        throw Error::at(path, 1, "header must name movieId and title, got '" + std::string(line) + "'");
      return;
    }
    if (line.empty()) return;
    if (!split_csv(line, f)) return c.bad(r, "unbalanced quote");
    if (static_cast<int>(f.size()) <= std::max({ci, ct, cg}))
      return c.bad(r, "expected " + std::to_string(std::max({ci, ct, cg}) + 1) + " fields");
    c.meta(f[ci], raw::utf8_or_latin1(f[ct]), cg >= 0 ? raw::utf8_or_latin1(f[cg]) : "");
  });
}

// RecBole atomic header: "name:type" fields; returns the index of the first name in `names`.
int recbole_column(const std::vector<std::string_view>& header, std::initializer_list<std::string_view> names) {
  for (auto n : names)
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i].substr(0, header[i].find(':')) == n) return static_cast<int>(i);
  return -1;
}

void read_recbole_inter(Collector& c, const std::string& path) {
  std::vector<std::string_view> f;
  std::vector<std::string> header_names;
  int cu = -1, ci = -1, cr = -1, ct = -1;
  c.read(path, "interactions", [&](LineReader& r, std::string_view line) {
    if (r.line_no() == 1) {
      split_on(line, "\t", f);
      cu = recbole_column(f, {"user_id"}), ci = recbole_column(f, {"item_id"}),
      cr = recbole_column(f, {"rating"}), ct = recbole_column(f, {"timestamp"});
      if (cu < 0 || ci < 0 || cr < 0 || ct < 0)
        throw Error::at(path, 1, "header must have user_id, item_id, rating and timestamp "
                                 "fields (name:type), got '" + std::string(line) + "'");
      return;
    }
    if (line.empty()) return;
    split_on(line, "\t", f);
    int need = std::max({cu, ci, cr, ct});
    if (static_cast<int>(f.size()) <= need)
      return c.bad(r, "expected at least " + std::to_string(need + 1) + " tab-separated fields");
    double rating = 0, ts = 0;
    if (f[cu].empty() || f[ci].empty()) return c.bad(r, "empty user_id or item_id");
    if (!to_double(f[cr], rating)) return c.bad(r, "rating '" + std::string(f[cr]) + "' is not a number");
    if (!to_double(f[ct], ts)) return c.bad(r, "timestamp '" + std::string(f[ct]) + "' is not a number");
    c.add(f[cu], f[ci], rating, static_cast<int64_t>(std::floor(ts)));
  });
}

void read_recbole_items(Collector& c, const std::string& path) {
  std::vector<std::string_view> f;
  int ci = -1, ct = -1, cg = -1;
  c.read(path, "items", [&](LineReader& r, std::string_view line) {
    if (r.line_no() == 1) {
      split_on(line, "\t", f);
      ci = recbole_column(f, {"item_id"});
      ct = recbole_column(f, {"title", "movie_title", "item_title", "name"});
      cg = recbole_column(f, {"genre", "genres", "categories", "class"});
      if (ci < 0 || ct < 0)
        throw Error::at(path, 1, "header must have item_id and a title field (title, movie_title, "
                                 "item_title or name), got '" + std::string(line) + "'");
      return;
    }
    if (line.empty()) return;
    split_on(line, "\t", f);
    if (static_cast<int>(f.size()) <= std::max(ci, ct))
      return c.bad(r, "expected at least " + std::to_string(std::max(ci, ct) + 1) + " fields");
    std::string genres = cg >= 0 && cg < static_cast<int>(f.size()) ? raw::utf8_or_latin1(f[cg]) : "";
    c.meta(f[ci], raw::utf8_or_latin1(f[ct]), genres);
  });
}

// ---------------------------------------------------------------------------------------------
// Inputs: expansion, roles, detection

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> here;
      for (const auto& e : fs::directory_iterator(in))
        if (e.is_regular_file()) here.push_back(e.path().string());
      std::sort(here.begin(), here.end());
      files.insert(files.end(), here.begin(), here.end());
    } else if (fs::is_regular_file(in, ec)) {
      files.push_back(in);
    } else {
      throw Error::at(in, 0, "input does not exist (or is not a file or directory)");
    }
  }
  if (files.empty()) throw UsageError("--input names no files");
  return files;
}

std::string strip_gz(std::string name) {
  if (ends_with(name, ".gz")) name.resize(name.size() - 3);
  return name;
}

// "interactions", "items" or "" (not used by this format) for a file of `format`.
std::string role_of(const std::string& format, const std::string& path) {
  std::string n = strip_gz(base_name(path));
  if (format == "amazon2014" || format == "amazon2018" || format == "amazon2023") {
    bool jsonish = ends_with(n, ".json") || ends_with(n, ".jsonl");
    if (!jsonish) return "";
    return starts_with(n, "meta_") ? "items" : "interactions";
  }
  if (format == "ml-1m") return n == "ratings.dat" ? "interactions" : n == "movies.dat" ? "items" : "";
  if (format == "ml-100k") return n == "u.data" ? "interactions" : n == "u.item" ? "items" : "";
  if (format == "movielens-csv")
    return n == "ratings.csv" ? "interactions" : n == "movies.csv" ? "items" : "";
  if (format == "recbole")
    return ends_with(n, ".inter") ? "interactions" : ends_with(n, ".item") ? "items" : "";
  return "";
}

}  // namespace

const std::vector<std::string>& prepare_formats() {
  static const std::vector<std::string> f = {"amazon2014", "amazon2018", "amazon2023", "ml-1m",
                                             "ml-100k", "movielens-csv", "recbole"};
  return f;
}

std::string detect_format(const std::vector<std::string>& inputs) {
  auto files = expand_inputs(inputs);
  std::string meta_first, inter_first, inter_name;
  for (const auto& p : files) {
    std::string n = strip_gz(base_name(p));
    if (ends_with(n, ".inter")) return "recbole";
    if (n == "ratings.dat") return "ml-1m";
    if (n == "u.data") return "ml-100k";
    if (n == "ratings.csv") return "movielens-csv";
  }
  for (const auto& p : files) {
    std::string n = strip_gz(base_name(p));
    if (!(ends_with(n, ".json") || ends_with(n, ".jsonl"))) continue;
    if (starts_with(n, "meta_")) {
      if (meta_first.empty()) meta_first = raw::first_line(p);
    } else if (inter_first.empty()) {
      inter_first = raw::first_line(p);
      inter_name = n;
    }
  }
  if (inter_first.find("\"parent_asin\"") != std::string::npos ||
      inter_first.find("\"user_id\"") != std::string::npos)
    return "amazon2023";
  if (inter_first.find("\"reviewerID\"") != std::string::npos) {
    // 2014 and 2018 reviews share their fields; 2014 metadata are Python literals.
    if (!meta_first.empty()) return meta_first.rfind("{'", 0) == 0 ? "amazon2014" : "amazon2018";
    return starts_with(inter_name, "reviews_") ? "amazon2014" : "amazon2018";
  }
  throw UsageError("cannot detect the input format of " + files.front() +
                   " (hint: pass --format, one of amazon2014, amazon2018, amazon2023, ml-1m, "
                   "ml-100k, movielens-csv, recbole)");
}

std::string prepare(const PrepareRequest& req) {
  const double t0 = now_seconds();
  const auto& p = req.protocol;
  std::string format = req.format.empty() ? detect_format(req.inputs) : req.format;
  const auto& known = prepare_formats();
  if (std::find(known.begin(), known.end(), format) == known.end())
    throw UsageError("unknown --format '" + format + "'");
  if (req.out.empty()) throw UsageError("--out is required");

  // Protocol checks before any reading.
  int64_t valid_start = 0, test_start = 0;
  if (p.split == "dates" || p.split == "halves") {
    if (!raw::parse_utc(p.valid_start, valid_start))
      throw Error::key("prepare.valid_start", "expected a UTC date YYYY-MM-DD, got '" + p.valid_start + "'");
  }
  if (p.split == "dates") {
    if (!raw::parse_utc(p.test_start, test_start))
      throw Error::key("prepare.test_start", "expected a UTC date YYYY-MM-DD, got '" + p.test_start + "'");
    if (test_start <= valid_start) throw Error::key("prepare.test_start", "must be after prepare.valid_start");
  } else if (p.split == "ratios" || p.split == "user_ratios") {
    if (p.train_ratio <= 0 || p.valid_ratio <= 0 || p.train_ratio + p.valid_ratio >= 1)
      throw Error::key("prepare.train_ratio", "train_ratio and valid_ratio must be > 0 with a sum < 1");
  } else if (p.split != "halves") {
    throw Error::key("prepare.split", "'" + p.split + "' is not one of: dates, halves, ratios, user_ratios");
  }
  if (p.valid_small_fraction <= 0 || p.valid_small_fraction > 1)
    throw Error::key("prepare.valid_small_fraction", "must be in (0, 1]");

  Collector c(p, req.max_bad_lines, req.progress);
  auto files = expand_inputs(req.inputs);
  std::vector<std::string> inter, meta;
  for (const auto& f : files) {
    std::string role = role_of(format, f);
    if (role == "interactions") inter.push_back(f);
    else if (role == "items") meta.push_back(f);
    else spdlog::info("{}: not an input of format {}; not read", f, format);
  }
  if (inter.empty())
    throw UsageError("no interaction file among the inputs for format " + format +
                     " (expected e.g. ratings.dat, u.data, ratings.csv, *.inter or review JSON lines)");

  for (const auto& f : inter) {
    size_t before = c.read_rows_;
    if (format == "amazon2014" || format == "amazon2018")
      read_amazon_reviews(c, f, "reviewerID", "asin", "overall", "unixReviewTime", false);
    else if (format == "amazon2023")
      read_amazon_reviews(c, f, "user_id", "parent_asin", "rating", "timestamp", true);
    else if (format == "ml-1m")
      read_delimited_ratings(c, f, "::", false);
    else if (format == "ml-100k")
      read_delimited_ratings(c, f, "\t", false);
    else if (format == "movielens-csv")
      read_csv_ratings(c, f);
    else
      read_recbole_inter(c, f);
    if (c.read_rows_ == static_cast<int64_t>(before))
      throw Error::at(f, 0, "no interactions (empty file, or every line malformed)");
  }
  for (const auto& f : meta) {
    if (format == "amazon2014")
      read_amazon_meta(c, f, raw::Dialect::python, "asin");
    else if (format == "amazon2018")
      read_amazon_meta(c, f, raw::Dialect::json, "asin");
    else if (format == "amazon2023")
      read_amazon_meta(c, f, raw::Dialect::json, "parent_asin");
    else if (format == "ml-1m" || format == "ml-100k")
      read_ml_items(c, f, format == "ml-100k");
    else if (format == "movielens-csv")
      read_csv_items(c, f);
    else
      read_recbole_items(c, f);
  }
  c.meta_.resize(c.items_.names.size());

  // --- Minimum-count filters (after the window): users then items, once or until stable.
  std::vector<Row>& rows = c.rows_;
  int64_t dropped_user = 0, dropped_item = 0;
  auto count_filter = [&](bool by_user, int64_t min) {
    if (min <= 0) return int64_t{0};
    std::vector<int64_t> n(by_user ? c.users_.names.size() : c.items_.names.size(), 0);
    for (const auto& r : rows) ++n[by_user ? r.user : r.item];
    size_t before = rows.size();
    std::erase_if(rows, [&](const Row& r) { return n[by_user ? r.user : r.item] < min; });
    return static_cast<int64_t>(before - rows.size());
  };
  int rounds = 0;
  while (true) {
    ++rounds;
    int64_t du = count_filter(true, p.min_user_rows);
    int64_t di = count_filter(false, p.min_item_rows);
    dropped_user += du;
    dropped_item += di;
    if (!p.filter_until_stable || (du == 0 && di == 0)) break;
  }
  if (rows.empty())
    throw Error("prepare: no rows left after the time window and count filters (read " +
                std::to_string(c.read_rows_) + ", outside the window " +
                std::to_string(c.outside_window_) + "; hint: check prepare.window_start/window_end)");

  // --- Time order (stable: equal timestamps keep input order) and split assignment.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ts < b.ts; });
  const size_t n = rows.size();
  std::vector<uint8_t> part(n);  // 0 train, 1 valid, 2 test
  if (p.split == "dates") {
    for (size_t i = 0; i < n; ++i)
      part[i] = rows[i].ts < valid_start ? 0 : rows[i].ts < test_start ? 1 : 2;
  } else if (p.split == "halves") {
    size_t first = std::lower_bound(rows.begin(), rows.end(), valid_start,
                                    [](const Row& r, int64_t t) { return r.ts < t; }) - rows.begin();
    size_t half = (n - first) / 2;
    for (size_t i = 0; i < n; ++i) part[i] = i < first ? 0 : i < first + half ? 1 : 2;
  } else if (p.split == "ratios") {
    size_t a = static_cast<size_t>(std::floor(n * p.train_ratio));
    size_t b = a + static_cast<size_t>(std::floor(n * p.valid_ratio));
    for (size_t i = 0; i < n; ++i) part[i] = i < a ? 0 : i < b ? 1 : 2;
  } else {  // user_ratios: each user's own rows in time order
    std::vector<int64_t> total(c.users_.names.size(), 0), seen(c.users_.names.size(), 0);
    for (const auto& r : rows) ++total[r.user];
    for (size_t i = 0; i < n; ++i) {
      int64_t t = total[rows[i].user], k = seen[rows[i].user]++;
      int64_t a = static_cast<int64_t>(std::floor(t * p.train_ratio));
      int64_t b = a + static_cast<int64_t>(std::floor(t * p.valid_ratio));
      part[i] = k < a ? 0 : k < b ? 1 : 2;
    }
  }

  // --- Ids by first appearance in time order (1-based; 0 = padding).
  std::vector<int64_t> uid_of(c.users_.names.size(), 0), iid_of(c.items_.names.size(), 0);
  std::vector<uint32_t> raw_item;  // new iid - 1 -> interned item
  int64_t n_users = 0, n_items = 0;
  for (const auto& r : rows) {
    if (!uid_of[r.user]) uid_of[r.user] = ++n_users;
    if (!iid_of[r.item]) {
      iid_of[r.item] = ++n_items;
      raw_item.push_back(r.item);
    }
  }

  // --- Warm set: users and items of train.
  std::vector<uint8_t> user_in_train(n_users + 1, 0), item_in_train(n_items + 1, 0);
  for (size_t i = 0; i < n; ++i)
    if (part[i] == 0) user_in_train[uid_of[rows[i].user]] = item_in_train[iid_of[rows[i].item]] = 1;

  // --- Rows per split, grouped by user (time order within a user), with histories of the
  // user's earlier positive items across all splits.
  std::vector<std::vector<int64_t>> positives(n_users + 1);
  std::vector<std::vector<size_t>> order(3);
  for (size_t i = 0; i < n; ++i) order[part[i]].push_back(i);
  std::vector<int64_t> hist_start(n), hist_len(n);  // into per-user positive lists at row time
  for (size_t i = 0; i < n; ++i) {
    int64_t u = uid_of[rows[i].user];
    int64_t len = static_cast<int64_t>(positives[u].size());
    int64_t keep = p.max_history > 0 ? std::min(len, p.max_history) : len;
    hist_start[i] = len - keep;
    hist_len[i] = keep;
    if (rows[i].rating >= p.positive_rating) positives[u].push_back(iid_of[rows[i].item]);
  }
  Split splits[3];
  const char* names[3] = {"train", "valid", "test"};
  json split_stats = json::object();
  auto stats_of = [&](const Split& s) {
    std::vector<uint8_t> us(n_users + 1, 0), is(n_items + 1, 0);
    int64_t pos = 0, warm = 0, nu = 0, ni = 0;
    int64_t tmin = INT64_MAX, tmax = INT64_MIN;
    for (size_t r = 0; r < s.size(); ++r) {
      nu += !us[s.uid[r]];
      ni += !is[s.iid[r]];
      us[s.uid[r]] = is[s.iid[r]] = 1;
      pos += s.label[r] > 0.5f;
      warm += s.not_cold[r];
      tmin = std::min(tmin, s.timestamp[r]);
      tmax = std::max(tmax, s.timestamp[r]);
    }
    json j = {{"rows", s.size()}, {"users", nu}, {"items", ni},
              {"positive_rate", s.size() ? static_cast<double>(pos) / s.size() : 0.0},
              {"warm_rows", warm}, {"cold_rows", static_cast<int64_t>(s.size()) - warm}};
    if (s.size()) j["first"] = raw::format_utc(tmin), j["last"] = raw::format_utc(tmax);
    return j;
  };
  for (int k = 0; k < 3; ++k) {
    auto& idx = order[k];
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return uid_of[rows[a].user] < uid_of[rows[b].user];
    });
    Split& s = splits[k];
    s.name = names[k];
    s.hist_offsets.push_back(0);
    for (size_t i : idx) {
      int64_t u = uid_of[rows[i].user], it = iid_of[rows[i].item];
      std::span<const int64_t> h(positives[u].data() + hist_start[i], hist_len[i]);
      s.push_row(u, it, rows[i].rating >= p.positive_rating ? 1.f : 0.f, rows[i].ts,
                 user_in_train[u] && item_in_train[it], h);
    }
    if (s.size() == 0)
      throw Error::key(k == 0 ? "prepare.valid_start" : k == 1 ? "prepare.test_start" : "prepare.split",
                       std::string("the protocol leaves the ") + names[k] +
                           " split empty (rows span " + raw::format_utc(rows.front().ts) + " to " +
                           raw::format_utc(rows.back().ts) + " UTC)");
  }

  // --- valid_small: a seeded sample of valid rows, kept in valid's order. The shuffle is
  // written out (not std::shuffle) so the sample is the same with every standard library.
  Split valid_small;
  valid_small.name = "valid_small";
  valid_small.hist_offsets.push_back(0);
  {
    const Split& v = splits[1];
    std::vector<size_t> idx(v.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::mt19937_64 rng(p.valid_small_seed);
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    size_t k = static_cast<size_t>(std::floor(v.size() * p.valid_small_fraction));
    k = std::max<size_t>(k, 1);
    idx.resize(k);
    std::sort(idx.begin(), idx.end());
    for (size_t i : idx)
      valid_small.push_row(v.uid[i], v.iid[i], v.label[i], v.timestamp[i], v.not_cold[i], v.history(i));
  }

  // --- Items: titles (placeholder when missing), genres when the format has them.
  int64_t untitled = 0;
  bool any_genres = false;
  for (uint32_t ri : raw_item) any_genres |= !c.meta_[ri].genres.empty();
  std::ostringstream items;
  items << (any_genres ? "iid\ttitle\tgenres\n" : "iid\ttitle\n");
  for (int64_t i = 1; i <= n_items; ++i) {
    const ItemMeta& m = c.meta_[raw_item[i - 1]];
    std::string title = m.title;
    if (title.empty()) {
      ++untitled;
      title = "[untitled item " + raw::clean_field(c.items_.names[raw_item[i - 1]]) + "]";
    }
    items << i << '\t' << title;
    if (any_genres) items << '\t' << m.genres;
    items << '\n';
  }

  // --- stats.json
  json inputs = json::array();
  for (const auto& s : c.inputs_)
    inputs.push_back({{"path", io::absolute(s.path)}, {"role", s.role}, {"bytes", s.bytes},
                      {"uncompressed_bytes", s.text_bytes}, {"gzip", s.gzip}, {"lines", s.lines},
                      {"sha256", s.sha256}});
  for (int k = 0; k < 3; ++k) split_stats[names[k]] = stats_of(splits[k]);
  split_stats["valid_small"] = stats_of(valid_small);
  json stats = {
      {"format", format},
      {"protocol", json::parse(req.protocol_json.empty() ? "{}" : req.protocol_json)},
      {"users", n_users},
      {"items", n_items},
      {"rows", n},
      {"splits", split_stats},
      {"read_rows", c.read_rows_},
      {"dropped", {{"outside_window", c.outside_window_},
                   {"user_min_rows", dropped_user},
                   {"item_min_rows", dropped_item}}},
      {"filter_rounds", rounds},
      {"bad_lines", c.bad_lines_},
      {"bad_line_examples", c.examples_},
      {"untitled_items", untitled},
      {"item_metadata", {{"lines", c.meta_lines_},
                         {"unused", c.meta_unused_},
                         {"duplicate", c.meta_duplicate_},
                         {"without_title", c.meta_without_title_}}},
      {"inputs", inputs},
      {"elapsed_s", now_seconds() - t0},
  };
  std::string stats_text = stats.dump(2) + "\n";

  // --- Atomic output: a temporary sibling directory renamed into place.
  fs::path out = fs::path(io::absolute(req.out));
  fs::path tmp = out;
  tmp += ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  io::make_dirs(tmp.string());
  try {
    io::write_file_atomic((tmp / "items.tsv").string(), items.str());
    for (int k = 0; k < 3; ++k) write_split(splits[k], (tmp / (std::string(names[k]) + ".tsv")).string());
    write_split(valid_small, (tmp / "valid_small.tsv").string());
    io::write_file_atomic((tmp / "stats.json").string(), stats_text);
    fs::path old = out;
    old += ".old.tmp." + std::to_string(::getpid());
    bool had = fs::exists(out);
    if (had) fs::rename(out, old);
    fs::rename(tmp, out);
    if (had) fs::remove_all(old, ec);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error::at(out.string(), 0, std::string("cannot write the split: ") + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  spdlog::info("prepared {}: {} users, {} items, rows train/valid/test {}/{}/{} in {:.1f}s", out.string(),
               n_users, n_items, splits[0].size(), splits[1].size(), splits[2].size(),
               now_seconds() - t0);
  return stats_text;
}

}  // namespace cora::data
