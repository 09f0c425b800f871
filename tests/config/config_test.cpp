// Config parsing: defaults, overrides, and the error messages for unknown keys and bad types.
#include "cora/config/config.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace cora::config {
namespace {
using cora::testing::error_of;

const char* kMinimal = R"({"method": "mf", "data": {"dir": "/tmp/d"}, "train": {"lr": 0.01}})";

TEST(Config, ParsesAndKeepsDefaults) {
  Config c = parse(kMinimal, "x.json");
  EXPECT_EQ(c.method, "mf");
  EXPECT_DOUBLE_EQ(c.train.lr, 0.01);
  EXPECT_EQ(c.train.batch_size, 2048);
  EXPECT_EQ(c.train.selection_metric, "auc");
  EXPECT_EQ(c.data.dir, "/tmp/d");
}

TEST(Config, UnknownKeyNamesKeyAndFile) {
  auto msg = error_of([] { parse(R"({"method": "mf", "data": {"dir": "/d"}, "train": {"lrr": 1}})", "cfg.json"); });
  EXPECT_NE(msg.find("'train.lrr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key in cfg.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lr"), std::string::npos) << msg;  // the hint lists known keys
}

TEST(Config, WrongTypeNamesKey) {
  auto msg = error_of([] { parse(R"({"method": "mf", "data": {"dir": "/d"}, "train": {"batch_size": "big"}})", "c.json"); });
  EXPECT_NE(msg.find("config key 'train.batch_size': expected an integer"), std::string::npos) << msg;
  msg = error_of([] { parse(R"({"method": "mf", "data": {"dir": "/d"}, "train": {"batch_size": 0}})", "c.json"); });
  EXPECT_NE(msg.find("must be >= 1"), std::string::npos) << msg;
  msg = error_of([] { parse(R"({"method": "mf", "data": {"dir": "/d"}, "train": {"seed": -1}})", "c.json"); });
  EXPECT_NE(msg.find("'train.seed': must be >= 0"), std::string::npos) << msg;
}

TEST(Config, BadChoiceAndMissingMethod) {
  // Method names are the registry's (tests/method/registry_test.cpp); here: the key must be there.
  auto msg = error_of([] { parse(R"({"data": {"dir": "/d"}})", "c.json"); });
  EXPECT_NE(msg.find("'method': missing"), std::string::npos) << msg;
}

TEST(Config, InvalidJsonNamesLine) {
  auto msg = error_of([] { parse("{\n\"method\": \"mf\",\n}", "bad.json"); });
  EXPECT_EQ(msg.rfind("bad.json:3:", 0), 0u) << msg;
}

TEST(Config, NumberTooLargeIsAConfigError) {  // found by fuzz_config: escaped as a json error
  auto msg = error_of([] { parse(R"({"method": "mf", "seed": 7e999})", "big.json"); });
  EXPECT_EQ(msg.rfind("big.json", 0), 0u) << msg;
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;
}

TEST(Config, OverridesApplyWithTypes) {
  Config c = parse(kMinimal, "x.json", {"train.seed=7", "train.lr=0.5", "data.dir=/other",
                                         "llm.random_init=true"});
  EXPECT_EQ(c.train.seed, 7u);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.5);
  EXPECT_EQ(c.data.dir, "/other");
  EXPECT_TRUE(c.llm.random_init);
  auto msg = error_of([] { parse(kMinimal, "x.json", {"train.nope=1"}); });
  EXPECT_NE(msg.find("'train.nope': unknown key in --set"), std::string::npos) << msg;
  msg = error_of([] { parse(kMinimal, "x.json", {"train.lr=fast"}); });
  EXPECT_NE(msg.find("cannot parse --set value"), std::string::npos) << msg;
}

TEST(Config, RoundTripsThroughResolvedJson) {
  Config c = parse(kMinimal, "x.json", {"cf.dim=64", "train.selection_metric=uauc"});
  Config d = parse(to_json(c), "resolved.json");
  EXPECT_EQ(to_json(c), to_json(d));
  EXPECT_EQ(d.cf.dim, 64);
  EXPECT_EQ(d.train.selection_metric, "uauc");
}

TEST(Config, RelativePathsBecomeAbsolute) {
  Config c = parse(R"({"method": "mf", "data": {"dir": "rel/dir"}})", "x.json");
  EXPECT_EQ(c.data.dir.front(), '/');
  EXPECT_NE(c.data.dir.find("rel/dir"), std::string::npos);
}

}  // namespace
}  // namespace cora::config
