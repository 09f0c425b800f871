// Byte-level BPE from tokenizer.json on hand-made files: merge ranks decide (not left-to-right
// order), ignore_merges, added tokens, decode, BOS from the post-processor or
// tokenizer_config.json, and refusals by name. Real vocabularies: tests/text/bpe_check.sh.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cora/text/tokenizer.h"
#include "test_util.h"

namespace cora::text {
namespace {
using cora::testing::error_of;
using cora::testing::TempDir;
using cora::testing::write_text;
using json = nlohmann::json;

// "Ġ" is the byte-level form of a space (U+0120).
json tiny(bool ignore_merges) {
  return json{
      {"model",
       {{"type", "BPE"},
        {"ignore_merges", ignore_merges},
        {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"Ġ", 3}, {"ab", 4}, {"abc", 5}, {"Ġa", 6}, {"Ġab", 7}}},
        {"merges", {"a b", "ab c", json::array({"Ġ", "a"}), "Ġa b"}}}},
      {"added_tokens", {{{"id", 8}, {"content", "<|x|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}}}};
}

std::string write(const TempDir& t, const std::string& name, const json& j) {
  write_text(t.file(name + "/tokenizer.json"), j.dump());
  return t.file(name + "/tokenizer.json");
}

TEST(Bpe, MergesByRankAddedTokensAndDecode) {
  TempDir t;
  Tokenizer tok(write(t, "m", tiny(false)));
  ASSERT_TRUE(tok.is_bpe());
  // "abc": a·b (rank 0) then ab·c (rank 1). " abc": a·b outranks Ġ·a, leaving Ġ + abc.
  EXPECT_EQ(tok.encode("abc abc"), (std::vector<int32_t>{5, 3, 5}));
  EXPECT_EQ(tok.encode(" ab"), (std::vector<int32_t>{3, 4}));  // no "Ġ ab" merge
  EXPECT_EQ(tok.encode("a<|x|>b"), (std::vector<int32_t>{0, 8, 1}));
  EXPECT_EQ(tok.decode({5, 3, 5, 8, 1}), "abc abc<|x|>b");
  EXPECT_EQ(tok.piece(7), "Ġab");
  EXPECT_EQ(tok.piece_to_id("Ġa"), 6);
  EXPECT_EQ(tok.piece_to_id("zz"), -1);
  EXPECT_EQ(tok.vocab_size(), 9);
  EXPECT_EQ(tok.unk_id(), -1);
  EXPECT_FALSE(tok.add_bos());
  EXPECT_EQ(tok.encode_following("ab"), (std::vector<int32_t>{3, 4}));  // " ab"
}

TEST(Bpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  TempDir t;
  Tokenizer tok(write(t, "m", tiny(true)));
  EXPECT_EQ(tok.encode(" ab"), (std::vector<int32_t>{7}));  // "Ġab" is in the vocabulary
  EXPECT_EQ(tok.encode("abc abc"), (std::vector<int32_t>{5, 3, 5}));
}

TEST(Bpe, BosFromTheTemplateOrTheConfig) {
  TempDir t;
  json j = tiny(false);
  j["added_tokens"].push_back({{"id", 9}, {"content", "<s>"}, {"special", true}});
  j["post_processor"] = {{"type", "Sequence"},
                         {"processors",
                          {{{"type", "ByteLevel"}},
                           {{"type", "TemplateProcessing"},
                            {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}}}};
  Tokenizer a(write(t, "a", j));
  EXPECT_TRUE(a.add_bos());
  EXPECT_EQ(a.bos_id(), 9);
  j["post_processor"] = {{"type", "ByteLevel"}};
  std::string p = write(t, "b", j);
  write_text(t.file("b/tokenizer_config.json"),
             R"({"add_bos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "<|x|>"})");
  Tokenizer b(p);
  EXPECT_TRUE(b.add_bos());
  EXPECT_EQ(b.bos_id(), 9);
  EXPECT_EQ(b.eos_id(), 8);
  EXPECT_EQ(Tokenizer::file_in(t.file("b")), p);
  EXPECT_NE(error_of([&] { Tokenizer::file_in(t.path()); }).find("neither tokenizer.model"), std::string::npos);
}

TEST(Bpe, UnsupportedPartsAreRefusedByName) {
  TempDir t;
  json j = tiny(false);
  j["model"]["type"] = "WordPiece";
  EXPECT_NE(error_of([&] { Tokenizer(write(t, "a", j)); }).find("model type 'WordPiece' is not supported"),
            std::string::npos);
  j = tiny(false);
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  EXPECT_NE(error_of([&] { Tokenizer(write(t, "b", j)); }).find("pre-tokenizer 'Metaspace'"), std::string::npos);
  j = tiny(false);
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_NE(error_of([&] { Tokenizer(write(t, "c", j)); }).find("normalizer 'Lowercase'"), std::string::npos);
  j = tiny(false);
  j["model"]["merges"].push_back("a zz");
  EXPECT_NE(error_of([&] { Tokenizer(write(t, "d", j)); }).find("not in the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace cora::text
