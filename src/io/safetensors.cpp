// safetensors: untrusted-input header validation, mmap-backed reads, atomic writes.
#include "cora/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cora/core/error.h"
#include "cora/io/files.h"

namespace cora::io {
namespace {
using json = nlohmann::json;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2}, {"BF16", torch::kBFloat16, 2},
    {"F64", torch::kFloat64, 8}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}
const DtypeInfo& find_dtype(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d;
  throw Error(std::string("safetensors: cannot store dtype ") + c10::toString(t));
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size,
                                           const std::string& source) {
  auto fail = [&](const std::string& msg) { return Error::at(source, 0, msg); };
  if (size < 8) throw fail("not a safetensors file: " + std::to_string(size) + " bytes, need >= 8");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > size - 8)
    throw fail("header length " + std::to_string(n) + " runs past the end of the file (" +
               std::to_string(size) + " bytes)");
  if (n > (100ull << 20)) throw fail("header length " + std::to_string(n) + " exceeds 100 MiB");
  json j = json::parse(data + 8, data + 8 + n, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw fail("header is not a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t buffer = size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it->is_object()) throw fail("__metadata__ must be an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) throw fail("__metadata__ value of '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    auto tfail = [&](const std::string& msg) { return fail("tensor '" + name + "': " + msg); };
    const json& e = *it;
    if (!e.is_object()) throw tfail("entry is not an object");
    if (!e.contains("dtype") || !e["dtype"].is_string()) throw tfail("missing dtype");
    if (!e.contains("shape") || !e["shape"].is_array()) throw tfail("missing shape");
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2)
      throw tfail("data_offsets must be [begin, end]");
    TensorInfo t;
    t.name = name;
    t.dtype = e["dtype"].get<std::string>();
    const DtypeInfo* d = find_dtype(t.dtype);
    if (!d) throw tfail("unsupported dtype '" + t.dtype + "'");
    uint64_t numel = 1;
    for (const auto& s : e["shape"]) {
      if (!s.is_number_unsigned()) throw tfail("shape entries must be non-negative integers");
      uint64_t v = s.get<uint64_t>();
      if (v != 0 && numel > (1ull << 62) / v) throw tfail("shape overflows");
      numel *= v;
      // The byte count must fit too: numel <= 2^62 times an 8-byte dtype would wrap to 0.
      if (numel > (1ull << 62) / d->size) throw tfail("shape overflows");
      t.shape.push_back(static_cast<int64_t>(v));
    }
    for (const auto& o : e["data_offsets"])
      if (!o.is_number_unsigned()) throw tfail("data_offsets must be non-negative integers");
    t.begin = e["data_offsets"][0].get<uint64_t>();
    t.end = e["data_offsets"][1].get<uint64_t>();
    if (t.begin > t.end) throw tfail("data_offsets begin > end");
    if (t.end > buffer)
      throw tfail("data_offsets end " + std::to_string(t.end) + " is past the data buffer (" +
                  std::to_string(buffer) + " bytes)");
    if (t.end - t.begin != numel * d->size)
      throw tfail("byte count " + std::to_string(t.end - t.begin) + " does not match shape x " +
                  t.dtype + " (" + std::to_string(numel * d->size) + ")");
    h.tensors.push_back(std::move(t));
  }
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : h.tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      throw fail("tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                 "' overlap in the data buffer");
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return h;
}

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr && size) ::munmap(addr, size);
  }
};

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error::at(path, 0, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error::at(path, 0, "cannot stat");
  }
  map_ = std::make_shared<Mapping>();
  map_->size = static_cast<size_t>(st.st_size);
  static const uint8_t kEmpty = 0;
  const uint8_t* base = &kEmpty;
  if (map_->size > 0) {
    map_->addr = ::mmap(nullptr, map_->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map_->addr == MAP_FAILED) {
      map_->addr = nullptr;
      ::close(fd);
      throw Error::at(path, 0, std::string("mmap failed: ") + std::strerror(errno));
    }
    base = static_cast<const uint8_t*>(map_->addr);
  }
  ::close(fd);
  header_ = parse_safetensors_header(base, map_->size, path);
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(header_.tensors.begin(), header_.tensors.end(),
                     [&](const auto& t) { return t.name == name; });
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = std::lower_bound(header_.tensors.begin(), header_.tensors.end(), name,
                             [](const TensorInfo& t, const std::string& n) { return t.name < n; });
  if (it == header_.tensors.end() || it->name != name)
    throw Error::at(path_, 0, "tensor '" + name + "' is missing");
  return *it;
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo& t = info(name);
  const DtypeInfo* d = find_dtype(t.dtype);
  auto* ptr = static_cast<uint8_t*>(map_->addr) + header_.data_start + t.begin;
  auto opts = torch::TensorOptions().dtype(d->type);
  if (t.end == t.begin) return torch::empty(t.shape, opts);
  if (reinterpret_cast<uintptr_t>(ptr) % d->size != 0)  // unaligned: copy out
    return torch::from_blob(ptr, t.shape, torch::TensorOptions().dtype(torch::kUInt8))
        .view({-1}).clone().view(d->type).view(t.shape);
  auto keep = map_;
  return torch::from_blob(ptr, t.shape, [keep](void*) {}, opts);
}

torch::Tensor SafetensorsFile::get(const std::string& name, torch::ScalarType dtype) const {
  torch::Tensor t = get(name);
  return t.scalar_type() == dtype ? t : t.to(dtype);
}

std::string safetensors_bytes(const std::string& path,
                              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> cpu;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || header.contains(name))
      throw Error::at(path, 0, "duplicate or reserved tensor name '" + name + "'");
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const DtypeInfo& d = find_dtype(c.scalar_type());
    uint64_t bytes = static_cast<uint64_t>(c.numel()) * d.size;
    header[name] = {{"dtype", d.name}, {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu.push_back(c);
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  std::string out;
  out.reserve(8 + h.size() + offset);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += h;
  for (const auto& c : cpu)
    out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return out;
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, safetensors_bytes(path, tensors, metadata));
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path) {
  SafetensorsFile f(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& t : f.header().tensors) out[t.name] = f.get(t.name).clone();
  return out;
}

}  // namespace cora::io
