// Prompt rendering exactly as the reference: quoting, the last 10 titles, the empty-history
// word, the literal backslash-n.
#include "cora/method/prompt.h"

#include <gtest/gtest.h>

namespace cora::method {
namespace {

data::Items items() {
  data::Items it;
  it.title = {"", "Toy Story (1995)", " Heat (1995) ", "Casino (1995)"};
  for (int i = 4; i <= 15; ++i) it.title.push_back("M" + std::to_string(i));
  return it;
}

TEST(Prompt, RendersLikeTheReference) {
  auto it = items();
  std::vector<int64_t> h{1, 3};
  EXPECT_EQ(render_prompt(it, h, 2, {}),
            "#Question: A user has given high ratings to the following movies: "
            "\"Toy Story (1995)\", \"Casino (1995)\". Leverage the information to predict whether "
            "the user would enjoy the movie titled \"Heat (1995)\"? Answer with \"Yes\" or \"No\". "
            "\\n#Answer:");
}

TEST(Prompt, LastTenTitlesAndEmptyHistory) {
  auto it = items();
  std::vector<int64_t> h;
  for (int i = 1; i <= 15; ++i) h.push_back(i);
  auto s = render_history(it, h, {});
  EXPECT_EQ(s.rfind("\"M6\", ", 0), 0u) << s;  // items 6..15 remain
  EXPECT_NE(s.find("\"M15\""), std::string::npos);
  EXPECT_EQ(s.find("Toy Story"), std::string::npos);
  EXPECT_EQ(render_history(it, {}, {}), "unkow");
  EXPECT_NE(render_prompt(it, {}, 1, {}).find("movies: unkow. Leverage"), std::string::npos);
}

}  // namespace
}  // namespace cora::method
