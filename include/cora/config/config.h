// cora's run configuration: JSON files parsed once into typed structs.
// Every key is declared once in the field table (config.cpp) with its type, default and doc;
// unknown keys, wrong types and out-of-range values are errors naming the key and the file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cora::config {

/// Where the split lives (`prepare`'s output or ../shared/data/ml-1m-collm).
struct DataConfig {
  std::string dir;  ///< split directory: items.tsv, {train,valid,valid_small,test}.tsv
};

/// The collaborative-filtering model: trained by CF methods, frozen source for LLM methods.
struct CfConfig {
  std::string run;         ///< finished CF run directory (LLM methods only)
  int64_t dim = 256;       ///< embedding size (paper: 256)
  int64_t layers = 2;      ///< LightGCN propagation layers / SASRec transformer blocks
  int64_t heads = 1;       ///< SASRec attention heads
  int64_t max_len = 25;    ///< SASRec history length (most recent items, left-padded)
  double dropout = 0.2;    ///< SASRec dropout
  double init_std = 0.1;   ///< N(0, init_std) embedding init (MF reference: 1.0, nn.Embedding)
};

/// The frozen decoder LLM (LLM methods).
struct LlmConfig {
  std::string dir;             ///< Hugging Face checkpoint directory (config.json, tokenizer.model)
  bool random_init = false;    ///< random weights of the checkpoint's shape (benchmarks, tests)
  bool checkpointing = false;  ///< recompute decoder layers in the backward pass
};

/// The text prompt of the LLM methods.
struct PromptConfig {
  std::string templ;            ///< JSON key `template`; empty = the movie template
  int64_t max_history = 10;     ///< most recent liked titles shown
  std::string empty_history = "unkow";
  std::string answer = "Yes";   ///< the score is this word's first piece's logit
};

/// CoRA: collaborative query generator and per-sample collaborative weights.
struct CoraConfig {
  int64_t n_queries = 4;
  int64_t layers = 8;
  int64_t heads = 8;
  int64_t hidden = 0;  ///< 0 = 2 × CF dim
  int64_t intermediate = 3072;
  double dropout = 0.1;
  int64_t rank = 16;
  double alpha = 32;
  double lora_dropout = 0.05;
  std::string targets = "q_proj,k_proj,v_proj,o_proj";  ///< comma-separated, every layer
};

/// TALLRec: a LoRA shared by every sample, trained on the text prompt (PEFT conventions).
struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16;
  double dropout = 0.05;
  std::string targets = "q_proj,v_proj";  ///< comma-separated, every layer
};

/// CoLLM: step 2 over a finished TALLRec run (step 1) and a frozen CF model.
struct CollmConfig {
  std::string tallrec_run;  ///< finished TALLRec run whose LoRA is loaded frozen ("" = none)
  int64_t hidden = 0;       ///< MLP width (0 = 10 × CF dim)
};

/// The optimisation loop shared by every method.
struct TrainConfig {
  uint64_t seed = 0;                     ///< seeds init, data order and dropout
  double lr = 1e-3;                      ///< peak learning rate
  double weight_decay = 0.0;             ///< Adam L2 (CF) / AdamW decoupled (LLM methods)
  int64_t batch_size = 2048;             ///< rows per optimiser step (the global batch)
  int64_t micro_batch_size = 0;          ///< rows per forward/backward pass; gradients
                                         ///< accumulate over a batch (0 = whole batch)
  int64_t eval_batch_size = 8192;        ///< rows per forward pass at evaluation
  int64_t epochs = 1000;                 ///< maximum number of epochs
  int64_t iterations = 0;                ///< steps per "epoch" (0 = one pass over train)
  int64_t patience = 100;                ///< epochs without improvement before stopping
  int64_t min_epochs = 0;                ///< never stop early before this many epochs
  std::string selection_metric = "auc";  ///< auc | uauc, on the validation split
  std::string valid_split = "valid";     ///< valid | valid_small: the split used for selection
  int64_t valid_limit = 0;               ///< LLM methods: select on a fixed sample of this many
                                         ///< rows of valid_split (0 = all; CPU-time caps)
  int64_t warmup_steps = 0;              ///< linear warm-up from warmup_start_lr (LLM methods)
  double warmup_start_lr = 1e-5;
  double min_lr = 0.0;                   ///< cosine floor after warm-up (LLM methods)
  std::string schedule = "cora";         ///< cora | reference (the official LAVIS scheduler)
  double grad_clip = 0.0;                ///< global-norm clipping (0 = off)
  int64_t epochs_per_invocation = 0;     ///< leave after this many epochs with a
                                         ///< resumable checkpoint (job time slices; 0 = off)
  double checkpoint_every_s = 60;        ///< latest checkpoint after an evaluation at most this often
};

