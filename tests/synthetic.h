// A small split directory with planted structure: users and items fall into G groups and a user
// likes exactly the items of their own group. Rows are time-ordered per user; history = earlier
// positives. Any CF model that learns should separate the classes on held-out rows.
#pragma once

#include <random>
#include <string>

#include "cora/data/split.h"
#include "cora/io/files.h"

namespace cora::testing {

inline void write_planted_split(const std::string& dir, int n_users = 80, int n_items = 60,
                                int groups = 3, int rows_per_user = 30, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  data::Items items;
  items.title.assign(n_items + 1, "");
  for (int i = 1; i <= n_items; ++i) items.title[i] = "Item " + std::to_string(i);
  data::Split train, valid, valid_small, test;
  train.name = "train", valid.name = "valid", valid_small.name = "valid_small", test.name = "test";
  std::uniform_int_distribution<int> item(1, n_items);
  int64_t ts = 1000;
  for (int u = 1; u <= n_users; ++u) {
    std::vector<int64_t> hist;
    for (int k = 0; k < rows_per_user; ++k) {
      int i = item(rng);
      float y = (u % groups) == (i % groups) ? 1.f : 0.f;
      data::Split& s = k < rows_per_user * 6 / 10 ? train : k < rows_per_user * 8 / 10 ? valid : test;
      s.push_row(u, i, y, ts++, 1, hist);
      if (&s == &valid && k % 2 == 0) valid_small.push_row(u, i, y, ts, 1, hist);
      if (y > 0) hist.push_back(i);
    }
  }
  io::make_dirs(dir);
  data::write_items(items, dir + "/items.tsv");
  data::write_split(train, dir + "/train.tsv");
  data::write_split(valid, dir + "/valid.tsv");
  data::write_split(valid_small, dir + "/valid_small.tsv");
  data::write_split(test, dir + "/test.tsv");
}

}  // namespace cora::testing
