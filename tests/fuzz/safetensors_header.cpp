// Fuzz target: the safetensors header (length prefix, JSON, dtypes, shapes, offsets, metadata).
// An accepted header must describe tensors that lie inside the file, without overlaps.
#include <cstdlib>

#include "cora/io/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cora::fuzz::rejects_cleanly([&] {
    auto h = cora::io::parse_safetensors_header(data, size, "fuzz.safetensors");
    for (const auto& t : h.tensors)
      if (t.begin > t.end || t.end > size - h.data_start) std::abort();
  });
  return 0;
}
