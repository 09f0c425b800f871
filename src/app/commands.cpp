// Subcommand bodies: config loading, the method recipes, printing results as JSON.
#include "cora/app/commands.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/method/pretrain.h"
#include "cora/method/registry.h"
#include "cora/method/train.h"

namespace cora::app {
using json = nlohmann::json;

int train(const TrainArgs& a) {
  config::Config c = config::load(a.config, a.overrides);
  init_logging(c.log_level);
  install_stop_signals();  // SIGTERM/SIGINT: checkpoint at the next step, exit kExitInterrupted
  if (!method::train(c, a.out, a.resume).finished) {  // left early (train.epochs_per_invocation)
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
  install_stop_signals();
  if (!method::pretrain(c, a.out, a.resume).finished) {
    std::cerr << "pretraining not finished; continue with: cora pretrain --config " << a.config
              << " --out " << a.out << " --resume\n";
    return 0;
  }
  std::cout << io::read_file(a.out + "/pretrain.json");
  return 0;
}

int eval(const EvalArgs& a) {
  init_logging("info");
  auto r = method::evaluate_run(a.run, a.split);
  std::cout << eval::to_json(r) << "\n";
  return 0;
}

int config_keys() {
  auto readers = [](const std::string& key) {
    std::string out;
    int n = 0;
    for (const auto& m : method::methods())
      if (method::reads_key(m, key)) out += (n++ ? ", " : "") + m.name;
    if (n == static_cast<int>(method::methods().size())) return std::string("all");
    return n ? out : std::string("`cora prepare`");
  };
  std::cout << config::describe_keys(method::method_names(), readers);
  return 0;
}

}  // namespace cora::app
