// The `cora` subcommands as library functions (tools/cora.cpp only parses arguments).
// Each returns the process exit code and throws cora::Error / cora::UsageError on failure.
#pragma once

#include <string>
#include <vector>

#include "cora/method/probe_options.h"

namespace cora::app {

struct TrainArgs {
  std::string config;                ///< JSON config file
  std::string out;                   ///< run directory
  std::vector<std::string> overrides;  ///< key.path=value
  bool resume = false;
};
int train(const TrainArgs& a);

/// `cora pretrain --config FILE --out DIR [--resume]` (uses TrainArgs' fields).
int pretrain(const TrainArgs& a);

struct EvalArgs {
  std::string run;
  std::string split = "test";
};
int eval(const EvalArgs& a);

struct BenchArgs {
  std::string what;  ///< cf | llm | train | eval | prepare | metrics | split
  std::string config;
  std::vector<std::string> overrides;
  int64_t megabytes = 200;  ///< prepare: size of the generated review file
  int64_t rows = 1000000;   ///< metrics / split: generated rows
  int64_t users = 0;        ///< split: generated users (0 = rows / 25)
};
int bench(const BenchArgs& a);
/// `cora bench prepare`: generated Amazon-2018 reviews, plain and gzip; MB/s and lines/s.
int bench_prepare(const BenchArgs& a);

struct PrepareArgs {
  std::string format;               ///< "" = detect from the inputs
  std::vector<std::string> inputs;  ///< files or directories
  std::string out;
  std::string config;               ///< protocol config (prepare.* keys); "" = defaults
  std::vector<std::string> overrides;
  int64_t max_bad_lines = 0;
};
/// `cora prepare`: raw data into a split directory; prints stats.json.
int prepare(const PrepareArgs& a);

struct GenerateArgs {
  std::string model;   ///< Hugging Face checkpoint directory
  std::string ids;     ///< comma-separated prompt ids
  std::string prompt;  ///< or text, tokenized with the directory's tokenizer (BOS first if it adds one)
  int64_t max_new_tokens = 32;
  bool stop_at_eos = false;
  std::string device = "auto";
  std::string dtype = "auto";  ///< auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
  std::string logits;          ///< also write the prompt's logits [T, V] (fp32) to this safetensors file
  int64_t threads = 0;
};
/// Prints the generated ids (not the prompt), comma-separated on one line.
int generate(const GenerateArgs& a);

struct TokenizeArgs {
  std::string tokenizer;  ///< tokenizer.model / tokenizer.json, or a checkpoint directory
  std::string input;      ///< lines of text ("" or "-" = standard input)
  bool decode = false;    ///< also print each line decoded back (a tab after the ids)
};
/// One line of comma-separated ids per input line (no BOS/EOS).
int tokenize(const TokenizeArgs& a);

struct ProbeArgs {
  method::ProbeOptions o;
  std::string table;  ///< or every LLM run of a `cora table` output directory (skips probed runs)
  std::string out;    ///< also write the JSON here ("" : only <run>/probe.json with --run)
};
/// `cora probe`: general-text perplexity and the WordNet cloze of a run's LLM with and without
/// what the run writes into it (method/probe.h); prints the JSON (one line per run with
/// --table) and the table on standard error.
int probe(const ProbeArgs& a);

struct ReportArgs {
  std::string dir;  ///< a `cora table` output directory
  std::string out;  ///< "" = <dir>/report.html
};
/// `cora report`: HTML with the table and SVG charts of loss / validation AUC per method.
int report(const ReportArgs& a);

/// Markdown table of every config key (`cora config-keys`).
int config_keys();

}  // namespace cora::app
