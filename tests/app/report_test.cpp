// `cora report`: well-formed XHTML + SVG with every method's row and charts, self-contained.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "cora/app/table.h"
#include "cora/core/error.h"
#include "test_util.h"

namespace cora::app {
namespace {
using cora::testing::TempDir;
using cora::testing::write_text;

// A strict little XML well-formedness check: balanced, properly nested tags, quoted attributes,
// no stray '<' or '&'. Returns "" or the first problem.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> stack;
  size_t i = 0;
  if (s.rfind("<!DOCTYPE html>", 0) == 0) i = s.find('>') + 1;
  while (i < s.size()) {
    if (s[i] == '&') {
      size_t semi = s.find(';', i);
      std::string ent = s.substr(i, semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;") return "bad entity at " + std::to_string(i);
      i = semi + 1;
      continue;
    }
    if (s[i] != '<') {
      if (s[i] == '>') return "stray '>' at " + std::to_string(i);
      ++i;
      continue;
    }
    size_t end = i + 1;
    char quote = 0;
    while (end < s.size() && (quote || s[end] != '>')) {
      if (quote && s[end] == quote) quote = 0;
      else if (!quote && (s[end] == '"' || s[end] == '\'')) quote = s[end];
      else if (!quote && s[end] == '<') return "'<' inside a tag at " + std::to_string(end);
      ++end;
    }
    if (end >= s.size()) return "unterminated tag";
    std::string tag = s.substr(i + 1, end - i - 1);
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return "mismatched </" + name + "> at " + std::to_string(i);
      stack.pop_back();
    } else if (tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
    }
    i = end + 1;
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

TEST(Report, WellFormedWithEveryMethodAndItsCharts) {
  TempDir t;
  write_text(t.file("table.md"), "# Demo <table> & co\n\nA note.\n\n| x |\n\nPaper numbers: CoRA Table 1\n");
  write_text(t.file("table.csv"),
             "method,seeds_done,seeds_planned,auc_mean,auc_std,uauc_mean,uauc_std,paper_auc,paper_uauc,"
             "ref_auc_improvement_pct,ref_uauc_improvement_pct,p_auc,p_uauc,selection_metric\n"
             "MF,1,1,0.650000,0.000000,0.610000,0.000000,0.648600,0.639600,5.2,3.1,,,auc\n"
             "\"CoRA-MF, random-init LLM\",0,1,,,,,,,,,,,\n"
             "CoRA-MF,1,1,0.690000,0.000000,0.630000,0.000000,0.736100,0.688400,,,,,auc\n");
  write_text(t.file("runs/mf/seed0/metrics.jsonl"),
             "{\"step\": 10, \"epoch\": 0, \"loss\": 0.69, \"lr\": 0.001, \"valid\": {\"auc\": 0.55, \"uauc\": 0.5}}\n"
             "{\"step\": 20, \"epoch\": 1, \"loss\": 0.62, \"lr\": 0.001, \"valid\": {\"auc\": 0.61, \"uauc\": 0.55}}\n");
  write_text(t.file("runs/cora_mf/seed0/metrics.jsonl"),
             "{\"step\": 50, \"epoch\": 0, \"loss\": 0.66, \"lr\": 0.001, \"valid\": {\"auc\": 0.66, \"uauc\": 0.6}}\n");
  std::string html = render_report(t.path());
  EXPECT_EQ(html.find("cora probe"), std::string::npos);  // no run probed: no section
  // `cora probe` results of two seeds of a row: means over the seeds, CoRA's worst pair beside.
  for (int s = 0; s < 2; ++s)
    write_text(t.file("runs/cora_mf/seed" + std::to_string(s) + "/probe.json"),
               R"({"base": {"perplexity": 70.0, "cloze": {"learned": {"mrr": 0.30}}}, "text": {"tokens": 8192},
                   "cloze": {"candidates": ["a", "b"], "chance_mrr": 0.75,
                             "sets": {"learned": {"items": 300, "glosses": "seen"}}},
                   "pairs": {"n": 100, "mean": {"perplexity": )" + std::to_string(71 + s) +
                   R"(, "cloze": {"learned": {"mrr": 0.29}}}, "worst": {"perplexity": 80.0, "cloze": {"learned": {"mrr": 0.2}}}}})");
  html = render_report(t.path());
  EXPECT_EQ(xml_problem(html), "");
  EXPECT_NE(html.find("<tr><td>CoRA-MF</td><td>2</td><td>70.00</td><td>71.50 (80.00)</td><td>0.300</td>"
                      "<td>0.290 (0.200)</td><td>CoRA weights of 100 test pairs: mean (worst)</td></tr>"),
            std::string::npos) << html;
  EXPECT_NE(html.find("<th>learned cloze MRR: base</th>"), std::string::npos);
  write_text(t.file("runs/mf/seed0/probe.json"), "{}");
  EXPECT_THROW(render_report(t.path()), Error);
  std::filesystem::remove(t.file("runs/mf/seed0/probe.json"));
  EXPECT_NE(html.find("<title>Demo &lt;table&gt; &amp; co</title>"), std::string::npos);
  for (const char* m : {"<td>MF</td>", "<td>CoRA-MF</td>", "<td>CoRA-MF, random-init LLM</td>"})
    EXPECT_NE(html.find(m), std::string::npos) << m;
  EXPECT_NE(html.find("0.6500"), std::string::npos);
  EXPECT_NE(html.find("(not run)"), std::string::npos);
  // Two charts per method; runs with data draw polylines; nothing external is referenced.
  size_t svgs = 0, lines = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  for (size_t p = html.find("<polyline"); p != std::string::npos; p = html.find("<polyline", p + 1)) ++lines;
  EXPECT_EQ(svgs, 8u);  // + the test AUC and UAUC bar charts
  EXPECT_EQ(lines, 4u);
  // Bars for the two methods that ran (none for the one that did not), paper markers for both.
  size_t bars = 0, diamonds = 0;
  for (size_t p = html.find("<rect x=\"", html.find("test AUC\"")); p != std::string::npos && p < html.find("test UAUC\"");
       p = html.find("<rect x=\"", p + 1))
    bars += html.compare(p, 13, "<rect x=\"0\" y") != 0;
  for (size_t p = html.find("<polygon"); p != std::string::npos; p = html.find("<polygon", p + 1)) ++diamonds;
  EXPECT_EQ(bars, 2u);
  EXPECT_EQ(diamonds, 4u);
  EXPECT_NE(html.find("<title>MF: 0.6500 (1 seed)</title>"), std::string::npos);
  EXPECT_NE(html.find("<title>paper: 0.7361</title>"), std::string::npos);
  EXPECT_NE(html.find("CoRA-MF: validation AUC"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/1999/xhtml"));
  EXPECT_EQ(xml_problem("<a><b></a></b>").substr(0, 10), "mismatched");
}

}  // namespace
}  // namespace cora::app
