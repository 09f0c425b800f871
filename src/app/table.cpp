// `cora table`: spec parsing, the run plan (reuse / resume / new), the runs, and rendering.
#include "cora/app/table.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>

#include "cora/app/commands.h"
#include "cora/config/config.h"
#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/eval/stats.h"
#include "cora/io/files.h"
#include "cora/method/pretrain.h"
#include "cora/method/registry.h"
#include "cora/method/train.h"
#include "cora/train/dist.h"

namespace cora::app {
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string slug_of(const std::string& name) {
  std::string s;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) s += static_cast<char>(std::tolower(c));
    else if (!s.empty() && s.back() != '_') s += '_';
  }
  while (!s.empty() && s.back() == '_') s.pop_back();
  return s.empty() ? "row" : s;
}

void check_keys(const json& j, const std::set<std::string>& allowed, const std::string& where,
                const std::string& source) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!allowed.count(it.key()))
      throw Error::at(source, 0, "unknown key '" + where + it.key() + "'");
}

std::vector<std::string> strings(const json& j, const std::string& key, const std::string& source) {
  if (!j.is_array()) throw Error::at(source, 0, "'" + key + "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& v : j) {
    if (!v.is_string()) throw Error::at(source, 0, "'" + key + "' must be a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::string fmt(double v, int digits = 4) {
  if (!std::isfinite(v)) return "–";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::string fmt_p(double p) {
  if (!std::isfinite(p)) return "–";
  char b[32];
  std::snprintf(b, sizeof b, p < 0.001 ? "%.1e" : "%.3f", p);
  return b;
}

}  // namespace

std::string table_run_slug(const std::string& row_name) { return slug_of(row_name); }

TableSpec load_table(const std::string& path) {
  std::string text = io::read_file(path);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error::at(path, 0, "not a JSON object");
  check_keys(j, {"title", "note", "seeds", "set", "reference", "paper", "rows"}, "", path);
  TableSpec s;
  s.source = path;
  s.title = j.value("title", fs::path(path).stem().string());
  s.note = j.value("note", "");
  if (j.contains("seeds")) {
    s.seeds.clear();
    for (const auto& v : j["seeds"]) {
      if (!v.is_number_unsigned()) throw Error::at(path, 0, "'seeds' must be non-negative integers");
      s.seeds.push_back(v.get<uint64_t>());
    }
    if (s.seeds.empty()) throw Error::at(path, 0, "'seeds' is empty");
  }
  if (j.contains("set")) s.set = strings(j["set"], "set", path);
  s.reference = j.value("reference", "");
  if (j.contains("paper")) {
    check_keys(j["paper"], {"file", "dataset"}, "paper.", path);
    s.paper_file = io::absolute(j["paper"].value("file", ""));
    s.paper_dataset = j["paper"].value("dataset", "");
  }
  if (!j.contains("rows") || !j["rows"].is_array() || j["rows"].empty())
    throw Error::at(path, 0, "'rows' must be a non-empty list");
  std::set<std::string> names;
  for (size_t k = 0; k < j["rows"].size(); ++k) {
    const json& r = j["rows"][k];
    std::string where = "rows[" + std::to_string(k) + "].";
    if (!r.is_object()) throw Error::at(path, 0, where + " must be an object");
    check_keys(r, {"name", "config", "paper", "set", "runs", "once", "show"}, where, path);
    TableRow row;
    row.name = r.value("name", "");
    row.config = r.value("config", "");
    if (row.name.empty() || row.config.empty())
      throw Error::at(path, 0, where + "name and " + where + "config are required");
    if (!names.insert(row.name).second) throw Error::at(path, 0, "duplicate row name '" + row.name + "'");
    row.config = io::absolute(row.config);
    row.paper = r.value("paper", "");
    if (r.contains("set")) row.set = strings(r["set"], where + "set", path);
    if (r.contains("runs")) {
      for (auto it = r["runs"].begin(); it != r["runs"].end(); ++it) {
        if (!it->is_string()) throw Error::at(path, 0, where + "runs." + it.key() + " must name a row");
        std::string dep = it->get<std::string>();
        if (!names.count(dep) || dep == row.name)
          throw Error::at(path, 0, where + "runs." + it.key() + ": '" + dep +
                                       "' is not an earlier row");
        row.runs[it.key()] = dep;
      }
    }
    row.once = r.value("once", false);
    row.show = r.value("show", true);
    s.rows.push_back(std::move(row));
  }
  if (!s.reference.empty() && !names.count(s.reference))
    throw Error::at(path, 0, "reference '" + s.reference + "' is not a row");
  return s;
}

RenderedTable render_table(const TableSpec& spec, const std::vector<RowResult>& rows,
                           const std::string& paper_source) {
  const RowResult* ref = nullptr;
  for (const auto& r : rows)
    if (r.name == spec.reference) ref = &r;
  std::ostringstream md, csv;
  md << "# " << spec.title << "\n\n";
  if (!spec.note.empty()) md << spec.note << "\n\n";
  std::string rn = spec.reference.empty() ? "reference" : spec.reference;
  md << "Test set; mean ± sample std over seeds. \"" << rn
     << " vs row\": relative improvement of " << rn
     << "'s mean over the row's, and the two-sided p-value of a paired t-test over the seeds "
        "both finished.\n\n";
  md << "| method | seeds | AUC | UAUC | paper AUC | paper UAUC | " << rn << " vs row: AUC | UAUC | p (AUC) | p (UAUC) | selection |\n";
  md << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  csv << "method,seeds_done,seeds_planned,auc_mean,auc_std,uauc_mean,uauc_std,paper_auc,paper_uauc,"
         "ref_auc_improvement_pct,ref_uauc_improvement_pct,p_auc,p_uauc,selection_metric\n";
  for (const auto& r : rows) {
    double am = eval::mean(r.auc), as = eval::sample_std(r.auc);
    double um = eval::mean(r.uauc), us = eval::sample_std(r.uauc);
    double ia = NAN, iu = NAN, pa = NAN, pu = NAN;
    if (ref && &r != ref && !r.auc.empty() && !ref->auc.empty()) {
      ia = (eval::mean(ref->auc) / am - 1) * 100;
      iu = (eval::mean(ref->uauc) / um - 1) * 100;
      std::vector<double> a1, a2, u1, u2;  // pairs by seed
      for (size_t i = 0; i < ref->seeds.size(); ++i)
        for (size_t k = 0; k < r.seeds.size(); ++k)
          if (ref->seeds[i] == r.seeds[k]) {
            a1.push_back(ref->auc[i]), a2.push_back(r.auc[k]);
            u1.push_back(ref->uauc[i]), u2.push_back(r.uauc[k]);
          }
      pa = eval::paired_t_test(a1, a2).p;
      pu = eval::paired_t_test(u1, u2).p;
    }
    auto pm = [](double m, double s, size_t n) {
      if (n == 0) return std::string("(not run)");
      return fmt(m) + (n > 1 ? " ± " + fmt(s) : "");
    };
    auto pct = [](double v) {
      if (!std::isfinite(v)) return std::string("–");
      char b[32];
      std::snprintf(b, sizeof b, "%+.1f%%", v);
      return std::string(b);
    };
    md << "| " << r.name << " | " << r.seeds.size() << (static_cast<int64_t>(r.seeds.size()) < r.planned ? "/" + std::to_string(r.planned) : "")
       << " | " << pm(am, as, r.auc.size()) << " | " << pm(um, us, r.uauc.size()) << " | "
       << (r.has_paper ? fmt(r.paper_auc) : "–") << " | " << (r.has_paper ? fmt(r.paper_uauc) : "–")
       << " | " << (&r == ref ? "(reference)" : pct(ia)) << " | " << (&r == ref ? "" : pct(iu))
       << " | " << fmt_p(pa) << " | " << fmt_p(pu) << " | " << (r.selection_metric.empty() ? "–" : "valid " + r.selection_metric) << " |\n";
    auto num = [](double v) { return std::isfinite(v) ? fmt(v, 6) : std::string(); };
    std::string name = r.name;
    if (name.find_first_of(",\"") != std::string::npos) {
      std::string q;
      for (char c : name) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      name = "\"" + q + "\"";
    }
    csv << name << "," << r.seeds.size() << "," << r.planned << "," << num(am) << "," << num(as) << ","
        << num(um) << "," << num(us) << "," << (r.has_paper ? num(r.paper_auc) : "") << ","
        << (r.has_paper ? num(r.paper_uauc) : "") << "," << num(ia) << "," << num(iu) << ","
        << num(pa) << "," << num(pu) << "," << r.selection_metric << "\n";
  }
  if (!paper_source.empty()) md << "\nPaper numbers: " << paper_source << "\n";
  return {md.str(), csv.str()};
}

namespace {

struct PlannedRun {
  const TableRow* row;
  uint64_t seed;
  std::string dir;
  config::Config cfg;
  std::string status;  // done | resume | new
};

bool finished(const PlannedRun& p) {
  const bool model_dir = method::find_method(p.cfg.method).kind == method::Kind::pretrain;
  return io::exists(p.dir + (model_dir ? "/pretrain.json" : "/metrics.json"));
}

std::string run_dir(const std::string& out, const TableRow& row, uint64_t seed) {
  return out + "/runs/" + slug_of(row.name) + "/seed" + std::to_string(seed);
}

// The first key that `method` reads whose value differs between two resolved configs ("" = same):
// keys the method does not read cannot change its result.
std::string first_difference(const json& a, const json& b, const method::MethodInfo& method,
                             const std::string& prefix = "") {
  for (auto it = a.begin(); it != a.end(); ++it) {
    std::string k = prefix + it.key();
    if (it->is_object()) {
      std::string d = first_difference(*it, b.contains(it.key()) ? b[it.key()] : json::object(),
                                       method, k + ".");
      if (!d.empty()) return d;
    } else if (method::reads_key(method, k) &&
               (!b.contains(it.key()) || *it != b[it.key()])) {
      return k;
    }
  }
  return "";
}

std::string hms(double s) {
  char b[32];
  int64_t t = static_cast<int64_t>(s);
  if (t >= 3600)
    std::snprintf(b, sizeof b, "%lldh%02lldm", static_cast<long long>(t / 3600), static_cast<long long>(t / 60 % 60));
  else
    std::snprintf(b, sizeof b, "%lldm%02llds", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  return b;
}

}  // namespace

int table(const TableArgs& a) {
  init_logging("info");
  if (!a.dry_run) install_stop_signals();  // a stopped row resumes when the table runs again
  if (!a.dry_run) dist::init_from_env();   // under torchrun every row trains data-parallel
  const bool main = dist::is_main();
  std::ostringstream quiet;                // the plan and progress lines: rank 0's
  std::ostream& err = main ? std::cerr : quiet;
  TableSpec spec = load_table(a.config);
  const std::string out = io::absolute(a.out);

  // Paper numbers: {"source": "...", "datasets": {"<dataset>": {"<row>": [auc, uauc]}}}.
  json paper;
  std::string paper_source;
  if (!spec.paper_file.empty()) {
    paper = json::parse(io::read_file(spec.paper_file), nullptr, false);
    if (paper.is_discarded() || !paper.contains("datasets") || !paper["datasets"].contains(spec.paper_dataset))
      throw Error::at(spec.paper_file, 0, "no dataset '" + spec.paper_dataset + "' under \"datasets\"");
    paper_source = paper.value("source", spec.paper_file);
  }

  // The plan: every (row, seed), its overrides, its run directory and status.
  std::vector<PlannedRun> plan;
  std::vector<std::string> problems;
  for (const auto& row : spec.rows) {
    std::vector<uint64_t> seeds = row.once ? std::vector<uint64_t>{spec.seeds.front()} : spec.seeds;
    for (uint64_t seed : seeds) {
      std::vector<std::string> ov = spec.set;
      ov.insert(ov.end(), row.set.begin(), row.set.end());
      ov.insert(ov.end(), a.overrides.begin(), a.overrides.end());
      ov.push_back("train.seed=" + std::to_string(seed));
      for (const auto& [key, dep] : row.runs) {
        const TableRow* d = nullptr;
        for (const auto& r : spec.rows)
          if (r.name == dep) d = &r;
        ov.push_back(key + "=" + run_dir(out, *d, d->once ? spec.seeds.front() : seed));
      }
      PlannedRun p{&row, seed, run_dir(out, row, seed), {}, "new"};
      try {
        p.cfg = config::load(row.config, ov);
      } catch (const std::exception& e) {
        problems.push_back(row.name + " (seed " + std::to_string(seed) + "): " + e.what());
        continue;
      }
      if (finished(p)) p.status = "done";
      else if (io::exists(p.dir + "/ckpt/progress.json")) p.status = "resume";
      p.status = dist::broadcast_string(p.status);  // rank 0's files decide
      const auto& names = method::method_names();
      const bool known = std::find(names.begin(), names.end(), p.cfg.method) != names.end();
      if (known && p.status != "new" && io::exists(p.dir + "/config.resolved.json")) {
        json was = json::parse(io::read_file(p.dir + "/config.resolved.json"), nullptr, false);
        json now = json::parse(config::to_json(p.cfg));
        std::string diff = was.is_discarded() ? "config.resolved.json"
                           : first_difference(now, was, method::find_method(p.cfg.method));
        if (!diff.empty())
          problems.push_back(row.name + " (seed " + std::to_string(seed) + "): " + p.dir +
                             " was run with a different '" + diff +
                             "' (remove it, or choose another --out)");
      }
      // Inputs that must exist now (not produced by an earlier row), as the registry lists them.
      auto produced = [&](const std::string& key) { return row.runs.count(key) > 0; };
      const auto& c = p.cfg;
      const method::MethodInfo* info = nullptr;
      try {
        info = &method::find_method(c.method);
        // Table-wide --set keys (the spec's "set" and the command line's) reach every row: a
        // row whose method does not read one says so once and runs without it.
        std::vector<std::string> own;
        for (const auto& k : p.cfg.given) {
          bool wide = false;
          for (const auto& o : spec.set) wide |= o.substr(0, o.find('=')) == k;
          for (const auto& o : a.overrides) wide |= o.substr(0, o.find('=')) == k;
          if (wide && !method::reads_key(*info, k)) {
            if (seed == seeds.front())
              spdlog::warn("table: row '{}' ({}) does not read the table-wide key {}", row.name,
                           c.method, k);
          } else {
            own.push_back(k);
          }
        }
        p.cfg.given = own;
        method::check_keys(c);
      } catch (const std::exception& e) {
        problems.push_back(row.name + ": " + e.what());
      }
      if (!info) continue;
      if (info->kind != method::Kind::pretrain && !io::exists(c.data.dir + "/train.tsv"))
        problems.push_back(row.name + ": data.dir " + c.data.dir + " has no train.tsv");
      if (info->kind == method::Kind::pretrain && c.pretrain.items && !io::exists(c.data.dir + "/items.tsv"))
        problems.push_back(row.name + ": data.dir " + c.data.dir + " has no items.tsv");
      auto inputs = info->requires_inputs;
      for (const auto& key : info->optional_inputs)
        if (!c.collm.tallrec_run.empty() && key == "collm.tallrec_run") inputs.push_back(key);
      for (const auto& key : inputs) {
        if (produced(key)) continue;
        if (key == "llm.dir" &&
            (!io::exists(c.llm.dir + "/config.json") ||
             (!io::exists(c.llm.dir + "/tokenizer.model") && !io::exists(c.llm.dir + "/tokenizer.json"))))
          problems.push_back(row.name + ": llm.dir " + c.llm.dir +
                             " needs config.json and tokenizer.model or tokenizer.json (a Hugging Face checkpoint)");
        if (key == "cf.run" && !io::exists(c.cf.run + "/metrics.json"))
          problems.push_back(row.name + ": cf.run " + (c.cf.run.empty() ? "(unset)" : c.cf.run) +
                             " is not a finished CF run (or name a CF row in \"runs\")");
        if (key == "collm.tallrec_run" && !io::exists(c.collm.tallrec_run + "/metrics.json"))
          problems.push_back(row.name + ": collm.tallrec_run " + c.collm.tallrec_run +
                             " is not a finished run");
      }
      plan.push_back(std::move(p));
    }
  }
  if (!spec.paper_file.empty())
    for (const auto& row : spec.rows)
      if (!row.paper.empty() && !paper["datasets"][spec.paper_dataset].contains(row.paper))
        problems.push_back(row.name + ": paper row '" + row.paper + "' is not in " + spec.paper_file);

  // Seed by seed (every row of the first seed, then of the next): an interrupted table has
  // whole seeds done, so its mean, std and p-values are over complete seeds. Rows run once that
  // no other row reads (extras such as a longer schedule) come after every seed.
  std::set<std::string> needed;
  for (const auto& row : spec.rows)
    for (const auto& [key, dep] : row.runs) needed.insert(dep);
  auto rank = [&](const PlannedRun& p) {
    if (p.row->once && !needed.count(p.row->name)) return static_cast<std::ptrdiff_t>(spec.seeds.size());
    return std::find(spec.seeds.begin(), spec.seeds.end(), p.seed) - spec.seeds.begin();
  };
  std::stable_sort(plan.begin(), plan.end(),
                   [&](const PlannedRun& x, const PlannedRun& y) { return rank(x) < rank(y); });
  err << "table " << spec.title << ": " << plan.size() << " runs over seeds [";
  for (size_t i = 0; i < spec.seeds.size(); ++i) err << (i ? ", " : "") << spec.seeds[i];
  err << "] -> " << out << "\n";
  for (const auto& p : plan)
    err << "  " << p.status << "\t" << p.row->name << " seed " << p.seed << "\t" << p.cfg.method
              << "\t" << p.dir << "\n";
  if (!problems.empty()) {
    std::string msg = a.config + ": " + std::to_string(problems.size()) + " problem(s):";
    for (const auto& s : problems) msg += "\n  - " + s;
    throw Error(msg);
  }
  if (a.dry_run) {
    if (main) std::cout << "dry run: every input checked; " << plan.size() << " runs planned\n";
    return 0;
  }

  // The runs, in order (dependencies come first by construction).
  if (main) io::make_dirs(out);
  const double t0 = now_seconds();
  // Time left: each remaining run is estimated by the mean time of finished runs of its row,
  // else of its method here; runs without any estimate are counted separately.
  std::map<std::string, std::pair<double, int>> by_row, by_method;
  bool stopped = false;
  for (size_t k = 0; k < plan.size() && !a.collect; ++k) {
    auto& p = plan[k];
    if (p.status == "done") continue;
    double left = 0;
    int unknown = 0;
    for (size_t j = k; j < plan.size(); ++j) {
      if (plan[j].status == "done") continue;
      auto r = by_row.find(plan[j].row->name);
      auto m = by_method.find(plan[j].cfg.method);
      if (r != by_row.end()) left += r->second.first / r->second.second;
      else if (m != by_method.end()) left += m->second.first / m->second.second;
      else ++unknown;
    }
    err << "[table " << k + 1 << "/" << plan.size() << "] " << p.row->name << " seed " << p.seed
              << " (" << p.status << ") | elapsed " << hms(now_seconds() - t0) << " | about "
              << hms(left) << " left"
              << (unknown ? " + " + std::to_string(unknown) + " run(s) not yet estimated" : std::string())
              << "\n";
    double ts = now_seconds();
    const bool resume = p.status == "resume";
    if (method::find_method(p.cfg.method).kind == method::Kind::pretrain)
      method::pretrain(p.cfg, p.dir, resume);
    else
      method::train(p.cfg, p.dir, resume);
    dist::barrier();  // rank 0 has written the run's files
    const double took = now_seconds() - ts;
    by_row[p.row->name].first += took, by_row[p.row->name].second += 1;
    by_method[p.cfg.method].first += took, by_method[p.cfg.method].second += 1;
    if (!finished(p)) {  // left early (train.epochs_per_invocation)
      err << "table: " << p.row->name << " seed " << p.seed
                << " stopped before the end; run `cora table` again to continue\n";
      stopped = true;
      break;
    }
  }

  // Aggregate what is finished.
  std::vector<RowResult> results;
  for (const auto& row : spec.rows) {
    if (!row.show) continue;
    RowResult r;
    r.name = row.name;
    for (const auto& p : plan) {
      if (p.row != &row) continue;
      ++r.planned;
      if (!io::exists(p.dir + "/metrics.json")) continue;
      json m = json::parse(io::read_file(p.dir + "/metrics.json"));
      r.seeds.push_back(p.seed);
      r.auc.push_back(m["test"]["auc"].get<double>());
      r.uauc.push_back(m["test"]["uauc"].get<double>());
      r.selection_metric = m.value("selection_metric", "");
    }
    if (!row.paper.empty() && !spec.paper_file.empty()) {
      const json& v = paper["datasets"][spec.paper_dataset][row.paper];
      r.has_paper = true;
      r.paper_auc = v.at(0).get<double>();
      r.paper_uauc = v.at(1).get<double>();
    }
    results.push_back(std::move(r));
  }
  if (!main) return 0;
  auto t = render_table(spec, results, paper_source);
  io::write_file_atomic(out + "/table.md", t.markdown);
  io::write_file_atomic(out + "/table.csv", t.csv);
  std::cout << t.markdown;
  std::cerr << "table: wrote " << out << "/table.md and table.csv in " << hms(now_seconds() - t0)
            << (stopped ? " (partial)" : "") << "\n";
  return 0;
}

}  // namespace cora::app
