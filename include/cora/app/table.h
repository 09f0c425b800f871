// `cora table`: every row of a results table (CF baselines, ICL, TALLRec, CoLLM, CoRA and
// ablations) over N seeds, reusing finished runs and resuming interrupted ones; writes table.md
// and table.csv with mean ± std, the paper's numbers, the reference row's improvement over each
// row and a paired t-test over seeds. Spec and rendering are torch-free and tested directly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cora::app {

/// One row: a config plus overrides; `runs` maps config keys to rows whose run directory (same
/// seed) they take, e.g. {"cf.run": "MF", "collm.tallrec_run": "TALLRec", "llm.dir": "LLM"}.
struct TableRow {
  std::string name;
  std::string config;
  std::string paper;                    ///< row name in the paper file ("" = none)
  std::vector<std::string> set;         ///< key=value overrides for this row
  std::map<std::string, std::string> runs;
  bool once = false;                    ///< one run (first seed) shared by every seed
  bool show = true;                     ///< false: a dependency only (e.g. the pretrained LLM)
};

struct TableSpec {
  std::string source;                   ///< the spec file
  std::string title, note;
  std::vector<uint64_t> seeds{0};
  std::vector<std::string> set;         ///< overrides for every row (before the row's own)
  std::string reference;                ///< row compared against every other row
  std::string paper_file, paper_dataset;
  std::vector<TableRow> rows;
};

/// Parses a table spec (unknown keys, unknown dependency rows and duplicates are errors naming
/// the file and key). Relative paths resolve against the current directory.
TableSpec load_table(const std::string& path);

/// One row's finished runs.
struct RowResult {
  std::string name;
  std::vector<uint64_t> seeds;          ///< seeds with a finished run
  std::vector<double> auc, uauc;        ///< test metrics, by seed
  std::string selection_metric;
  int64_t planned = 0;                  ///< runs the spec asks for
  bool has_paper = false;
  double paper_auc = 0, paper_uauc = 0;
};

struct RenderedTable {
  std::string markdown, csv;
};
RenderedTable render_table(const TableSpec& spec, const std::vector<RowResult>& rows,
                           const std::string& paper_source);

/// The directory name of a row's runs: OUT/runs/<slug>/seed<k>.
std::string table_run_slug(const std::string& row_name);

/// report.html's text for a `cora table` output directory (table.csv, table.md, runs/).
std::string render_report(const std::string& dir);

struct TableArgs {
  std::string config;
  std::string out;
  std::vector<std::string> overrides;  ///< applied to every row, after the spec's own
  bool dry_run = false;
  bool collect = false;  ///< write table.md/table.csv from the finished runs; train nothing
};
int table(const TableArgs& a);

}  // namespace cora::app
