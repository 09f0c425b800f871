// The `cora` binary's contract: exit codes (0 ok, 1 failure, 2 usage) and `error: ...` messages.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cora/io/files.h"
#include "synthetic.h"
#include "test_util.h"

namespace {
using cora::testing::TempDir;
using cora::testing::write_text;

struct Result {
  int code;
  std::string out;
};

Result run(const std::string& args) {
  const char* bin = std::getenv("CORA_BIN");
  std::string cmd = std::string(bin ? bin : "./cora") + " " + args + " 2>&1";
  Result r{-1, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(Cli, ExitCodesAndErrorMessages) {
  TempDir t;
  cora::testing::write_planted_split(t.file("data"));
  write_text(t.file("bad.json"), R"({"method": "mf", "data": {"dir": ")" + t.file("data") +
                                     R"("}, "train": {"epochz": 3}})");
  auto r = run("train --config " + t.file("bad.json") + " --out " + t.file("run"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("error: config key 'train.epochz': unknown key in"), std::string::npos) << r.out;

  r = run("train --out " + t.file("run"));  // missing --config
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("error:"), std::string::npos) << r.out;

  r = run("frobnicate");
  EXPECT_EQ(r.code, 2) << r.out;

  write_text(t.file("ok.json"), R"({"method": "mf", "data": {"dir": ")" + t.file("data") +
                                    R"("}, "cf": {"dim": 8}, "train": {"epochs": 2}, "log_level": "warn"})");
  r = run("train --config " + t.file("ok.json") + " --out " + t.file("run") + " --set train.lr=0.01");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"selection_metric\": \"auc\""), std::string::npos) << r.out;
  r = run("eval --run " + t.file("run") + " --split valid_small");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"split\": \"valid_small\""), std::string::npos) << r.out;

  // cora probe: exactly one of --run, --llm and --table; a CF run is refused by name.
  r = run("probe");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("give exactly one of --run and --llm"), std::string::npos) << r.out;
  r = run("probe --table " + t.path() + " --run " + t.file("run"));
  EXPECT_EQ(r.code, 2) << r.out;
  r = run("probe --run " + t.file("run"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a 'mf' run: cora probe measures an LLM method's run"), std::string::npos) << r.out;
}

}  // namespace

TEST(Cli, GenerateReproducesStories260K) {
  std::string dir = std::string(CORA_SOURCE_DIR) + "/tests/fixtures/stories260K-hf";
  auto r = run("generate --model " + dir + " --ids 1 --max-new-tokens 64");
  ASSERT_EQ(r.code, 0) << r.out;
  auto expected = cora::io::read_file(dir + "/greedy_from_bos_64.txt");
  while (!expected.empty() && (expected.back() == '\n' || expected.back() == ' ')) expected.pop_back();
  EXPECT_EQ(r.out, expected + "\n");
  r = run("generate --model " + dir + " --ids 1,x --max-new-tokens 2");
  EXPECT_EQ(r.code, 2) << r.out;
  r = run("generate --model " + dir + " --prompt hi --max-new-tokens 2");  // no tokenizer there
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("holds neither tokenizer.model (sentencepiece) nor tokenizer.json"), std::string::npos)
      << r.out;
}

TEST(Cli, PrepareExitCodes) {
  TempDir t;
  write_text(t.file("raw/ratings.dat"), "1::10::5::1017700000\n1::11::4::1031000000\n"
                                         "2::10::4::1000000000\n2::11::1::1019000000\n"
                                         "2::12::x::1032000000\n");
  write_text(t.file("raw/movies.dat"), "10::A (1990)::Drama\n11::B (1991)::Comedy\n12::C::War\n");
  auto r = run("prepare --input " + t.file("raw") + " --out " + t.file("out"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("error: " + t.file("raw/ratings.dat") + ":5: rating 'x' is not a number"),
            std::string::npos) << r.out;
  EXPECT_FALSE(cora::io::exists(t.file("out")));
  // These dates need the paper's ML-1M protocol (without --config: user_ratios of few rows).
  const std::string ml1m = " --config " + std::string(CORA_SOURCE_DIR) + "/configs/data/ml1m.json";
  r = run("prepare --input " + t.file("raw") + " --out " + t.file("out") + " --max-bad-lines 1" + ml1m);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"bad_lines\": 1"), std::string::npos) << r.out;
  EXPECT_TRUE(cora::io::exists(t.file("out/stats.json")));
  r = run("prepare --input " + t.file("raw") + " --out " + t.file("o2") + " --set train.lr=1");
  EXPECT_EQ(r.code, 1) << r.out;  // not a data-protocol key (a config error, like unknown keys)
  EXPECT_NE(r.out.find("'train.lr'"), std::string::npos) << r.out;
  r = run("prepare --format parquet --input " + t.file("raw") + " --out " + t.file("o2"));
  EXPECT_EQ(r.code, 2) << r.out;
}
