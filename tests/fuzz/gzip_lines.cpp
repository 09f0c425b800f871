// Fuzz target: the streaming line reader on arbitrary bytes (gzip detected from the magic bytes;
// one or more members; truncated and corrupt streams). Lines never contain '\n', and the bytes
// delivered match the count the reader reports.
#include <cstdlib>

#include "data/raw_input.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string path = cora::fuzz::scratch_file("lines", bytes);
  cora::fuzz::rejects_cleanly([&] {
    cora::data::raw::LineReader r(path);
    std::string_view line;
    uint64_t delivered = 0;
    int64_t n = 0;
    while (r.next(line)) {
      if (line.find('\n') != std::string_view::npos) std::abort();
      delivered += line.size();
      ++n;
    }
    if (r.line_no() != n || delivered > r.text_bytes()) std::abort();
    if (!r.gzip() && r.text_bytes() != size) std::abort();
    if (r.sha256_hex().size() != 64) std::abort();
  });
  cora::fuzz::rejects_cleanly([&] { cora::data::raw::first_line(path); });
  return 0;
}
