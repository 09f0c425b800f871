// `cora prepare`: raw public rating data (Amazon 2014/2018/2023, MovieLens 1M/100K/CSV, RecBole
// atomic files; plain or gzip) into cora's split format under a configurable temporal protocol
// (defaults = the paper's ML-1M protocol). Torch-free and streaming: inputs are read line by
// line, rows outside the time window are dropped as they are read, metadata is kept only for
// items that occur. Output is written to a temporary directory and renamed into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cora/config/config.h"

namespace cora::data {

/// The accepted --format names.
const std::vector<std::string>& prepare_formats();

/// Guesses the format from file names and first lines; throws cora::Error when it cannot.
std::string detect_format(const std::vector<std::string>& inputs);

struct PrepareRequest {
  std::string format;               ///< one of prepare_formats(); "" = detect
  std::vector<std::string> inputs;  ///< files, or directories (their files, sorted by name)
  std::string out;                  ///< the split directory to create (replaced if present)
  config::PrepareConfig protocol;
  std::string protocol_json;        ///< recorded in stats.json (config::prepare_to_json)
  int64_t max_bad_lines = 0;        ///< malformed lines tolerated (counted, first few shown)
  bool progress = true;             ///< in-place progress line on stderr
};

/// Runs the whole preparation and returns stats.json's text (also written into `out`).
/// Throws cora::Error naming the file and line (input) or the config key (protocol).
std::string prepare(const PrepareRequest& request);

}  // namespace cora::data
