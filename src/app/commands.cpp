// Subcommand bodies: config loading, the method recipes, printing results as JSON.
#include "cora/app/commands.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/method/pretrain.h"
#include "cora/method/probe.h"
#include "cora/method/registry.h"
#include "cora/method/train.h"
#include "cora/train/dist.h"

namespace cora::app {
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Under torchrun: joins the job; a restarted job (--max-restarts) resumes from its checkpoint.
bool join_and_resume(bool resume) {
  const auto& env = dist::init_from_env();
  if (env.restart_count > 0 && !resume) {
    if (dist::is_main())
      spdlog::warn("torchrun restart {}: resuming from the last checkpoint", env.restart_count);
    return true;
  }
  return resume;
}

}  // namespace

int train(const TrainArgs& a) {
  config::Config c = config::load(a.config, a.overrides);
  init_logging(c.log_level);
  install_stop_signals();  // SIGTERM/SIGINT: checkpoint at the next step, exit kExitInterrupted
  const bool resume = join_and_resume(a.resume);
  if (!method::train(c, a.out, resume).finished) {  // left early (train.epochs_per_invocation)
    if (!dist::is_main()) return 0;
    std::cerr << "run not finished; continue with: cora train --config " << a.config << " --out "
              << a.out << " --resume\n";
    return 0;
  }
  if (dist::is_main()) std::cout << io::read_file(a.out + "/metrics.json");
  return 0;
}

int pretrain(const TrainArgs& a) {
  config::Config c = config::load(a.config, a.overrides);
  init_logging(c.log_level);
  install_stop_signals();
  const bool resume = join_and_resume(a.resume);
  if (!method::pretrain(c, a.out, resume).finished) {
    if (!dist::is_main()) return 0;
    std::cerr << "pretraining not finished; continue with: cora pretrain --config " << a.config
              << " --out " << a.out << " --resume\n";
    return 0;
  }
  if (dist::is_main()) std::cout << io::read_file(a.out + "/pretrain.json");
  return 0;
}

int eval(const EvalArgs& a) {
  init_logging("info");
  dist::init_from_env();
  auto r = method::evaluate_run(a.run, a.split);
  if (dist::is_main()) std::cout << eval::to_json(r) << "\n";
  return 0;
}

int probe(const ProbeArgs& a) {
  init_logging("info");
  if (!a.table.empty()) {
    if (!a.o.run.empty() || !a.o.llm.empty() || !a.out.empty())
      throw UsageError("--table probes every run of the table: no --run, --llm or --out with it");
    if (!fs::is_directory(a.table + "/runs"))
      throw Error(a.table + " has no runs/ (not a `cora table` output directory)");
    std::vector<std::string> runs;
    for (const auto& row : fs::directory_iterator(a.table + "/runs"))
      for (const auto& seed : fs::directory_iterator(row.path())) runs.push_back(seed.path().string());
    std::sort(runs.begin(), runs.end());
    int probed = 0;
    for (const auto& run : runs) {
      if (!io::exists(run + "/metrics.json") || !io::exists(run + "/config.resolved.json")) continue;
      json cfg = json::parse(io::read_file(run + "/config.resolved.json"), nullptr, false);
      const std::string m = cfg.is_object() ? cfg.value("method", "") : "";
      const auto& names = method::method_names();
      if (std::find(names.begin(), names.end(), m) == names.end() ||
          method::find_method(m).kind != method::Kind::llm)
        continue;
      if (io::exists(run + "/probe.json")) {
        std::cerr << run << ": probed before (remove probe.json to probe again)\n";
        continue;
      }
      method::ProbeOptions o = a.o;
      o.run = run;
      auto j = method::probe(o);
      std::cerr << run << "\n" << method::probe_table(j) << "\n";
      std::cout << j.dump() << "\n";
      ++probed;
    }
    std::cerr << probed << " run(s) probed; `cora report --table " << a.table << "` shows them\n";
    return 0;
  }
  auto j = method::probe(a.o);
  if (!a.out.empty()) io::write_file_atomic(a.out, j.dump(2) + "\n");
  std::cerr << method::probe_table(j);
  std::cout << j.dump(2) << "\n";
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
