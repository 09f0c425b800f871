// `cora prepare` and `cora bench prepare` (torch-free).
//  bench prepare — writes a large Amazon-2018-format review file (plain and gzip) and prepares
//  it with the Amazon-Book protocol: MB/s of uncompressed JSON lines and lines/s, end to end.
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cora/app/commands.h"
#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/data/prepare.h"

namespace cora::app {
using json = nlohmann::json;
namespace fs = std::filesystem;

int prepare(const PrepareArgs& a) {
  config::Config c = config::load_prepare(a.config, a.overrides);
  init_logging(c.log_level);
  data::PrepareRequest r;
  r.format = a.format;
  r.inputs = a.inputs;
  r.out = a.out;
  r.protocol = c.prepare;
  r.protocol_json = config::prepare_to_json(c);
  spdlog::info("protocol{}: {}", a.config.empty() ? " (no --config: whole time range)" : " of " + a.config,
               r.protocol_json);
  r.max_bad_lines = a.max_bad_lines;
  r.progress = true;
  std::string stats = data::prepare(r);
  std::cout << stats;
  return 0;
}

namespace {

// One Amazon-2018 review line: the fields of the real files, a review text of ~60 words.
void review_line(std::mt19937_64& rng, std::string& out) {
  static const char* words[] = {"the", "book", "story", "characters", "great", "read", "author",
                                "really", "enjoyed", "plot", "recommend", "series", "writing",
                                "interesting", "end", "well", "love", "first", "time", "\\\"good\\\"",
                                "caf\\u00e9", "page-turner", "slow", "boring", "couldn't", "wait"};
  char buf[256];
  uint64_t u = rng() % 200000, i = rng() % 100000;
  int64_t ts = 1451606400 + static_cast<int64_t>(rng() % (3 * 365 * 86400ULL));  // 2016..2018
  int rating = 1 + static_cast<int>(rng() % 5);
  std::snprintf(buf, sizeof buf,
                "{\"overall\": %d.0, \"verified\": %s, \"reviewTime\": \"08 9, 2017\", "
                "\"reviewerID\": \"A%013llX\", \"asin\": \"%010llu\", \"style\": {\"Format:\": "
                "\" Paperback\"}, \"reviewerName\": \"Reader %llu\", \"reviewText\": \"",
                rating, rng() % 2 ? "true" : "false", static_cast<unsigned long long>(u),
                static_cast<unsigned long long>(i), static_cast<unsigned long long>(u % 977));
  out += buf;
  int n = 30 + static_cast<int>(rng() % 60);
  for (int k = 0; k < n; ++k) {
    if (k) out += ' ';
    out += words[rng() % std::size(words)];
  }
  std::snprintf(buf, sizeof buf, "\", \"summary\": \"%s stars\", \"unixReviewTime\": %lld}\n",
                words[rng() % 6], static_cast<long long>(ts));
  out += buf;
}

}  // namespace

int bench_prepare(const BenchArgs& a) {
  config::Config c = config::load_prepare(a.config, a.overrides);
  init_logging("warn");
  if (a.config.empty()) {  // Amazon-Book protocol without the count filters (random users)
    c.prepare.positive_rating = 5;
    c.prepare.window_start = "2017-01-01";
    c.prepare.window_end = "2018-01-01";
    c.prepare.split = "halves";
    c.prepare.valid_start = "2017-12-01";
  }
  const int64_t target = a.megabytes * 1000000LL;
  fs::path dir = fs::temp_directory_path() / ("cora-bench-prepare-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string plain = (dir / "Books.json").string(), gz = (dir / "Books.json.gz").string();
  {
    std::mt19937_64 rng(7);
    std::FILE* f = std::fopen(plain.c_str(), "wb");
    gzFile g = gzopen(gz.c_str(), "wb6");
    if (!f || !g) throw Error::at(dir.string(), 0, "cannot write the benchmark files");
    std::string chunk;
    int64_t written = 0;
    while (written < target) {
      chunk.clear();
      while (chunk.size() < (1 << 20)) review_line(rng, chunk);
      std::fwrite(chunk.data(), 1, chunk.size(), f);
      gzwrite(g, chunk.data(), static_cast<unsigned>(chunk.size()));
      written += static_cast<int64_t>(chunk.size());
    }
    std::fclose(f);
    gzclose(g);
  }
  for (const auto& [input, label] : {std::pair{plain, "plain"}, {gz, "gzip"}}) {
    data::PrepareRequest r;
    r.format = "amazon2018";
    r.inputs = {input};
    r.out = (dir / (std::string("out-") + label)).string();
    r.protocol = c.prepare;
    r.protocol_json = config::prepare_to_json(c);
    r.progress = false;
    double t0 = now_seconds();
    json stats = json::parse(data::prepare(r));
    double dt = now_seconds() - t0;
    double mb = stats["inputs"][0]["uncompressed_bytes"].get<double>() / 1e6;
    double lines = stats["inputs"][0]["lines"].get<double>();
    std::cout << json{{"bench", "prepare"},
                      {"input", label},
                      {"format", "amazon2018"},
                      {"uncompressed_mb", mb},
                      {"file_mb", stats["inputs"][0]["bytes"].get<double>() / 1e6},
                      {"lines", lines},
                      {"rows_kept", stats["rows"]},
                      {"seconds", dt},
                      {"mb_per_s", mb / dt},
                      {"lines_per_s", lines / dt},
                      {"threads", 1},
                      {"peak_rss_mib", peak_rss_mib()},
                      {"target_mb_per_s", 100}}
                     .dump()
              << std::endl;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

}  // namespace cora::app
