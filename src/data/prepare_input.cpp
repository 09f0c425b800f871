// `cora prepare`'s readers: one streaming reader per raw format, the input roles and format
// detection.
#include "data/prepare_input.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "cora/data/prepare.h"

namespace cora::data {
namespace prep {
namespace {
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


bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// ---------------------------------------------------------------------------------------------
// Format readers

// A time field (seconds, or milliseconds) as whole Unix seconds; false unless it is a number
// within +-10^15 s (30 million years: anything beyond is not a date, and would not fit int64).
bool to_seconds(std::string_view text, bool milliseconds, int64_t& out) {
  double d = 0;
  if (!to_double(text, d)) return false;
  if (milliseconds) d /= 1000.0;
  if (!(std::fabs(d) <= 1e15)) return false;
  out = static_cast<int64_t>(std::floor(d));
  return true;
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
    int64_t ts = 0;
    if (!((vals[3].kind == Value::number || vals[3].kind == Value::string) &&
          to_seconds(vals[3].text, ms, ts)))
      return c.bad(r, "field '" + std::string(keys[3]) + "' is not a time in seconds");
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
    double rating = 0;
    int64_t ts = 0;
    if (f[0].empty() || f[1].empty()) return c.bad(r, "empty user or item id");
    if (!to_double(f[2], rating)) return c.bad(r, "rating '" + std::string(f[2]) + "' is not a number");
    if (!to_seconds(f[3], false, ts))
      return c.bad(r, "timestamp '" + std::string(f[3]) + "' is not a time in seconds");
    c.add(f[0], f[1], rating, ts);
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
      if (!raw::split_csv(line, f)) throw Error::at(path, 1, "unbalanced quote in the header");
      cu = find_column(f, "userId"), ci = find_column(f, "movieId"), cr = find_column(f, "rating"),
      ct = find_column(f, "timestamp");
      if (cu < 0 || ci < 0 || cr < 0 || ct < 0)
        throw Error::at(path, 1, "header must name userId, movieId, rating and timestamp, got '" +
                                     std::string(line) + "'");
      return;
    }
    if (line.empty()) return;
    if (!raw::split_csv(line, f)) return c.bad(r, "unbalanced quote");
    int need = std::max({cu, ci, cr, ct});
    if (static_cast<int>(f.size()) <= need)
      return c.bad(r, "expected at least " + std::to_string(need + 1) + " fields");
    double rating = 0;
    int64_t ts = 0;
    if (f[cu].empty() || f[ci].empty()) return c.bad(r, "empty userId or movieId");
    if (!to_double(f[cr], rating)) return c.bad(r, "rating '" + f[cr] + "' is not a number");
    if (!to_seconds(f[ct], false, ts))
      return c.bad(r, "timestamp '" + f[ct] + "' is not a time in seconds");
    c.add(f[cu], f[ci], rating, ts);
  });
}

void read_csv_items(Collector& c, const std::string& path) {
  std::vector<std::string> f;
  int ci = -1, ct = -1, cg = -1;
  c.read(path, "items", [&](LineReader& r, std::string_view line) {
    if (r.line_no() == 1) {
      if (!raw::split_csv(line, f)) throw Error::at(path, 1, "unbalanced quote in the header");
      ci = find_column(f, "movieId"), ct = find_column(f, "title"), cg = find_column(f, "genres");
      if (ci < 0 || ct < 0)
        throw Error::at(path, 1, "header must name movieId and title, got '" + std::string(line) + "'");
      return;
    }
    if (line.empty()) return;
    if (!raw::split_csv(line, f)) return c.bad(r, "unbalanced quote");
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
    double rating = 0;
    int64_t ts = 0;
    if (f[cu].empty() || f[ci].empty()) return c.bad(r, "empty user_id or item_id");
    if (!to_double(f[cr], rating)) return c.bad(r, "rating '" + std::string(f[cr]) + "' is not a number");
    if (!to_seconds(f[ct], false, ts))
      return c.bad(r, "timestamp '" + std::string(f[ct]) + "' is not a time in seconds");
    c.add(f[cu], f[ci], rating, ts);
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

}  // namespace

std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

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

void read_inputs(Collector& c, const std::string& format, const std::vector<std::string>& inter,
                 const std::vector<std::string>& meta) {
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
}

}  // namespace prep

using namespace prep;

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
}  // namespace cora::data
