// Fuzz target: one `cora prepare` reader, chosen at compile time (CORA_FUZZ_FORMAT): the
// interaction file, then after a NUL byte the metadata file, read as that format's inputs with
// malformed lines tolerated (counted), as `--max-bad-lines` does. Exercises the JSON-lines and
// Python-literal scanners (Amazon), CSV (MovieLens CSV), `::`/tab files (MovieLens .dat,
// u.data, u.item) and RecBole's atomic files, plain or gzip.
#include "data/prepare_input.h"
#include "fuzz_util.h"

#ifndef CORA_FUZZ_FORMAT
#error "CORA_FUZZ_FORMAT names the prepare format"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = cora::fuzz::split_at_nul(data, size);
  const std::string_view inter = parts.first, meta = parts.second;
  cora::fuzz::rejects_cleanly([&] {
    cora::config::PrepareConfig protocol;  // no window: every timestamp is kept
    protocol.window_start.clear();
    protocol.window_end.clear();
    cora::data::prep::Collector c(protocol, /*max_bad=*/1 << 20, /*progress=*/false);
    std::string fi = cora::fuzz::scratch_file("inter", inter);
    std::string fm = cora::fuzz::scratch_file("meta", meta);
    cora::data::prep::read_inputs(c, CORA_FUZZ_FORMAT, {fi}, {fm});
    for (const auto& r : c.rows_)
      if (r.user >= c.users_.names.size() || r.item >= c.items_.names.size()) std::abort();
  });
  return 0;
}
