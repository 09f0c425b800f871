// cora's split format (read by every method): items.tsv and {train,valid,valid_small,test}.tsv
// with columns `uid iid label timestamp not_cold history` (see ../shared/data/ml-1m-collm).
// Torch-free. A malformed line is an error naming the file and line; nothing is dropped.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace cora::data {

/// Item titles by id; id 0 is padding (empty title).
struct Items {
  std::vector<std::string> title;  ///< [n_items], index = iid
  int64_t n_items() const { return static_cast<int64_t>(title.size()); }
};

/// One split as columns. Row r's history is hist_items[hist_offsets[r] .. hist_offsets[r+1]).
struct Split {
  std::string name;
  std::vector<int64_t> uid, iid, timestamp;
  std::vector<float> label;           ///< 0 or 1
  std::vector<uint8_t> not_cold;      ///< 1 = user and item both occur in train (warm)
  std::vector<int64_t> hist_offsets;  ///< [n + 1]
  std::vector<int64_t> hist_items;    ///< earlier positive items, oldest first

  size_t size() const { return uid.size(); }
  std::span<const int64_t> history(size_t row) const {
    return {hist_items.data() + hist_offsets[row],
            static_cast<size_t>(hist_offsets[row + 1] - hist_offsets[row])};
  }
  void push_row(int64_t u, int64_t i, float y, int64_t ts, uint8_t warm,
                std::span<const int64_t> hist);
};

/// A split directory: items plus the four splits, with table sizes that cover every id.
struct Dataset {
  std::string dir;
  Items items;
  Split train, valid, valid_small, test;
  int64_t n_users = 0;  ///< max uid over all splits + 1 (0 = padding)
  int64_t n_items = 0;  ///< max iid in items.tsv + 1

  /// "train" | "valid" | "valid_small" | "test"; throws cora::Error otherwise.
  const Split& split(const std::string& name) const;
};

Items read_items(const std::string& path);
Split read_split(const std::string& path, const std::string& name);

/// Reads the directory and checks every item id against items.tsv.
Dataset load_dataset(const std::string& dir);

/// Writes a split back in the same format (atomic); used by `prepare` and tests.
void write_split(const Split& s, const std::string& path);
void write_items(const Items& items, const std::string& path);

}  // namespace cora::data
