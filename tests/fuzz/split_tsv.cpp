// Fuzz target: the split reader (items.tsv, then after a NUL byte a split TSV). What is accepted
// must round-trip through the writers.
#include <cstdlib>

#include "cora/data/split.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = cora::fuzz::split_at_nul(data, size);
  const std::string_view items_text = parts.first, split_text = parts.second;
  cora::fuzz::rejects_cleanly([&] {
    auto items = cora::data::read_items(cora::fuzz::scratch_file("items.tsv", items_text));
    std::string again = cora::fuzz::scratch_file("items2.tsv", "");
    cora::data::write_items(items, again);
    auto back = cora::data::read_items(again);
    if (back.title != items.title) std::abort();
  });
  cora::fuzz::rejects_cleanly([&] {
    auto s = cora::data::read_split(cora::fuzz::scratch_file("train.tsv", split_text), "train");
    std::string again = cora::fuzz::scratch_file("train2.tsv", "");
    cora::data::write_split(s, again);
    auto back = cora::data::read_split(again, "train");
    if (back.uid != s.uid || back.iid != s.iid || back.label != s.label ||
        back.timestamp != s.timestamp || back.not_cold != s.not_cold ||
        back.hist_offsets != s.hist_offsets || back.hist_items != s.hist_items)
      std::abort();
  });
  return 0;
}
