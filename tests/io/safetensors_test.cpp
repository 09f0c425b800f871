// safetensors round trip, dtype conversion, and every malformed-header error.
#include "cora/io/safetensors.h"

#include <gtest/gtest.h>

#include "cora/core/error.h"
#include "cora/io/files.h"
#include "test_util.h"

namespace cora::io {
namespace {
using cora::testing::error_of;
using cora::testing::TempDir;

std::string with_header(const std::string& json, size_t data_bytes, uint64_t claimed = 0) {
  uint64_t n = claimed ? claimed : json.size();
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + json + std::string(data_bytes, '\0');
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] {
    parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "f.st");
  });
}

TEST(Safetensors, RoundTripAndConversion) {
  TempDir t;
  auto a = torch::randn({3, 4});
  auto b = torch::arange(5, torch::kInt64);
  auto c = torch::randn({2, 2}).to(torch::kBFloat16);
  save_safetensors(t.file("x.safetensors"), {{"a", a}, {"b", b}, {"c", c}}, {{"k", "v"}});
  SafetensorsFile f(t.file("x.safetensors"));
  EXPECT_EQ(f.header().metadata.at("k"), "v");
  EXPECT_TRUE(torch::equal(f.get("a"), a));
  EXPECT_TRUE(torch::equal(f.get("b"), b));
  EXPECT_EQ(f.info("c").dtype, "BF16");
  EXPECT_TRUE(torch::equal(f.get("c", torch::kFloat32), c.to(torch::kFloat32)));
  EXPECT_NE(error_of([&] { f.get("zz"); }).find("tensor 'zz' is missing"), std::string::npos);
}

TEST(Safetensors, MalformedHeaders) {
  EXPECT_NE(parse_error("abc").find("need >= 8"), std::string::npos);
  EXPECT_NE(parse_error(with_header("{}", 0, 1000)).find("runs past the end"), std::string::npos);
  EXPECT_NE(parse_error(with_header("{not json", 0)).find("not a JSON object"), std::string::npos);
  EXPECT_NE(parse_error(with_header(R"({"t":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4))
                .find("tensor 't': unsupported dtype 'F99'"), std::string::npos);
  EXPECT_NE(parse_error(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4))
                .find("does not match shape"), std::string::npos);
  EXPECT_NE(parse_error(with_header(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", 4))
                .find("past the data buffer"), std::string::npos);
  EXPECT_NE(parse_error(with_header(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4))
                .find("begin > end"), std::string::npos);
  EXPECT_NE(parse_error(with_header(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4))
                .find("non-negative"), std::string::npos);
  EXPECT_NE(parse_error(with_header(R"({"t":{"dtype":"F32","shape":[1]}})", 4))
                .find("data_offsets must be"), std::string::npos);
  EXPECT_NE(parse_error(with_header(
                R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8))
                .find("overlap"), std::string::npos);
  EXPECT_NE(parse_error(with_header(R"({"__metadata__":{"k":1}})", 0)).find("not a string"),
            std::string::npos);
}

TEST(Safetensors, NoCrashOnTruncations) {
  TempDir t;
  save_safetensors(t.file("x.safetensors"), {{"a", torch::randn({8})}});
  std::string full = read_file(t.file("x.safetensors"));
  for (size_t n = 0; n < full.size(); ++n) {  // every proper prefix is rejected, cleanly
    std::string prefix = full.substr(0, n);
    EXPECT_THROW(parse_safetensors_header(reinterpret_cast<const uint8_t*>(prefix.data()), n, "p"),
                 Error)
        << "prefix of " << n << " bytes";
  }
  EXPECT_NO_THROW(parse_safetensors_header(reinterpret_cast<const uint8_t*>(full.data()), full.size(), "p"));
}

TEST(Safetensors, ByteCountOverflowIsRejected) {
  // shape [2^62] of F32 is 2^64 bytes: the product wraps to 0 and matched offsets [0, 0].
  for (std::string shape : {"[4611686018427387904]", "[2147483648, 2147483648]"}) {
    std::string header = R"({"a": {"dtype": "F32", "shape": )" + shape + R"(, "data_offsets": [0, 0]}})";
    std::string file(8, '\0');
    uint64_t n = header.size();
    for (int k = 0; k < 8; ++k) file[k] = static_cast<char>((n >> (8 * k)) & 0xFF);
    file += header;
    auto msg = cora::testing::error_of([&] {
      parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "big");
    });
    EXPECT_NE(msg.find("overflows"), std::string::npos) << shape << ": " << msg;
  }
}

}  // namespace
}  // namespace cora::io
