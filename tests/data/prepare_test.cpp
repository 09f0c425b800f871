// `cora prepare`: every input format on fixture files written here, the protocol on a
// hand-worked example, bad input, and the paper's ML-1M split rebuilt from ../shared.
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cora/config/config.h"
#include "cora/data/prepare.h"
#include "cora/data/split.h"
#include "cora/io/files.h"
#include "data/raw_input.h"
#include "test_util.h"

namespace cora::data {
namespace {
using cora::testing::error_of;
using cora::testing::TempDir;
using cora::testing::write_text;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kDay = 86400;
constexpr int64_t kJan1 = 1577836800;  // 2020-01-01 UTC

struct Rating {
  std::string user, item;
  double rating;
  int64_t ts;
};

// A protocol for the fixtures: Jan-Mar 2020, valid from Feb, test from Mar.
config::PrepareConfig fixture_protocol() {
  config::PrepareConfig p;
  p.window_start = "2020-01-01";
  p.window_end = "2020-04-01";
  p.valid_start = "2020-02-01";
  p.test_start = "2020-03-01";
  p.valid_small_fraction = 0.5;
  return p;
}

std::string run(const std::string& format, std::vector<std::string> inputs, const std::string& out,
                config::PrepareConfig p = fixture_protocol(), int64_t max_bad = 0) {
  PrepareRequest r;
  r.format = format;
  r.inputs = std::move(inputs);
  r.out = out;
  r.protocol = p;
  r.max_bad_lines = max_bad;
  r.progress = false;
  return prepare(r);
}

// The hand-worked example (input order matters for the same-second rows 1 and 2).
std::vector<Rating> hand_example() {
  return {
      {"10", "100", 5, kJan1 + 4 * kDay},   // 1
      {"10", "101", 2, kJan1 + 4 * kDay},   // 2: same second as 1, later in the file
      {"10", "102", 4, kJan1 + 9 * kDay},   // 3
      {"20", "100", 3, kJan1 + 6 * kDay},   // 4
      {"20", "103", 5, kJan1 + 31 * kDay},  // 5: exactly 2020-02-01 00:00:00 -> valid
      {"10", "103", 4, kJan1 + 45 * kDay},  // 6: valid
      {"10", "104", 1, kJan1 + 62 * kDay},  // 7: test
      {"30", "100", 5, kJan1 - 1},          // 8: 2019-12-31 23:59:59 -> outside the window
      {"20", "105", 4, kJan1 + 79 * kDay},  // 9: test, item never in train
      {"30", "102", 4, kJan1 + 64 * kDay},  // 10: test, user never in train
  };
}

std::map<std::string, std::string> hand_titles() {
  return {{"100", "Amélie, Le fabuleux \"destin\" (2001)"}, {"101", "Heat (1995)"},
          {"102", "Café Society (2016)"}, {"103", "Up (2009)"}, {"104", "Alien (1979)"},
          {"105", "Ran (1985)"}};
}

std::string latin1(const std::string& utf8) {  // test data only: é and friends
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    unsigned char c = utf8[i];
    if (c == 0xC3 && i + 1 < utf8.size()) {
      out += static_cast<char>(0xC0 | (static_cast<unsigned char>(utf8[++i]) & 0x3F));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string json_escape(const std::string& s) { return json(s).dump(); }

// Writes the ratings and titles in `format`; returns the input paths.
std::vector<std::string> write_format(const std::string& format, const std::string& dir,
                                      const std::vector<Rating>& rs,
                                      const std::map<std::string, std::string>& titles) {
  std::ostringstream a, b;
  auto num = [](double r) {
    std::ostringstream o;
    o << r;
    return o.str();
  };
  if (format == "ml-1m") {
    for (const auto& r : rs) a << r.user << "::" << r.item << "::" << r.rating << "::" << r.ts << "\n";
    for (const auto& [i, t] : titles) b << i << "::" << latin1(t) << "::Drama|Comedy\n";
    write_text(dir + "/ratings.dat", a.str());
    write_text(dir + "/movies.dat", b.str());
    return {dir + "/ratings.dat", dir + "/movies.dat"};
  }
  if (format == "ml-100k") {
    for (const auto& r : rs) a << r.user << "\t" << r.item << "\t" << r.rating << "\t" << r.ts << "\n";
    for (const auto& [i, t] : titles)
      b << i << "|" << latin1(t) << "|01-Jan-1995||http://x|0|0|0|0|0|1|0|0|1|0|0|0|0|0|0|0|0|0|0\n";
    write_text(dir + "/u.data", a.str());
    write_text(dir + "/u.item", b.str());
    return {dir};  // a directory input
  }
  if (format == "movielens-csv") {
    a << "userId,movieId,rating,timestamp\n";
    for (const auto& r : rs) a << r.user << "," << r.item << "," << num(r.rating) << "," << r.ts << "\n";
    b << "movieId,title,genres\n";
    for (const auto& [i, t] : titles) {
      std::string q;
      for (char c : t) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      b << i << ",\"" << q << "\",Drama|Comedy\n";
    }
    write_text(dir + "/ratings.csv", a.str());
    write_text(dir + "/movies.csv", b.str());
    write_text(dir + "/tags.csv", "userId,movieId,tag,timestamp\n");  // present, not used
    return {dir};
  }
  if (format == "amazon2018" || format == "amazon2014") {
    for (const auto& r : rs)
      a << "{\"reviewerID\": " << json_escape(r.user) << ", \"asin\": " << json_escape(r.item)
        << ", \"overall\": " << num(r.rating) << ", \"reviewText\": \"a \\\"quoted\\\" {text}\", "
        << "\"style\": {\"Format:\": \" Paperback\"}, \"unixReviewTime\": " << r.ts << "}\n";
    if (format == "amazon2018") {
      for (const auto& [i, t] : titles)
        b << "{\"asin\": " << json_escape(i) << ", \"title\": " << json_escape(t)
          << ", \"category\": [\"Books\"], \"price\": \"$1.00\"}\n";
      write_text(dir + "/Books_5.json", a.str());
      write_text(dir + "/meta_Books.json", b.str());
      return {dir + "/Books_5.json", dir + "/meta_Books.json"};
    }
    for (const auto& [i, t] : titles) {  // Python 2 repr: byte strings with \x escapes
      std::string lit;
      for (unsigned char c : t) {
        char hex[8];
        if (c >= 0x80) {
          std::snprintf(hex, sizeof hex, "\\x%02x", c);
          lit += hex;
        } else {
          lit += static_cast<char>(c);
        }
      }
      b << "{'asin': '" << i << "', 'categories': [['Books', 'Literature & Fiction']], "
        << "'price': None, 'title': '" << lit << "', 'salesRank': {'Books': 12}}\n";
    }
    write_text(dir + "/reviews_Books_5.json", a.str());
    write_text(dir + "/meta_Books.json", b.str());
    return {dir + "/reviews_Books_5.json", dir + "/meta_Books.json"};
  }
  if (format == "amazon2023") {
    for (const auto& r : rs)
      a << "{\"rating\": " << num(r.rating) << ", \"title\": \"x\", \"user_id\": " << json_escape(r.user)
        << ", \"asin\": \"B0\", \"parent_asin\": " << json_escape(r.item)
        << ", \"timestamp\": " << r.ts * 1000 + 999 << ", \"images\": []}\n";
    for (const auto& [i, t] : titles)
      b << "{\"main_category\": \"Books\", \"title\": " << json_escape(t)
        << ", \"parent_asin\": " << json_escape(i) << ", \"details\": {\"a\": [1, 2.5e3]}}\n";
    write_text(dir + "/Books.jsonl", a.str());
    write_text(dir + "/meta_Books.jsonl", b.str());
    return {dir + "/Books.jsonl", dir + "/meta_Books.jsonl"};
  }
  // recbole
  a << "user_id:token\titem_id:token\trating:float\ttimestamp:float\n";
  for (const auto& r : rs) a << r.user << "\t" << r.item << "\t" << num(r.rating) << "\t" << r.ts << ".0\n";
  b << "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\n";
  for (const auto& [i, t] : titles) b << i << "\t" << t << "\t2001\tDrama Comedy\n";
  write_text(dir + "/ml.inter", a.str());
  write_text(dir + "/ml.item", b.str());
  return {dir + "/ml.inter", dir + "/ml.item"};
}

std::string slurp(const std::string& p) { return io::read_file(p); }

// items.tsv reduced to "iid title" lines.
std::string titles_of(const std::string& dir) {
  std::istringstream in(slurp(dir + "/items.tsv"));
  std::string line, out;
  while (std::getline(in, line)) {
    size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    out += line.substr(0, t2) + "\n";
  }
  return out;
}

TEST(Prepare, HandWorkedProtocol) {
  TempDir t;
  auto in = write_format("ml-1m", t.file("raw"), hand_example(), hand_titles());
  json stats = json::parse(run("ml-1m", in, t.file("out")));
  Dataset d = load_dataset(t.file("out"));
  auto rows = [](const Split& s) {
    std::vector<std::string> out;
    for (size_t r = 0; r < s.size(); ++r) {
      std::string h;
      for (int64_t x : s.history(r)) h += (h.empty() ? "" : ",") + std::to_string(x);
      out.push_back(std::to_string(s.uid[r]) + " " + std::to_string(s.iid[r]) + " " +
                    std::to_string(static_cast<int>(s.label[r])) + " " +
                    std::to_string((s.timestamp[r] - kJan1) / kDay) + " " +
                    std::to_string(s.not_cold[r]) + " [" + h + "]");
    }
    return out;
  };
  // Ids by first appearance in time order: users 10,20,30 -> 1,2,3; items 100,101,102,103,104,105
  // -> 1,2,3,4,5,6. Rows per split grouped by user, time order within a user.
  EXPECT_EQ(rows(d.train), (std::vector<std::string>{"1 1 1 4 1 []", "1 2 0 4 1 [1]", "1 3 1 9 1 [1]",
                                                     "2 1 0 6 1 []"}));
  EXPECT_EQ(rows(d.valid), (std::vector<std::string>{"1 4 1 45 0 [1,3]", "2 4 1 31 0 []"}));
  EXPECT_EQ(rows(d.test), (std::vector<std::string>{"1 5 0 62 0 [1,3,4]", "2 6 1 79 0 [4]",
                                                    "3 3 1 64 0 []"}));
  EXPECT_EQ(d.valid_small.size(), 1u);
  EXPECT_EQ(d.items.title[1], "Amélie, Le fabuleux \"destin\" (2001)");  // Latin-1 decoded
  EXPECT_EQ(d.items.title[3], "Café Society (2016)");
  EXPECT_EQ(stats["dropped"]["outside_window"], 1);
  EXPECT_EQ(stats["users"], 3);
  EXPECT_EQ(stats["items"], 6);
  EXPECT_EQ(stats["splits"]["train"]["rows"], 4);
  EXPECT_EQ(stats["splits"]["train"]["users"], 2);
  EXPECT_DOUBLE_EQ(stats["splits"]["train"]["positive_rate"].get<double>(), 0.5);
  EXPECT_EQ(stats["splits"]["test"]["warm_rows"], 0);
  EXPECT_EQ(stats["splits"]["test"]["cold_rows"], 3);
  EXPECT_EQ(stats["bad_lines"], 0);
  ASSERT_EQ(stats["inputs"].size(), 2u);
  EXPECT_EQ(stats["inputs"][0]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(stats, json::parse(slurp(t.file("out/stats.json"))));
  EXPECT_NE(slurp(t.file("out/items.tsv")).find("iid\ttitle\tgenres\n1\tAmélie"), std::string::npos);

  // Label threshold: rating 4 is no longer positive at 5.
  auto p = fixture_protocol();
  p.positive_rating = 5;
  run("ml-1m", in, t.file("out5"), p);
  Dataset d5 = load_dataset(t.file("out5"));
  EXPECT_EQ(rows(d5.train), (std::vector<std::string>{"1 1 1 4 1 []", "1 2 0 4 1 [1]", "1 3 0 9 1 [1]",
                                                      "2 1 0 6 1 []"}));
  EXPECT_EQ(rows(d5.test)[0], "1 5 0 62 0 [1]");
  // History capped to the most recent positives.
  p = fixture_protocol();
  p.max_history = 1;
  run("ml-1m", in, t.file("outh"), p);
  EXPECT_EQ(rows(load_dataset(t.file("outh")).test)[0], "1 5 0 62 0 [4]");
}

TEST(Prepare, CountFiltersOnceOrUntilStable) {
  TempDir t;
  auto in = write_format("ml-1m", t.file("raw"), hand_example(), hand_titles());
  auto p = fixture_protocol();
  p.split = "ratios";  // keeps every split non-empty on 4 rows
  p.train_ratio = 0.5;
  p.valid_ratio = 0.25;
  p.min_user_rows = 3;
  p.min_item_rows = 2;
  // Once: user 30 (1 row in the window) goes, then items with < 2 rows: rows 1, 4, 5, 6 remain.
  json once = json::parse(run("ml-1m", in, t.file("once"), p));
  EXPECT_EQ(once["rows"], 4);
  EXPECT_EQ(once["dropped"]["user_min_rows"], 1);
  EXPECT_EQ(once["dropped"]["item_min_rows"], 4);
  // Until stable: user 20 now has 2 rows < 3, then items 100 and 103 fall below 2: nothing left.
  p.filter_until_stable = true;
  std::string err = error_of([&] { run("ml-1m", in, t.file("stable"), p); });
  EXPECT_NE(err.find("no rows left"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(t.file("stable")));
}

TEST(Prepare, EveryFormatGivesTheSameSplit) {
  TempDir t;
  // A larger fixture: 12 users x 10 ratings over Jan-Mar 2020, with same-second ties.
  std::vector<Rating> rs;
  std::map<std::string, std::string> titles = hand_titles();
  for (int i = 0; i < 15; ++i) titles.emplace(std::to_string(200 + i), "Film " + std::to_string(i) + " (19" + std::to_string(70 + i) + ")");
  std::vector<std::string> items;
  for (const auto& [i, title] : titles) items.push_back(i);
  for (int u = 0; u < 12; ++u)
    for (int k = 0; k < 10; ++k) {
      int64_t ts = kJan1 + ((u * 7 + k * 11) % 90) * kDay + (k % 3 == 0 ? 0 : k * 37);
      rs.push_back({std::to_string(1000 + u), items[(u * 3 + k * 5) % items.size()],
                    static_cast<double>(1 + (u + k) % 5), ts});
    }
  std::string ref;
  std::string ref_titles;
  for (const char* f : {"ml-1m", "ml-100k", "movielens-csv", "amazon2014", "amazon2018",
                        "amazon2023", "recbole"}) {
    SCOPED_TRACE(f);
    auto in = write_format(f, t.file(std::string("raw-") + f), rs, titles);
    EXPECT_EQ(detect_format(in), f);
    std::string out = t.file(std::string("out-") + f);
    json stats = json::parse(run("", in, out));  // format detected
    EXPECT_EQ(stats["format"], f);
    EXPECT_EQ(stats["untitled_items"], 0);
    std::string all;
    for (const char* s : {"train", "valid", "valid_small", "test"}) all += slurp(out + "/" + s + ".tsv");
    if (ref.empty()) {
      ref = all;
      ref_titles = titles_of(out);
      EXPECT_GT(stats["splits"]["valid"]["rows"].get<int>(), 10);
      EXPECT_GT(stats["splits"]["test"]["rows"].get<int>(), 10);
    } else {
      EXPECT_EQ(all, ref);
      EXPECT_EQ(titles_of(out), ref_titles);
    }
  }
  // Gzip inputs give the same split.
  std::string raw = slurp(t.file("raw-amazon2018/Books_5.json"));
  gzFile g = gzopen(t.file("gz/Books_5.json.gz").c_str(), "wb");
  if (!g) {
    fs::create_directories(t.file("gz"));
    g = gzopen(t.file("gz/Books_5.json.gz").c_str(), "wb");
  }
  gzwrite(g, raw.data(), static_cast<unsigned>(raw.size()));
  gzclose(g);
  fs::copy_file(t.file("raw-amazon2018/meta_Books.json"), t.file("gz/meta_Books.json"));
  json stats = json::parse(run("amazon2018", {t.file("gz")}, t.file("out-gz")));
  EXPECT_TRUE(stats["inputs"][0]["gzip"].get<bool>());
  EXPECT_EQ(stats["inputs"][0]["uncompressed_bytes"].get<uint64_t>(), raw.size());
  std::string all;
  for (const char* s : {"train", "valid", "valid_small", "test"}) all += slurp(t.file("out-gz/") + s + ".tsv");
  EXPECT_EQ(all, ref);
}

TEST(Prepare, ValidSmallIsASeededSample) {
  TempDir t;
  std::vector<Rating> rs;
  for (int u = 0; u < 40; ++u)
    for (int k = 0; k < 9; ++k)
      rs.push_back({std::to_string(u), std::to_string(k * 3 + u % 3), double(1 + (u * k) % 5),
                    kJan1 + (k * 10 + u % 10) * kDay + u});
  auto in = write_format("ml-1m", t.file("raw"), rs, hand_titles());
  auto p = fixture_protocol();
  run("ml-1m", in, t.file("a"), p);
  run("ml-1m", in, t.file("b"), p);
  p.valid_small_seed = 7;
  run("ml-1m", in, t.file("c"), p);
  EXPECT_EQ(slurp(t.file("a/valid_small.tsv")), slurp(t.file("b/valid_small.tsv")));
  EXPECT_NE(slurp(t.file("a/valid_small.tsv")), slurp(t.file("c/valid_small.tsv")));
  Dataset d = load_dataset(t.file("a"));
  EXPECT_EQ(d.valid_small.size(), d.valid.size() / 2);
  // Every valid_small row is a valid row, in valid's order.
  size_t at = 0;
  for (size_t r = 0; r < d.valid_small.size(); ++r) {
    while (at < d.valid.size() && !(d.valid.uid[at] == d.valid_small.uid[r] &&
                                    d.valid.iid[at] == d.valid_small.iid[r] &&
                                    d.valid.timestamp[at] == d.valid_small.timestamp[r]))
      ++at;
    ASSERT_LT(at, d.valid.size()) << "valid_small row " << r << " is not in valid (in order)";
  }
  // Items without metadata are kept with a marked placeholder and counted.
  json stats = json::parse(slurp(t.file("a/stats.json")));
  EXPECT_GT(stats["untitled_items"].get<int>(), 0);
  EXPECT_NE(slurp(t.file("a/items.tsv")).find("[untitled item "), std::string::npos);
}

TEST(Prepare, HalvesAndRatiosSplits) {
  TempDir t;
  std::vector<Rating> rs;
  for (int k = 0; k < 40; ++k)  // one row a day from Nov 2019 (outside) into Jan 2020
    rs.push_back({std::to_string(k % 4), std::to_string(k % 7), 5, kJan1 - 20 * kDay + k * kDay});
  auto in = write_format("ml-1m", t.file("raw"), rs, hand_titles());
  auto p = fixture_protocol();
  p.window_start = "2019-12-15";
  p.window_end = "";
  p.split = "halves";
  p.valid_start = "2020-01-10";  // Dec 15 .. Jan 9 train (26 rows), then 11 rows halved by time
  json s = json::parse(run("ml-1m", in, t.file("h"), p));
  EXPECT_EQ(s["dropped"]["outside_window"], 3);
  EXPECT_EQ(s["splits"]["train"]["rows"], 26);
  EXPECT_EQ(s["splits"]["valid"]["rows"], 5);
  EXPECT_EQ(s["splits"]["test"]["rows"], 6);
  EXPECT_LT(s["splits"]["valid"]["last"].get<std::string>(), s["splits"]["test"]["first"].get<std::string>());
  p.split = "ratios";
  p.train_ratio = 0.5;
  p.valid_ratio = 0.25;
  s = json::parse(run("ml-1m", in, t.file("r"), p));
  EXPECT_EQ(s["splits"]["train"]["rows"], 18);
  EXPECT_EQ(s["splits"]["valid"]["rows"], 9);
  EXPECT_EQ(s["splits"]["test"]["rows"], 10);
  // Per user: 37 rows over 4 users (10, 9, 9, 9 rows) -> train 5+4+4+4, valid 2+2+2+2.
  p.split = "user_ratios";
  s = json::parse(run("ml-1m", in, t.file("u"), p));
  EXPECT_EQ(s["splits"]["train"]["rows"], 17);
  EXPECT_EQ(s["splits"]["valid"]["rows"], 8);
  EXPECT_EQ(s["splits"]["test"]["rows"], 12);
  EXPECT_EQ(s["splits"]["test"]["users"], 4);
  EXPECT_EQ(s["splits"]["test"]["warm_rows"].get<int>() + s["splits"]["test"]["cold_rows"].get<int>(), 12);
}

TEST(Prepare, BadInputIsReportedWithFileAndLine) {
  TempDir t;
  auto in = write_format("amazon2018", t.file("raw"), hand_example(), hand_titles());
  std::string reviews = slurp(in[0]);
  // An existing output must survive a failed run.
  write_text(t.file("out/keep.txt"), "old");
  auto with_line = [&](const std::string& extra) {
    write_text(t.file("bad/Books.json"), reviews + extra);
    fs::copy_file(in[1], t.file("bad/meta_Books.json"), fs::copy_options::overwrite_existing);
    return error_of([&] { run("amazon2018", {t.file("bad")}, t.file("out")); });
  };
  std::string e = with_line("{\"reviewerID\": \"9\", \"asin\": \"100\", \"overall\": 5.0,\n");
  EXPECT_NE(e.find("Books.json:11: invalid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("nothing was written"), std::string::npos) << e;
  e = with_line("{\"reviewerID\": \"9\", \"asin\": \"100\", \"unixReviewTime\": 1577900000}\n");
  EXPECT_NE(e.find("Books.json:11: missing field 'overall'"), std::string::npos) << e;
  e = with_line("{\"reviewerID\": \"9\", \"asin\": \"100\", \"overall\": \"five\", \"unixReviewTime\": 1}\n");
  EXPECT_NE(e.find("'overall' is not a number"), std::string::npos) << e;
  // Found by fuzz_prepare_*: a time beyond int64 was converted (undefined behaviour).
  e = with_line("{\"reviewerID\": \"9\", \"asin\": \"100\", \"overall\": 5, \"unixReviewTime\": 9e76}\n");
  EXPECT_NE(e.find("Books.json:11: field 'unixReviewTime' is not a time in seconds"), std::string::npos) << e;
  e = with_line("{\"reviewerID\": 'x', \"asin\": \"100\"}\n");
  EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;
  EXPECT_EQ(slurp(t.file("out/keep.txt")), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(t.path()), fs::directory_iterator()), 3);  // no temp dirs left

  // Tolerated with --max-bad-lines: counted, first ones kept as examples.
  write_text(t.file("bad/Books.json"), reviews + "not json\n{}\n");
  json s = json::parse(run("amazon2018", {t.file("bad")}, t.file("out"), fixture_protocol(), 2));
  EXPECT_EQ(s["bad_lines"], 2);
  EXPECT_EQ(s["rows"], 9);
  EXPECT_NE(s["bad_line_examples"][0].get<std::string>().find("Books.json:11"), std::string::npos);
  EXPECT_NE(s["bad_line_examples"][1].get<std::string>().find("Books.json:12: missing field 'reviewerID'"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(t.file("out/keep.txt")));  // replaced as a whole

  // Empty interaction file; empty metadata file (every item untitled, counted).
  write_text(t.file("empty/Books.json"), "");
  e = error_of([&] { run("amazon2018", {t.file("empty/Books.json")}, t.file("o2")); });
  EXPECT_NE(e.find("Books.json: no interactions"), std::string::npos) << e;
  write_text(t.file("em/meta_Books.json"), "");
  s = json::parse(run("amazon2018", {in[0], t.file("em/meta_Books.json")}, t.file("o3")));
  EXPECT_EQ(s["untitled_items"], 6);

  // Truncated gzip: a clear error naming the file, nothing written.
  std::string gz_path = t.file("gz/Books.json.gz");
  fs::create_directories(t.file("gz"));
  gzFile g = gzopen(gz_path.c_str(), "wb");
  std::string big;
  for (int k = 0; k < 200; ++k) big += reviews;
  gzwrite(g, big.data(), static_cast<unsigned>(big.size()));
  gzclose(g);
  fs::resize_file(gz_path, fs::file_size(gz_path) - 12);
  e = error_of([&] { run("amazon2018", {gz_path}, t.file("o4")); });
  EXPECT_NE(e.find("Books.json.gz"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated gzip"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(t.file("o4")));

  // Unknown content without --format.
  write_text(t.file("x/data.json"), "{\"a\": 1}\n");
  e = error_of([&] { detect_format({t.file("x")}); });
  EXPECT_NE(e.find("pass --format"), std::string::npos) << e;
}

TEST(Prepare, MovieLensEdgeCases) {
  TempDir t;
  write_text(t.file("a/ratings.dat"), "1::10::5::1577900000\n1::11::4\n");
  write_text(t.file("a/movies.dat"), "10::Caf\xe9 (1990)::Drama\n");
  std::string e = error_of([&] { run("ml-1m", {t.file("a")}, t.file("o")); });
  EXPECT_NE(e.find("ratings.dat:2: expected 4 fields"), std::string::npos) << e;
  write_text(t.file("c/ratings.csv"), "userId,movieId,rating,timestamp\n1,10,4.5,1577900000\n");
  write_text(t.file("c/movies.csv"), "movieId,title,genres\n10,\"Bad \"quote\" (1990)\",Drama\n");
  e = error_of([&] { run("movielens-csv", {t.file("c")}, t.file("o")); });
  EXPECT_NE(e.find("movies.csv:2: unbalanced quote"), std::string::npos) << e;
  write_text(t.file("d/ratings.csv"), "user,movie,rating,timestamp\n1,10,4.5,1577900000\n");
  e = error_of([&] { run("movielens-csv", {t.file("d/ratings.csv")}, t.file("o")); });
  EXPECT_NE(e.find("ratings.csv:1: header must name userId"), std::string::npos) << e;
}

TEST(Prepare, ProtocolConfigErrorsNameTheKey) {
  TempDir t;
  auto in = write_format("ml-1m", t.file("raw"), hand_example(), hand_titles());
  auto p = fixture_protocol();
  p.window_start = "2020-13-01";
  EXPECT_NE(error_of([&] { run("ml-1m", in, t.file("o"), p); }).find("prepare.window_start"),
            std::string::npos);
  p = fixture_protocol();
  p.test_start = "2020-01-15";
  EXPECT_NE(error_of([&] { run("ml-1m", in, t.file("o"), p); }).find("prepare.test_start"),
            std::string::npos);
  p = fixture_protocol();
  p.test_start = "2020-03-31";  // no test rows
  std::string e = error_of([&] { run("ml-1m", in, t.file("o"), p); });
  EXPECT_NE(e.find("test split empty"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(t.file("o")));
  // A data config holds prepare.* keys only.
  write_text(t.file("c.json"), R"({"prepare": {"positive_rating": 5}, "train": {"lr": 1}})");
  e = error_of([&] { config::load_prepare(t.file("c.json")); });
  EXPECT_NE(e.find("'train.lr'"), std::string::npos) << e;
  EXPECT_EQ(config::load_prepare("", {"prepare.split=halves"}).prepare.split, "halves");
}

TEST(Prepare, WithoutAConfigTheWholeTimeRangeIsKept) {
  // 1997-98 ratings (a RecBole ML-100K file): the paper's ML-1M dates would keep no row.
  TempDir t;
  std::vector<Rating> rs;
  const int64_t k1997 = 852076800;  // 1997-01-01 UTC
  for (int k = 0; k < 40; ++k)
    rs.push_back({std::to_string(k % 4), std::to_string(k % 7), 4.0 + k % 2, k1997 + k * 7 * kDay});
  auto in = write_format("ml-1m", t.file("raw"), rs, hand_titles());
  auto c = config::load_prepare("");
  EXPECT_EQ(c.prepare.window_start, "");
  EXPECT_EQ(c.prepare.window_end, "");
  json s = json::parse(run("ml-1m", in, t.file("o"), c.prepare));
  EXPECT_EQ(s["dropped"]["outside_window"], 0);
  EXPECT_EQ(s["splits"]["train"]["rows"].get<int>() + s["splits"]["valid"]["rows"].get<int>() +
                s["splits"]["test"]["rows"].get<int>(), 40);
  EXPECT_GT(s["splits"]["test"]["rows"].get<int>(), 0);
}

TEST(RawInput, ObjectLiteralScanner) {
  using raw::Dialect;
  using raw::Value;
  const std::string_view keys[3] = {"asin", "title", "price"};
  Value v[3];
  EXPECT_EQ(raw::scan_object(R"({'asin': '01', 'title': 'It\'s "ok" \\ caf\xc3\xa9', 'price': None, 'c': [['A', "B's"], ()], 'n': -1.5e3})",
                             Dialect::python, keys, v), "");
  EXPECT_EQ(v[0].text, "01");
  EXPECT_EQ(v[1].text, "It's \"ok\" \\ café");
  EXPECT_EQ(v[2].kind, Value::null);
  EXPECT_EQ(raw::scan_object(R"({'asin': u'02', 'title': u'caf\xe9'})", Dialect::python, keys, v), "");
  EXPECT_EQ(v[1].text, "café");  // unicode literal: \xe9 is a code point
  EXPECT_EQ(raw::scan_object(R"({'asin': '03', 'title': 'caf\xe9'})", Dialect::python, keys, v), "");
  EXPECT_EQ(v[1].text, "café");  // byte string that is not UTF-8: read as Latin-1
  EXPECT_EQ(raw::scan_object(R"({"asin": "04", "title": "\u00e9\ud83d\ude00 \"q\"", "x": {"y": [1, true, null]}})",
                             Dialect::json, keys, v), "");
  EXPECT_EQ(v[1].text, "é\xF0\x9F\x98\x80 \"q\"");
  EXPECT_EQ(v[2].kind, Value::absent);
  EXPECT_NE(raw::scan_object(R"({"asin": "04", "title": None})", Dialect::json, keys, v), "");
  EXPECT_NE(raw::scan_object(R"({"asin": "04",})", Dialect::json, keys, v), "");
  EXPECT_NE(raw::scan_object(R"({"asin": "04"} x)", Dialect::json, keys, v), "");
  EXPECT_NE(raw::scan_object(R"({"asin": "0\4"})", Dialect::json, keys, v), "");
  EXPECT_NE(raw::scan_object(R"({"asin": "04", "p": [1, 2})", Dialect::json, keys, v), "");
  EXPECT_NE(raw::scan_object(R"({'asin': '04)", Dialect::python, keys, v), "");
  int64_t s = 0;
  ASSERT_TRUE(raw::parse_utc("2002-04-01", s));
  EXPECT_EQ(s, 1017619200);
  EXPECT_EQ(raw::format_utc(s), "2002-04-01 00:00:00");
  EXPECT_FALSE(raw::parse_utc("2002-02-29", s));
  EXPECT_FALSE(raw::parse_utc("2002-4-1", s));
}

// The paper's ML-1M split, written back as raw ML-1M ratings (label 1 -> 5 stars, 0 -> 2) in
// the split files' order, prepares into the same rows: windows, month boundaries, labels,
// histories (earlier positives across splits, same-second ties in file order) and not_cold.
TEST(PrepareShared, RebuildsThePapersMl1mSplit) {
  const std::string shared = std::string(CORA_SHARED_DIR) + "/data/ml-1m-collm";
  if (!fs::exists(shared + "/train.tsv")) GTEST_SKIP() << "no " << shared;
  TempDir t;
  std::ostringstream ratings, movies;
  std::vector<Split> ref;
  for (const char* s : {"train", "valid", "test"}) {
    ref.push_back(read_split(shared + "/" + s + ".tsv", s));
    const Split& sp = ref.back();
    for (size_t r = 0; r < sp.size(); ++r)
      ratings << sp.uid[r] << "::" << sp.iid[r] << "::" << (sp.label[r] > 0.5f ? 5 : 2) << "::"
              << sp.timestamp[r] << "\n";
  }
  Items items = read_items(shared + "/items.tsv");
  for (int64_t i = 1; i < items.n_items(); ++i) movies << i << "::" << items.title[i] << "::Drama\n";
  write_text(t.file("raw/ratings.dat"), ratings.str());
  write_text(t.file("raw/movies.dat"), movies.str());
  json stats = json::parse(run("ml-1m", {t.file("raw")}, t.file("out"), config::PrepareConfig{}));
  EXPECT_EQ(stats["splits"]["train"]["rows"], 33891);
  EXPECT_EQ(stats["splits"]["valid"]["rows"], 10401);
  EXPECT_EQ(stats["splits"]["valid_small"]["rows"], 5200);
  EXPECT_EQ(stats["splits"]["test"]["rows"], 7331);
  EXPECT_EQ(stats["users"], 838);
  // Map the reference ids the way prepare assigns them: first appearance in time order.
  std::vector<std::tuple<int64_t, int, size_t>> order;
  for (int k = 0; k < 3; ++k)
    for (size_t r = 0; r < ref[k].size(); ++r) order.emplace_back(ref[k].timestamp[r], k, r);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  std::map<int64_t, int64_t> um, im;
  for (auto& [ts, k, r] : order) {
    um.emplace(ref[k].uid[r], um.size() + 1);
    im.emplace(ref[k].iid[r], im.size() + 1);
  }
  Dataset got = load_dataset(t.file("out"));
  const Split* mine[3] = {&got.train, &got.valid, &got.test};
  for (int k = 0; k < 3; ++k) {
    auto key = [](int64_t u, int64_t i, float y, int64_t ts, int nc, std::vector<int64_t> h) {
      std::string s = std::to_string(u) + " " + std::to_string(i) + " " + std::to_string(int(y)) +
                      " " + std::to_string(ts) + " " + std::to_string(nc) + " ";
      for (auto x : h) s += std::to_string(x) + ",";
      return s;
    };
    std::vector<std::string> a, b;
    for (size_t r = 0; r < ref[k].size(); ++r) {
      std::vector<int64_t> h;
      for (auto x : ref[k].history(r)) h.push_back(im.at(x));
      a.push_back(key(um.at(ref[k].uid[r]), im.at(ref[k].iid[r]), ref[k].label[r], ref[k].timestamp[r],
                      ref[k].not_cold[r], h));
    }
    for (size_t r = 0; r < mine[k]->size(); ++r) {
      auto hs = mine[k]->history(r);
      b.push_back(key(mine[k]->uid[r], mine[k]->iid[r], mine[k]->label[r], mine[k]->timestamp[r],
                      mine[k]->not_cold[r], {hs.begin(), hs.end()}));
    }
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b) << ref[k].name;
  }
}

}  // namespace
}  // namespace cora::data