/// `cora pretrain`: a small LLaMA and its tokenizer trained offline (method "pretrain").
struct PretrainConfig {
  std::string wordnet_dir = "/usr/share/wordnet";  ///< Debian wordnet-base glosses ("" = none)
  bool items = true;             ///< add data.dir's item titles (and genres) to the corpus
  int64_t vocab_size = 4000;     ///< sentencepiece BPE pieces (byte fallback; ▁Yes, ▁No kept whole)
  int64_t hidden_size = 256;
  int64_t layers = 6;
  int64_t heads = 8;
  int64_t kv_heads = 4;
  int64_t intermediate = 688;
  int64_t seq_len = 128;         ///< training context
  int64_t steps = 2000;
  int64_t eval_every = 250;
  double heldout_fraction = 0.02;  ///< lines kept out for perplexity
};

/// `cora prepare`: the protocol that turns raw ratings into a split (defaults = the paper's
/// ML-1M protocol; configs/data/ holds ML-1M, Amazon-Book and the embedded default).
struct PrepareConfig {
  double positive_rating = 4;         ///< label = 1 when rating >= this (Amazon-Book: 5)
  std::string window_start = "2001-06-01";  ///< UTC date, inclusive ("" = unbounded)
  std::string window_end = "2003-02-01";    ///< UTC date, exclusive ("" = unbounded)
  int64_t min_user_rows = 0;          ///< users with fewer rows (after the window) are dropped
  int64_t min_item_rows = 0;          ///< items with fewer rows are dropped
  bool filter_until_stable = false;   ///< repeat the two count filters until nothing changes
  std::string split = "dates";        ///< dates | halves | ratios | user_ratios
  std::string valid_start = "2002-04-01";  ///< dates/halves: first valid second (UTC date)
  std::string test_start = "2002-09-01";   ///< dates: first test second (UTC date)
  double train_ratio = 0.8;           ///< ratios: leading share of rows in time order
  double valid_ratio = 0.1;           ///< ratios: next share; the rest is test
  double valid_small_fraction = 0.5;  ///< share of valid sampled into valid_small
  uint64_t valid_small_seed = 2023;
  int64_t max_history = 0;            ///< most recent positives kept per row (0 = all)
};

struct Config {
  std::string method;           ///< a name of the method registry (method/registry.h)
  DataConfig data;
  CfConfig cf;
  LlmConfig llm;
  PromptConfig prompt;
  CoraConfig cora;
  LoraConfig lora;
  CollmConfig collm;
  PretrainConfig pretrain;
  PrepareConfig prepare;
  TrainConfig train;
  std::string device = "auto";  ///< cpu | cuda | auto
  int64_t threads = 0;          ///< intra-op threads (0 = every core this process may run on: its CPU affinity)
  std::string log_level = "info";

  /// Keys the file or --set gave explicitly, in order (not serialised): the method registry
  /// refuses those the chosen method does not read.
  std::vector<std::string> given;
};

/// Parses a JSON config file, applies `key.path=value` overrides, validates; throws cora::Error.
/// Relative paths (data.dir, cf.run, llm.dir) are resolved against the current directory.
Config load(const std::string& path, const std::vector<std::string>& overrides = {});

/// Same, from JSON text; `source` names it in errors.
Config parse(const std::string& json_text, const std::string& source,
             const std::vector<std::string>& overrides = {});

/// A data-protocol config for `cora prepare`: only `prepare.*` (and `log_level`, `threads`)
/// keys are allowed, and `method`/`data.dir` are not required. `path` "" = no config: the whole
/// time range and the user_ratios split (not the paper's ML-1M dates).
Config load_prepare(const std::string& path, const std::vector<std::string>& overrides = {});

/// The `prepare` section alone as JSON text (stats.json records it).
std::string prepare_to_json(const Config& c);

/// The full resolved config as JSON text (config.resolved.json); parse(to_json(c)) == c.
std::string to_json(const Config& c);

/// Markdown table of every key: type, default, meaning (README / `cora config-keys`);
/// `method_choices` lists the registry's names for the `method` row; `readers`, when given,
/// fills a column with the methods that read each key.
std::string describe_keys(const std::vector<std::string>& method_choices = {},
                          const std::function<std::string(const std::string&)>& readers = {});

}  // namespace cora::config
