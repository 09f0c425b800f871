// The method registry: one table of every method cora trains — its kind, the inputs it needs,
// the config keys it reads and its default prompt. The trainer, `cora config-keys` and
// `cora table --dry-run` read it; nothing else compares method names.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cora/config/config.h"

namespace cora::cf {
class CfModelImpl;
}
namespace cora::data {
struct Split;
}

namespace cora::method {

class LlmMethod;
struct LlmParts;
using LlmFactory = std::unique_ptr<LlmMethod> (*)(const config::Config&, LlmParts);
using CfFactory = std::shared_ptr<cf::CfModelImpl> (*)(const config::CfConfig&, int64_t n_users,
                                                       int64_t n_items, const data::Split& train);

enum class Kind {
  cf,        ///< a collaborative-filtering model (mf, lightgcn, sasrec)
  llm,       ///< a frozen LLM scoring prompts (icl, tallrec, collm, cora)
  pretrain,  ///< `cora pretrain`: a small LLaMA and its tokenizer
};

struct MethodInfo {
  std::string name;
  Kind kind;
  std::string summary;
  /// Run inputs that must be set (config keys): "llm.dir", "cf.run".
  std::vector<std::string> requires_inputs;
  /// Inputs read when set: "collm.tallrec_run".
  std::vector<std::string> optional_inputs;
  /// Config keys the method reads: exact keys, or prefixes ending in '.' ("cora.").
  std::vector<std::string> keys;
  /// The prompt used when prompt.template is "" (LLM methods).
  const char* default_template = "";
  /// Builds the model (CF methods) or the method (LLM methods).
  CfFactory cf_factory = nullptr;
  LlmFactory llm_factory = nullptr;
};

/// Every method, in the order `cora config-keys` lists them.
const std::vector<MethodInfo>& methods();
std::vector<std::string> method_names();

/// The registry entry of `name`; throws cora::Error naming the `method` key otherwise.
const MethodInfo& find_method(const std::string& name);

/// Whether `key` is read by `m`.
bool reads_key(const MethodInfo& m, const std::string& key);

/// Checks that every key the config gave explicitly (Config::given) is read by its method:
/// an unread key is an error naming it, except train.* keys (often shared between methods'
/// configs), which are a warning naming it.
void check_keys(const config::Config& c);

}  // namespace cora::method
