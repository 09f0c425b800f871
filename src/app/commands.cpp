// Subcommand bodies: config loading, dispatch on method, printing results as JSON.
#include "cora/app/commands.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cora/cf/trainer.h"
#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/train/run_dir.h"

namespace cora::app {
using json = nlohmann::json;

namespace {
void require_method_available(const config::Config& c) {
  if (!c.is_cf_method())
    throw Error::key("method", "'" + c.method +
                                   "' is not available in this build yet; implemented: mf, "
                                   "lightgcn, sasrec (the LLM methods follow the LLM core)");
}
}  // namespace

int train(const TrainArgs& a) {
  config::Config c = config::load(a.config, a.overrides);
  init_logging(c.log_level);
  require_method_available(c);
  auto s = cf::train(c, a.out, a.resume);
  std::cout << io::read_file(a.out + "/metrics.json");
  (void)s;
  return 0;
}

int eval(const EvalArgs& a) {
  init_logging("info");
  train::RunDir run(a.run, /*writer=*/false);
  config::Config c = run.read_config();
  require_method_available(c);
  auto r = cf::evaluate_run(a.run, a.split);
  std::cout << eval::to_json(r) << "\n";
  return 0;
}

int config_keys() {
  std::cout << config::describe_keys();
  return 0;
}

}  // namespace cora::app
