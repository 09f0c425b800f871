// safetensors reader (memory-mapped, treats the file as untrusted) and writer (atomic).
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {..}}, then the byte buffer.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cora::io {

struct TensorInfo {
  std::string name;
  std::string dtype;  ///< F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  ///< byte offsets into the data buffer
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  ///< sorted by name
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  ///< 8 + N
};

/// Parses and validates the header of an in-memory file of `size` bytes. Never reads past
/// `size`; any malformed input throws cora::Error naming `source` (safe for fuzzing).
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size,
                                           const std::string& source);

/// A memory-mapped safetensors file. Tensors returned by get() alias the mapping when no
/// conversion is needed (the mapping lives as long as any such tensor).
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const SafetensorsHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  ///< throws naming file and tensor
  /// The tensor converted to `dtype` (read-only view of the mapping if already that dtype).
  torch::Tensor get(const std::string& name, torch::ScalarType dtype) const;
  torch::Tensor get(const std::string& name) const;  ///< in its stored dtype

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> map_;
  SafetensorsHeader header_;
};

/// Writes tensors (any device; copied to CPU, made contiguous) atomically, in the given order.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// The bytes save_safetensors writes (for several files written as one change); `path` names
/// errors only.
std::string safetensors_bytes(const std::string& path,
                              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

/// Reads every tensor as an owned CPU tensor in its stored dtype.
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path);

}  // namespace cora::io
