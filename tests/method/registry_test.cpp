// The method registry: names, kinds, the keys each method reads, and every shipped config
// passing its method's key check.
#include "cora/method/registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cora/io/files.h"
#include "test_util.h"

namespace cora::method {
namespace {
using cora::testing::error_of;

config::Config parse(const std::string& text) { return config::parse(text, "test.json"); }

TEST(Registry, EveryMethodOnceWithItsKind) {
  auto names = method_names();
  EXPECT_EQ(names, (std::vector<std::string>{"mf", "lightgcn", "sasrec", "icl", "tallrec", "collm",
                                             "cora", "pretrain"}));
  EXPECT_EQ(find_method("sasrec").kind, Kind::cf);
  EXPECT_NE(find_method("sasrec").cf_factory, nullptr);
  EXPECT_EQ(find_method("cora").kind, Kind::llm);
  EXPECT_NE(find_method("cora").llm_factory, nullptr);
  EXPECT_EQ(find_method("cora").requires_inputs, (std::vector<std::string>{"llm.dir", "cf.run"}));
  EXPECT_EQ(find_method("pretrain").kind, Kind::pretrain);
  auto msg = error_of([] { find_method("bert4rec"); });
  EXPECT_NE(msg.find("'method'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mf, lightgcn, sasrec, icl, tallrec, collm, cora, pretrain"), std::string::npos) << msg;
}

TEST(Registry, KeysAMethodDoesNotReadAreRefusedByName) {
  auto c = parse(R"({"method": "mf", "data": {"dir": "d"}, "cora": {"rank": 4}})");
  auto msg = error_of([&] { check_keys(c); });
  EXPECT_NE(msg.find("'cora.rank'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'mf'"), std::string::npos) << msg;
  c = parse(R"({"method": "tallrec", "data": {"dir": "d"}, "cf": {"run": "x"}})");
  EXPECT_NE(error_of([&] { check_keys(c); }).find("'cf.run'"), std::string::npos);
  c = config::parse(R"({"method": "mf", "data": {"dir": "d"}})", "t", {"cf.max_len=5"});
  EXPECT_NE(error_of([&] { check_keys(c); }).find("'cf.max_len'"), std::string::npos);
  // Keys the method reads pass; train.* keys it does not read only warn (shared train blocks).
  c = parse(R"({"method": "sasrec", "data": {"dir": "d"}, "cf": {"max_len": 5, "dropout": 0.1}})");
  EXPECT_EQ(error_of([&] { check_keys(c); }), "");
  c = parse(R"({"method": "icl", "data": {"dir": "d"}, "llm": {"dir": "m"}, "train": {"lr": 0.1}})");
  EXPECT_EQ(error_of([&] { check_keys(c); }), "");
  EXPECT_TRUE(reads_key(find_method("cora"), "cora.rank"));
  EXPECT_FALSE(reads_key(find_method("cora"), "lora.rank"));
  EXPECT_TRUE(reads_key(find_method("mf"), "train.micro_batch_size"));
  EXPECT_FALSE(reads_key(find_method("mf"), "train.warmup_steps"));  // CF: constant lr
}

TEST(Registry, EveryShippedConfigPassesItsMethodsKeyCheck) {
  int checked = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(std::string(CORA_SOURCE_DIR) + "/configs")) {
    if (e.path().extension() != ".json") continue;
    auto j = nlohmann::json::parse(io::read_file(e.path().string()), nullptr, false);
    if (!j.is_object() || !j.contains("method")) continue;  // tables, data protocols, paper numbers
    auto c = config::load(e.path().string());
    EXPECT_EQ(error_of([&] { check_keys(c); }), "") << e.path();
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

TEST(Registry, RemovedGradAccumKeyPointsToTheMicroBatch) {
  auto msg = error_of([] { parse(R"({"method": "cora", "data": {"dir": "d"}, "train": {"grad_accum": 2}})"); });
  EXPECT_NE(msg.find("train.micro_batch_size"), std::string::npos) << msg;
}

}  // namespace
}  // namespace cora::method
