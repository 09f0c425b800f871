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
#include "cora/method/trainer.h"
#include "cora/llm/pretrain.h"
#include "cora/train/run_dir.h"

namespace cora::app {
using json = nlohmann::json;

namespace {
void require_method_available(const config::Config& c) {
  if (c.method == "pretrain")
    throw Error::key("method", "\"pretrain\" configs run with `cora pretrain`");
}
}  // namespace

int train(const TrainArgs& a) {
  config::Config c = config::load(a.config, a.overrides);
  init_logging(c.log_level);
  require_method_available(c);
  if (c.is_cf_method())
    cf::train(c, a.out, a.resume);
  else
    method::train(c, a.out, a.resume);
  if (!io::exists(a.out + "/metrics.json")) {  // left early (train.epochs_per_invocation)
    std::cerr << "run not finished; continue with: cora train --config " << a.config << " --out "
              << a.out << " --resume\n";
    return 0;
  }
  std::cout << io::read_file(a.out + "/metrics.json");
  return 0;
}

int pretrain(const TrainArgs& a) {
  config::Config c = config::load(a.config, a.overrides);
  init_logging(c.log_level);
  if (c.method != "pretrain") throw Error::key("method", "cora pretrain needs method \"pretrain\"");
  llm::pretrain(c, a.out, a.resume);
  std::cout << io::read_file(a.out + "/pretrain.json");
  return 0;
}

int eval(const EvalArgs& a) {
  init_logging("info");
  train::RunDir run(a.run, /*writer=*/false);
  config::Config c = run.read_config();
  require_method_available(c);
  auto r = c.is_cf_method() ? cf::evaluate_run(a.run, a.split) : method::evaluate_run(a.run, a.split);
  std::cout << eval::to_json(r) << "\n";
  return 0;
}

int config_keys() {
  std::cout << config::describe_keys();
  return 0;
}

}  // namespace cora::app
