// Reading and writing cora's split format, strictly: exact headers, typed fields, known ids.
#include "cora/data/split.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <sstream>

#include "cora/core/error.h"
#include "cora/io/files.h"
#include "data/raw_input.h"

namespace cora::data {
namespace {

constexpr const char* kSplitHeader = "uid\tiid\tlabel\ttimestamp\tnot_cold\thistory";

// Splits `line` on tabs into views.
std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

int64_t parse_int(std::string_view s, const std::string& path, int64_t line, const char* what) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty())
    throw Error::at(path, line, std::string("bad ") + what + " '" + std::string(s) +
                                    "' (expected an integer)");
  return v;
}

// Streams the lines of a file (plain or gzip; a trailing '\r' stripped): memory is bounded by
// the longest line, not the file.
template <typename F>
void for_each_line(raw::LineReader& in, F&& f) {
  std::string_view line;
  while (in.next(line)) f(in.line_no(), line);
}

}  // namespace

void Split::push_row(int64_t u, int64_t i, float y, int64_t ts, uint8_t warm,
                     std::span<const int64_t> hist) {
  if (hist_offsets.empty()) hist_offsets.push_back(0);
  uid.push_back(u);
  iid.push_back(i);
  label.push_back(y);
  timestamp.push_back(ts);
  not_cold.push_back(warm);
  hist_items.insert(hist_items.end(), hist.begin(), hist.end());
  hist_offsets.push_back(static_cast<int64_t>(hist_items.size()));
}

Items read_items(const std::string& path) {
  raw::LineReader text(path);
  Items items;
  items.title.assign(1, "");
  std::vector<bool> present(1, true);
  // Ids index embedding tables: they must be dense, and a small file must not ask for gigabytes
  // (every line holds at least 4 bytes).
  const int64_t max_id = static_cast<int64_t>(std::filesystem::file_size(path)) / 2 + 1024;
  for_each_line(text, [&](int64_t ln, std::string_view line) {
    if (ln == 1) {
      if (line.substr(0, 9) != "iid\ttitle")
        throw Error::at(path, 1, "header must start with 'iid<TAB>title', got '" +
                                     std::string(line) + "'");
      return;
    }
    if (line.empty()) throw Error::at(path, ln, "empty line");
    auto f = split_tabs(line);
    if (f.size() < 2) throw Error::at(path, ln, "expected at least 2 tab-separated fields");
    int64_t id = parse_int(f[0], path, ln, "iid");
    if (id <= 0) throw Error::at(path, ln, "iid must be >= 1 (0 is padding), got " + std::to_string(id));
    if (id > max_id)
      throw Error::at(path, ln, "iid " + std::to_string(id) + " is far above what a file of this size holds: " +
                                    "ids must be dense (hint: `cora prepare` numbers items 1..n)");
    if (id >= static_cast<int64_t>(items.title.size())) {
      items.title.resize(id + 1);
      present.resize(id + 1, false);
    }
    if (present[id]) throw Error::at(path, ln, "duplicate iid " + std::to_string(id));
    present[id] = true;
    if (f[1].empty())
      throw Error::at(path, ln, "empty title (hint: `cora prepare` writes a placeholder title)");
    if (f[1].find('\r') != std::string_view::npos)  // found by fuzz_split: lost on a rewrite
      throw Error::at(path, ln, "title contains a carriage return");
    items.title[id] = std::string(f[1]);
  });
  if (items.title.size() <= 1) throw Error::at(path, 0, "no items");
  return items;
}

