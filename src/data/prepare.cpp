// `cora prepare`: the temporal protocol over what the readers collected (prepare_input.cpp),
// and the atomic output with stats.json.
#include "cora/data/prepare.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "cora/data/split.h"
#include "cora/io/files.h"
#include "data/prepare_input.h"

namespace cora::data {
using json = nlohmann::json;
using namespace prep;

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

  read_inputs(c, format, inter, meta);
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
