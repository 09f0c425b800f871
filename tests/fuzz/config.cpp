// Fuzz target: the config parser. The input is JSON text, then (after a NUL byte) `--set`
// overrides, one per line. An accepted config must survive its own serialisation:
// parse(to_json(c)) succeeds and serialises to the same text.
#include <cstdlib>
#include <string>
#include <vector>

#include "cora/config/config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = cora::fuzz::split_at_nul(data, size);
  const std::string json(parts.first);
  std::string_view rest = parts.second;
  std::vector<std::string> overrides;
  while (!rest.empty()) {
    size_t k = rest.find('\n');
    overrides.emplace_back(rest.substr(0, k));
    rest = k == std::string_view::npos ? std::string_view() : rest.substr(k + 1);
  }
  cora::fuzz::rejects_cleanly([&] {
    cora::config::Config c = cora::config::parse(json, "fuzz.json", overrides);
    std::string text = cora::config::to_json(c);
    cora::config::Config again;
    try {
      again = cora::config::parse(text, "fuzz.resolved.json");
    } catch (const cora::Error&) {
      std::abort();  // what we wrote must read back
    }
    if (cora::config::to_json(again) != text) std::abort();
  });
  return 0;
}