Split read_split(const std::string& path, const std::string& name) {
  raw::LineReader text(path);
  Split s;
  s.name = name;
  s.hist_offsets.push_back(0);
  std::vector<int64_t> hist;
  for_each_line(text, [&](int64_t ln, std::string_view line) {
    if (ln == 1) {
      if (line != kSplitHeader)
        throw Error::at(path, 1, std::string("header must be '") + kSplitHeader + "' (tabs), got '" +
                                     std::string(line) + "'");
      return;
    }
    if (line.empty()) throw Error::at(path, ln, "empty line");
    auto f = split_tabs(line);
    if (f.size() != 6)
      throw Error::at(path, ln, "expected 6 tab-separated fields, got " + std::to_string(f.size()));
    int64_t u = parse_int(f[0], path, ln, "uid");
    int64_t i = parse_int(f[1], path, ln, "iid");
    int64_t y = parse_int(f[2], path, ln, "label");
    int64_t ts = parse_int(f[3], path, ln, "timestamp");
    int64_t warm = parse_int(f[4], path, ln, "not_cold");
    if (u < 1) throw Error::at(path, ln, "uid must be >= 1 (0 is padding)");
    if (i < 1) throw Error::at(path, ln, "iid must be >= 1 (0 is padding)");
    if (y != 0 && y != 1) throw Error::at(path, ln, "label must be 0 or 1, got " + std::string(f[2]));
    if (warm != 0 && warm != 1) throw Error::at(path, ln, "not_cold must be 0 or 1");
    hist.clear();
    std::string_view h = f[5];
    while (!h.empty()) {
      size_t comma = h.find(',');
      std::string_view tok = h.substr(0, comma);
      int64_t hi = parse_int(tok, path, ln, "history item");
      if (hi < 1) throw Error::at(path, ln, "history item ids must be >= 1");
      hist.push_back(hi);
      if (comma == std::string_view::npos) break;
      h.remove_prefix(comma + 1);
      if (h.empty()) throw Error::at(path, ln, "trailing comma in history");
    }
    s.push_row(u, i, static_cast<float>(y), ts, static_cast<uint8_t>(warm), hist);
  });
  return s;
}

const Split& Dataset::split(const std::string& name) const {
  if (name == "train") return train;
  if (name == "valid") return valid;
  if (name == "valid_small") return valid_small;
  if (name == "test") return test;
  throw Error("unknown split '" + name + "' (expected train, valid, valid_small or test)");
}

Dataset load_dataset(const std::string& dir) {
  Dataset d;
  d.dir = dir;
  if (!io::exists(dir))
    throw Error::at(dir, 0, "split directory does not exist (hint: set data.dir, or run `cora prepare`)");
  d.items = read_items(dir + "/items.tsv");
  d.n_items = d.items.n_items();
  for (auto [split, name] : {std::pair{&d.train, "train"}, {&d.valid, "valid"},
                             {&d.valid_small, "valid_small"}, {&d.test, "test"}}) {
    std::string path = dir + "/" + name + ".tsv";
    *split = read_split(path, name);
    for (size_t r = 0; r < split->size(); ++r) {
      auto check = [&](int64_t id) {
        if (id >= d.n_items || d.items.title[id].empty())
          throw Error::at(path, static_cast<int64_t>(r) + 2,
                          "item " + std::to_string(id) + " is not in items.tsv");
      };
      check(split->iid[r]);
      for (int64_t h : split->history(r)) check(h);
      d.n_users = std::max(d.n_users, split->uid[r] + 1);
    }
  }
  if (d.train.size() == 0) throw Error::at(dir + "/train.tsv", 0, "no rows");
  const int64_t rows = static_cast<int64_t>(d.train.size() + d.valid.size() + d.test.size());
  if (d.n_users - 1 > 2 * rows + 1024)  // uids index an embedding table, as iids do
    throw Error::at(dir, 0, "user id " + std::to_string(d.n_users - 1) + " is far above the " +
                                std::to_string(rows) + " rows: ids must be dense (hint: `cora " +
                                "prepare` numbers users 1..n)");
  return d;
}

void write_split(const Split& s, const std::string& path) {
  std::ostringstream out;
  out << kSplitHeader << '\n';
  for (size_t r = 0; r < s.size(); ++r) {
    out << s.uid[r] << '\t' << s.iid[r] << '\t' << static_cast<int>(s.label[r]) << '\t'
        << s.timestamp[r] << '\t' << static_cast<int>(s.not_cold[r]) << '\t';
    auto h = s.history(r);
    for (size_t k = 0; k < h.size(); ++k) out << (k ? "," : "") << h[k];
    out << '\n';
  }
  io::write_file_atomic(path, out.str());
}

void write_items(const Items& items, const std::string& path) {
  std::ostringstream out;
  out << "iid\ttitle\n";
  for (int64_t i = 1; i < items.n_items(); ++i) {
    if (items.title[i].find_first_of("\t\r\n") != std::string::npos)
      throw Error::at(path, 0, "title of item " + std::to_string(i) +
                                   " contains a tab or line break (not writable as TSV)");
    if (!items.title[i].empty()) out << i << '\t' << items.title[i] << '\n';
  }
  io::write_file_atomic(path, out.str());
}

}  // namespace cora::data
