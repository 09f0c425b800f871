// sentencepiece in the same process as libtorch (through the dlopen'ed module): train a small
// BPE model, then encode/decode, special ids and piece lookups.
#include "cora/text/tokenizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "test_util.h"

namespace cora::text {
namespace {
using cora::testing::TempDir;

TEST(Tokenizer, TrainsLoadsAndRoundTripsBesideLibtorch) {
  auto t = torch::ones({2, 2}).sum();  // libtorch is live in this process
  EXPECT_EQ(t.item<float>(), 4.f);
  TempDir d;
  std::ostringstream corpus;
  const char* lines[] = {"A user has given high ratings to the following movies",
                         "Answer with Yes or No", "the movie titled Toy Story (1995)",
                         "Leverage the information to predict whether the user would enjoy it"};
  for (int r = 0; r < 50; ++r)
    for (const char* l : lines) corpus << l << " " << r << "\n";
  cora::testing::write_text(d.file("corpus.txt"), corpus.str());
  Tokenizer::train("--input=" + d.file("corpus.txt") + " --model_prefix=" + d.file("sp") +
                   " --vocab_size=400 --model_type=bpe --byte_fallback=true"
                   " --user_defined_symbols=Yes,No --minloglevel=2");
  Tokenizer tok(d.file("sp.model"));
  EXPECT_EQ(tok.vocab_size(), 400);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  std::string text = "Answer with Yes or No: Toy Story";
  auto ids = tok.encode(text);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_NE(tok.piece_to_id("Yes"), tok.unk_id());
  EXPECT_EQ(tok.piece(tok.piece_to_id("Yes")), "Yes");
  // Byte fallback: unseen characters survive the round trip.
  EXPECT_EQ(tok.decode(tok.encode("Amélie ✓")), "Amélie ✓");
}

TEST(Tokenizer, MissingModelIsAClearError) {
  EXPECT_NE(cora::testing::error_of([] { Tokenizer t("/nonexistent/tokenizer.model"); })
                .find("tokenizer model does not exist"),
            std::string::npos);
}

}  // namespace
}  // namespace cora::text
