// `cora report`: a self-contained HTML page (no scripts, no external fonts) from a `cora table`
// output directory: the result table, bar charts of test AUC/UAUC, the `cora probe` results of
// the runs probed, and, per method, SVG charts of training loss and validation AUC over
// optimiser steps (from each run's metrics.jsonl). Written as well-formed
// XHTML so any XML parser can check it. Torch-free.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cora/app/commands.h"
#include "cora/app/table.h"
#include "cora/core/error.h"
#include "cora/io/files.h"
#include "data/raw_input.h"

namespace cora::app {
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

struct Series {
  std::string label;
  std::vector<double> x, y;
};

std::string num(double v, int d = 3) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", d, v);
  return b;
}

// A line chart: axes, 5 ticks each, one polyline + markers per series, a legend.
std::string chart(const std::string& title, const std::vector<Series>& series) {
  const double W = 420, H = 240, L = 56, R = 12, T = 28, B = 40;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) {
        x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
      }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"" << esc(title) << "\">";
  o << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H << "\" fill=\"#ffffff\"/>";
  o << "<text x=\"" << L << "\" y=\"18\" font-size=\"13\" font-family=\"sans-serif\">" << esc(title) << "</text>";
  if (!std::isfinite(x0)) {
    o << "<text x=\"" << L << "\" y=\"" << H / 2 << "\" font-size=\"12\" font-family=\"sans-serif\">no data</text></svg>";
    return o.str();
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1e-3, y0 -= 1e-3;
  double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); };
  o << "<g stroke=\"#888888\" stroke-width=\"1\"><line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\""
    << W - R << "\" y2=\"" << H - B << "\"/><line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L
    << "\" y2=\"" << H - B << "\"/></g>";
  o << "<g font-size=\"10\" font-family=\"sans-serif\" fill=\"#333333\">";
  for (int k = 0; k <= 4; ++k) {
    double xv = x0 + (x1 - x0) * k / 4, yv = y0 + (y1 - y0) * k / 4;
    o << "<text x=\"" << num(px(xv), 1) << "\" y=\"" << H - B + 14 << "\" text-anchor=\"middle\">"
      << static_cast<long long>(std::llround(xv)) << "</text>";
    o << "<text x=\"" << L - 4 << "\" y=\"" << num(py(yv) + 3, 1) << "\" text-anchor=\"end\">" << num(yv)
      << "</text>";
    o << "<line x1=\"" << L << "\" y1=\"" << num(py(yv), 1) << "\" x2=\"" << W - R << "\" y2=\""
      << num(py(yv), 1) << "\" stroke=\"#eeeeee\"/>";
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 6 << "\" text-anchor=\"middle\">optimiser step</text></g>";
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  for (size_t s = 0; s < series.size(); ++s) {
    const char* c = colors[s % std::size(colors)];
    o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.8\" points=\"";
    for (size_t i = 0; i < series[s].x.size(); ++i)
      if (std::isfinite(series[s].y[i])) o << num(px(series[s].x[i]), 1) << "," << num(py(series[s].y[i]), 1) << " ";
    o << "\"/>";
    for (size_t i = 0; i < series[s].x.size(); ++i)
      if (std::isfinite(series[s].y[i]))
        o << "<circle cx=\"" << num(px(series[s].x[i]), 1) << "\" cy=\"" << num(py(series[s].y[i]), 1)
          << "\" r=\"2.2\" fill=\"" << c << "\"/>";
    o << "<text x=\"" << W - R - 4 << "\" y=\"" << T + 12 + 13 * s << "\" text-anchor=\"end\" font-size=\"10\" "
      << "font-family=\"sans-serif\" fill=\"" << c << "\">" << esc(series[s].label) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

// One bar per method: the test mean over seeds from 0.5 (chance) up, a whisker of ± one sample
// std when there are several seeds, the paper's number as a hollow diamond.
struct Bar {
  std::string label;
  double mean = NAN, std = NAN, paper = NAN;
  int seeds = 0;
};

std::string bar_chart(const std::string& title, const std::vector<Bar>& bars) {
  const double H = 270, L = 56, R = 90, T = 40, B = 86, slot = 64;
  const double W = L + R + slot * std::max<size_t>(bars.size(), 1);
  double y0 = 0.5, y1 = 0.5;
  for (const auto& b : bars)
    for (double v : {b.mean + (std::isfinite(b.std) ? b.std : 0.0), b.mean, b.paper})
      if (std::isfinite(v)) y0 = std::min(y0, v), y1 = std::max(y1, v);
  y1 += (y1 - y0) * 0.08 + 1e-3;
  auto py = [&](double y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"" << esc(title) << "\">";
  o << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H << "\" fill=\"#ffffff\"/>";
  o << "<text x=\"" << L << "\" y=\"18\" font-size=\"13\" font-family=\"sans-serif\">" << esc(title) << "</text>";
  o << "<g font-size=\"10\" font-family=\"sans-serif\" fill=\"#333333\">";
  for (int k = 0; k <= 4; ++k) {
    double yv = y0 + (y1 - y0) * k / 4;
    o << "<line x1=\"" << L << "\" y1=\"" << num(py(yv), 1) << "\" x2=\"" << W - R << "\" y2=\""
      << num(py(yv), 1) << "\" stroke=\"#eeeeee\"/><text x=\"" << L - 4 << "\" y=\"" << num(py(yv) + 3, 1)
      << "\" text-anchor=\"end\">" << num(yv) << "</text>";
  }
  o << "</g><line x1=\"" << L << "\" y1=\"" << num(py(y0), 1) << "\" x2=\"" << W - R << "\" y2=\""
    << num(py(y0), 1) << "\" stroke=\"#888888\"/>";
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double cx = L + slot * (i + 0.5);
    if (std::isfinite(b.mean)) {
      o << "<rect x=\"" << num(cx - slot * 0.3, 1) << "\" y=\"" << num(py(b.mean), 1) << "\" width=\""
        << num(slot * 0.6, 1) << "\" height=\"" << num(py(y0) - py(b.mean), 1)
        << "\" fill=\"#1f77b4\"><title>" << esc(b.label) << ": " << num(b.mean, 4)
        << (b.seeds > 1 && std::isfinite(b.std) ? " ± " + num(b.std, 4) : std::string()) << " ("
        << b.seeds << " seed" << (b.seeds == 1 ? "" : "s") << ")</title></rect>";
      if (b.seeds > 1 && std::isfinite(b.std) && b.std > 0) {
        const double lo = py(b.mean - b.std), hi = py(b.mean + b.std);
        o << "<g stroke=\"#222222\" stroke-width=\"1.2\"><line x1=\"" << num(cx, 1) << "\" y1=\"" << num(lo, 1)
          << "\" x2=\"" << num(cx, 1) << "\" y2=\"" << num(hi, 1) << "\"/><line x1=\"" << num(cx - 6, 1)
          << "\" y1=\"" << num(lo, 1) << "\" x2=\"" << num(cx + 6, 1) << "\" y2=\"" << num(lo, 1)
          << "\"/><line x1=\"" << num(cx - 6, 1) << "\" y1=\"" << num(hi, 1) << "\" x2=\"" << num(cx + 6, 1)
          << "\" y2=\"" << num(hi, 1) << "\"/></g>";
      }
    }
    if (std::isfinite(b.paper)) {
      const double y = py(b.paper);
      o << "<polygon points=\"" << num(cx, 1) << "," << num(y - 6, 1) << " " << num(cx + 6, 1) << ","
        << num(y, 1) << " " << num(cx, 1) << "," << num(y + 6, 1) << " " << num(cx - 6, 1) << ","
        << num(y, 1) << "\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.8\"><title>paper: "
        << num(b.paper, 4) << "</title></polygon>";
    }
    o << "<text transform=\"translate(" << num(cx + 3, 1) << "," << num(H - B + 10, 1)
      << ") rotate(35)\" font-size=\"10\" font-family=\"sans-serif\" fill=\"#333333\">" << esc(b.label)
      << "</text>";
  }
  o << "<text x=\"" << L << "\" y=\"32\" font-size=\"10\" font-family=\"sans-serif\">"
    << "<tspan fill=\"#1f77b4\">bar: mean ± std over seeds</tspan> <tspan fill=\"#d62728\">◇ paper</tspan></text>";
  o << "</svg>";
  return o.str();
}

}  // namespace

// The runs' seed directories of a row, sorted.
std::vector<std::string> seed_dirs(const std::string& dir, const std::string& row) {
  std::vector<std::string> out;
  const std::string rdir = dir + "/runs/" + table_run_slug(row);
  if (fs::is_directory(rdir))
    for (const auto& e : fs::directory_iterator(rdir)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// What tuning does to the LLM outside recommendation: each row's `cora probe` results
// (runs/<slug>/seed*/probe.json), means over the seeds probed; nothing when none was probed.
std::string probe_section(const std::string& dir, const std::vector<std::vector<std::string>>& rows) {
  struct Mean {
    double sum = 0;
    int n = 0;
    void add(const json& v) { sum += v.get<double>(), ++n; }
    std::string str(int d) const { return n ? num(sum / n, d) : "–"; }
  };
  std::ostringstream o;
  std::string note;
  std::vector<std::string> sets;  // the cloze sets of the first probe read
  for (size_t r = 1; r < rows.size(); ++r) {
    // [0] perplexity, then each set's MRR; base, with the weights (mean), worst pair.
    std::vector<Mean> base, with, worst;
    int probed = 0;
    std::string kind;
    for (const auto& sd : seed_dirs(dir, rows[r][0])) {
      if (!io::exists(sd + "/probe.json")) continue;
      const std::string path = sd + "/probe.json";
      json j = json::parse(io::read_file(path), nullptr, false);
      if (j.is_discarded() || !j.contains("base") || !j.contains("cloze") || !j["cloze"].contains("sets"))
        throw Error::at(path, 0, "not a `cora probe` result");
      if (sets.empty()) {
        for (auto it = j["cloze"]["sets"].begin(); it != j["cloze"]["sets"].end(); ++it) {
          sets.push_back(it.key());
          note += "; " + it.key() + ": " + std::to_string(it.value()["items"].get<int64_t>()) + " " +
                  it.value()["glosses"].get<std::string>();
        }
        note = std::to_string(j["text"]["tokens"].get<int64_t>()) + " held-out tokens. Cloze: WordNet " +
               "definitions cut before their hypernym, ranked among " +
               std::to_string(j["cloze"]["candidates"].size()) + " candidates (chance MRR " +
               num(j["cloze"]["chance_mrr"].get<double>()) + ")" + note;
      }
      auto add = [&](std::vector<Mean>& to, const json& s) {
        to.resize(1 + sets.size());
        to[0].add(s["perplexity"]);
        for (size_t k = 0; k < sets.size(); ++k) {
          if (!s["cloze"].contains(sets[k])) throw Error::at(path, 0, "no cloze set '" + sets[k] + "'");
          to[1 + k].add(s["cloze"][sets[k]]["mrr"]);
        }
      };
      ++probed;
      add(base, j["base"]);
      if (j.contains("tuned")) {
        kind = "LoRA applied";
        add(with, j["tuned"]);
      } else if (j.contains("pairs")) {
        kind = "CoRA weights of " + std::to_string(j["pairs"]["n"].get<int64_t>()) + " test pairs: mean (worst)";
        add(with, j["pairs"]["mean"]);
        add(worst, j["pairs"]["worst"]);
      }
    }
    if (!probed) continue;
    o << "<tr><td>" << esc(rows[r][0]) << "</td><td>" << probed << "</td>";
    for (size_t k = 0; k < base.size(); ++k) {
      const int d = k ? 3 : 2;
      o << "<td>" << base[k].str(d) << "</td><td>"
        << (with.empty() ? "–" : with[k].str(d) + (worst.empty() ? "" : " (" + worst[k].str(d) + ")")) << "</td>";
    }
    o << "<td>" << esc(kind.empty() ? "(nothing applied)" : kind) << "</td></tr>\n";
  }
  if (o.str().empty()) return "";
  std::string head = "<tr><th>method</th><th>seeds probed</th><th>perplexity: base</th><th>with the run's weights</th>";
  for (const auto& s : sets) head += "<th>" + esc(s) + " cloze MRR: base</th><th>with the run's weights</th>";
  return "<h2>What tuning costs the LLM outside recommendation (<code>cora probe</code>)</h2>\n<table>" + head +
         "<th>weights</th></tr>\n" + o.str() + "</table>\n<p>" + esc(note) + ". Means over the seeds probed.</p>\n";
}

std::string render_report(const std::string& dir) {
  const std::string csv_path = dir + "/table.csv";
  if (!io::exists(csv_path))
    throw Error::at(csv_path, 0, "missing (hint: run `cora table --config ... --out " + dir + "` first)");
  std::istringstream csv(io::read_file(csv_path));
  std::string line, title = "cora results", intro, paper;
  {
    std::istringstream md(io::exists(dir + "/table.md") ? io::read_file(dir + "/table.md") : "");
    std::string l;
    while (std::getline(md, l)) {
      if (l.rfind("# ", 0) == 0) title = l.substr(2);
      else if (l.rfind("Paper numbers: ", 0) == 0) paper = l;
      else if (!l.empty() && l[0] != '|' && intro.size() < 2000) intro += (intro.empty() ? "" : " ") + l;
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (int64_t ln = 1; std::getline(csv, line); ++ln) {
    if (line.empty()) continue;
    rows.emplace_back();
    if (!data::raw::split_csv(line, rows.back())) throw Error::at(csv_path, ln, "unbalanced quote");
  }
  if (rows.size() < 2) throw Error::at(csv_path, 0, "no rows");

  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>"
    << "<title>" << esc(title) << "</title><style>"
    << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}"
    << "table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    << "text-align:right;font-size:13px}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    << ".charts{display:flex;flex-wrap:wrap;gap:12px}.method{border:1px solid #ddd;padding:8px}"
    << "h3{margin:4px 0 8px 0;font-size:15px}p{font-size:13px}"
    << "</style></head><body>\n<h1>" << esc(title) << "</h1>\n<p>" << esc(intro) << "</p>\n";
  // The table: method, seeds, AUC ± std, UAUC ± std, paper, improvement, p, selection.
  auto cell = [](const std::string& v, int d = 4) {
    if (v.empty()) return std::string("–");
    return num(std::stod(v), d);
  };
  o << "<table><tr><th>method</th><th>seeds</th><th>test AUC</th><th>test UAUC</th><th>paper AUC</th>"
    << "<th>paper UAUC</th><th>reference vs row: AUC %</th><th>UAUC %</th><th>p (AUC)</th><th>p (UAUC)</th>"
    << "<th>selection</th></tr>\n";
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& f = rows[r];
    if (f.size() < 14) throw Error::at(csv_path, static_cast<int64_t>(r + 1), "expected 14 fields");
    auto pm = [&](const std::string& m, const std::string& s) {
      return m.empty() ? std::string("(not run)") : cell(m) + (s.empty() || f[1] == "1" ? "" : " ± " + cell(s));
    };
    o << "<tr><td>" << esc(f[0]) << "</td><td>" << esc(f[1]) << (f[1] != f[2] ? "/" + esc(f[2]) : "")
      << "</td><td>" << pm(f[3], f[4]) << "</td><td>" << pm(f[5], f[6]) << "</td><td>" << cell(f[7])
      << "</td><td>" << cell(f[8]) << "</td><td>" << cell(f[9], 1) << "</td><td>" << cell(f[10], 1)
      << "</td><td>" << cell(f[11], 3) << "</td><td>" << cell(f[12], 3) << "</td><td>"
      << esc(f[13].empty() ? "–" : "valid " + f[13]) << "</td></tr>\n";
  }
  o << "</table>\n";
  if (!paper.empty()) o << "<p>" << esc(paper) << "</p>\n";
  // Test AUC and UAUC per method: bars over seeds, the paper's numbers as markers.
  {
    auto val = [](const std::string& v) { return v.empty() ? NAN : std::stod(v); };
    std::vector<Bar> auc, uauc;
    for (size_t r = 1; r < rows.size(); ++r) {
      const auto& f = rows[r];
      const int seeds = f[1].empty() ? 0 : std::stoi(f[1]);
      auc.push_back({f[0], val(f[3]), val(f[4]), val(f[7]), seeds});
      uauc.push_back({f[0], val(f[5]), val(f[6]), val(f[8]), seeds});
    }
    o << "<h2>Test AUC and UAUC per method</h2>\n<div class=\"charts\">" << bar_chart("test AUC", auc)
      << bar_chart("test UAUC", uauc) << "</div>\n";
  }
  o << probe_section(dir, rows);
  // Charts per method, from runs/<slug>/seed*/metrics.jsonl.
  o << "<h2>Training loss and validation AUC per method</h2>\n<div class=\"charts\">\n";
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::string name = rows[r][0];
    std::vector<Series> loss, auc;
    {
      for (const auto& sd : seed_dirs(dir, name)) {
        if (!io::exists(sd + "/metrics.jsonl")) continue;
        Series l{fs::path(sd).filename().string(), {}, {}}, a = l;
        std::istringstream in(io::read_file(sd + "/metrics.jsonl"));
        std::string jl;
        while (std::getline(in, jl)) {
          if (jl.empty()) continue;
          json j = json::parse(jl, nullptr, false);
          if (j.is_discarded()) throw Error::at(sd + "/metrics.jsonl", 0, "invalid JSON line");
          double step = j.value("step", 0.0);
          l.x.push_back(step), l.y.push_back(j.value("loss", NAN));
          a.x.push_back(step), a.y.push_back(j.contains("valid") ? j["valid"].value("auc", NAN) : NAN);
        }
        loss.push_back(l), auc.push_back(a);
      }
    }
    o << "<div class=\"method\"><h3>" << esc(name) << "</h3>" << chart(name + ": training loss", loss)
      << chart(name + ": validation AUC", auc) << "</div>\n";
  }
  o << "</div>\n<p>Written by <code>cora report</code> from " << esc(dir)
    << " (self-contained: no scripts, no external resources).</p>\n</body></html>\n";
  return o.str();
}

int report(const ReportArgs& a) {
  std::string out = a.out.empty() ? a.dir + "/report.html" : a.out;
  io::write_file_atomic(out, render_report(a.dir));
  std::cout << out << "\n";
  return 0;
}

}  // namespace cora::app
