// The split format: reading the shared ML-1M split, round trips, and malformed-line errors.
#include "cora/data/split.h"

#include <gtest/gtest.h>

#include "synthetic.h"
#include "test_util.h"

namespace cora::data {
namespace {
using cora::testing::error_of;
using cora::testing::TempDir;
using cora::testing::write_text;

const std::string kHeader = "uid\tiid\tlabel\ttimestamp\tnot_cold\thistory\n";

TEST(SplitShared, ReadsTheMl1mSplit) {
  std::string dir = std::string(CORA_SHARED_DIR) + "/data/ml-1m-collm";
  if (!io::exists(dir)) GTEST_SKIP() << "no ../shared beside the repository";
  Dataset d = load_dataset(dir);
  EXPECT_EQ(d.train.size(), 33891u);
  EXPECT_EQ(d.valid.size(), 10401u);
  EXPECT_EQ(d.valid_small.size(), 5200u);
  EXPECT_EQ(d.test.size(), 7331u);
  EXPECT_EQ(d.n_items, 3256);
  EXPECT_EQ(d.n_users, 839);
  EXPECT_EQ(d.items.title[1], "Shawshank Redemption, The (1994)");
  EXPECT_EQ(d.train.history(0).size(), 0u);  // first row: empty history
  EXPECT_EQ(d.train.history(1).size(), 1u);
}

TEST(Split, RoundTrip) {
  TempDir t;
  cora::testing::write_planted_split(t.path());
  Dataset d = load_dataset(t.path());
  write_split(d.test, t.file("copy.tsv"));
  Split back = read_split(t.file("copy.tsv"), "test");
  EXPECT_EQ(back.uid, d.test.uid);
  EXPECT_EQ(back.hist_items, d.test.hist_items);
  EXPECT_EQ(back.hist_offsets, d.test.hist_offsets);
}

TEST(Split, MalformedLinesNameFileAndLine) {
  TempDir t;
  auto err = [&](const std::string& body) {
    write_text(t.file("s.tsv"), kHeader + "1\t2\t1\t100\t1\t\n" + body);
    return error_of([&] { read_split(t.file("s.tsv"), "s"); });
  };
  EXPECT_NE(err("1\t2\t1\t100\t1\n").find("s.tsv:3: expected 6 tab-separated fields, got 5"),
            std::string::npos);
  EXPECT_NE(err("1\tx\t1\t100\t1\t\n").find("s.tsv:3: bad iid 'x'"), std::string::npos);
  EXPECT_NE(err("1\t2\t3\t100\t1\t\n").find("s.tsv:3: label must be 0 or 1"), std::string::npos);
  EXPECT_NE(err("1\t2\t1\t100\t1\t4,,5\n").find("s.tsv:3: bad history item ''"), std::string::npos);
  EXPECT_NE(err("1\t2\t1\t100\t1\t4,\n").find("s.tsv:3: trailing comma"), std::string::npos);
  EXPECT_NE(err("0\t2\t1\t100\t1\t\n").find("s.tsv:3: uid must be >= 1"), std::string::npos);
  EXPECT_NE(err("\n").find("s.tsv:3: empty line"), std::string::npos);
  write_text(t.file("h.tsv"), "uid iid label\n");
  EXPECT_NE(error_of([&] { read_split(t.file("h.tsv"), "h"); }).find("h.tsv:1: header must be"),
            std::string::npos);
}

TEST(Split, UnknownItemIsAnError) {
  TempDir t;
  cora::testing::write_planted_split(t.path());
  write_text(t.file("test.tsv"), kHeader + "1\t999\t1\t5\t1\t\n");
  auto msg = error_of([&] { load_dataset(t.path()); });
  EXPECT_NE(msg.find("test.tsv:2: item 999 is not in items.tsv"), std::string::npos) << msg;
}

TEST(Split, ItemsErrors) {
  TempDir t;
  write_text(t.file("items.tsv"), "iid\ttitle\n1\tA\n1\tB\n");
  EXPECT_NE(error_of([&] { read_items(t.file("items.tsv")); }).find("items.tsv:3: duplicate iid 1"),
            std::string::npos);
  write_text(t.file("items.tsv"), "iid\ttitle\n2\t\n");
  EXPECT_NE(error_of([&] { read_items(t.file("items.tsv")); }).find("items.tsv:2: empty title"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_dataset(t.file("nope")); }).find("split directory does not exist"),
            std::string::npos);
  // Found by fuzz_split: one line asked for a 4-billion-entry title table.
  write_text(t.file("items.tsv"), "iid\ttitle\n4000000000\tA\n");
  EXPECT_NE(error_of([&] { read_items(t.file("items.tsv")); }).find("items.tsv:2: iid 4000000000 is far above"),
            std::string::npos);
}

TEST(Split, TitlesSurviveARewrite) {  // found by fuzz_split: a '\r' inside a title was lost
  TempDir t;
  write_text(t.file("items.tsv"), "iid\ttitle\n1\tA\r\tB\n");
  EXPECT_NE(error_of([&] { read_items(t.file("items.tsv")); }).find("items.tsv:2: title contains a carriage return"),
            std::string::npos);
  Items items;
  items.title = {"", "tab\there"};
  EXPECT_NE(error_of([&] { write_items(items, t.file("out.tsv")); }).find("contains a tab"),
            std::string::npos);
}

TEST(Split, SparseUserIdsAreAnError) {
  TempDir t;
  cora::testing::write_planted_split(t.path());
  write_text(t.file("test.tsv"), kHeader + "900000000\t1\t1\t5\t1\t\n");
  auto msg = error_of([&] { load_dataset(t.path()); });
  EXPECT_NE(msg.find("user id 900000000 is far above"), std::string::npos) << msg;
}

}  // namespace
}  // namespace cora::data
