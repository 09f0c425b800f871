// AUC (rank statistic with average ranks for ties) and unweighted per-user UAUC.
#include "cora/eval/metrics.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <vector>

#include "cora/core/error.h"
#include "cora/io/files.h"

namespace cora::eval {
namespace {
using json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// AUC over the rows listed in idx (indices into scores/labels). Sorts idx in place.
double auc_of(std::vector<int64_t>& idx, std::span<const float> s, std::span<const float> y) {
  std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return s[a] < s[b]; });
  double n_pos = 0, rank_sum = 0;
  size_t i = 0;
  while (i < idx.size()) {
    size_t j = i;
    double pos_in_group = 0;
    while (j < idx.size() && s[idx[j]] == s[idx[i]]) pos_in_group += y[idx[j++]] > 0.5f;
    // Ranks i+1 .. j share their average (ties count half).
    rank_sum += pos_in_group * (static_cast<double>(i + 1 + j) / 2.0);
    n_pos += pos_in_group;
    i = j;
  }
  double n_neg = static_cast<double>(idx.size()) - n_pos;
  if (n_pos == 0 || n_neg == 0) return kNaN;
  return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg);
}

void check_finite(std::span<const float> s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (!std::isfinite(s[i]))
      throw Error("score of row " + std::to_string(i) + " is not finite (" +
                  std::to_string(s[i]) + "); hint: the model diverged, lower train.lr");
}

json num(double v) { return std::isnan(v) ? json(nullptr) : json(v); }
double num_from(const json& j) { return j.is_null() ? kNaN : j.get<double>(); }

SubsetMetrics subset(const data::Split& sp, std::span<const float> scores, uint8_t warm) {
  std::vector<int64_t> u;
  std::vector<float> s, y;
  for (size_t r = 0; r < sp.size(); ++r)
    if (sp.not_cold[r] == warm) {
      u.push_back(sp.uid[r]);
      s.push_back(scores[r]);
      y.push_back(sp.label[r]);
    }
  SubsetMetrics m;
  m.n_rows = static_cast<int64_t>(u.size());
  m.auc = auc(s, y);
  auto ua = uauc(u, s, y);
  m.uauc = ua.uauc;
  m.uauc_users = ua.users;
  return m;
}

json subset_json(const SubsetMetrics& m) {
  return {{"n_rows", m.n_rows}, {"auc", num(m.auc)}, {"uauc", num(m.uauc)},
          {"uauc_users", m.uauc_users}};
}
SubsetMetrics subset_from(const json& j) {
  return {j.at("n_rows").get<int64_t>(), num_from(j.at("auc")), num_from(j.at("uauc")),
          j.at("uauc_users").get<int64_t>()};
}

}  // namespace

double auc(std::span<const float> scores, std::span<const float> labels) {
  if (scores.size() != labels.size()) throw Error("auc: scores and labels differ in length");
  check_finite(scores);
  std::vector<int64_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  return auc_of(idx, scores, labels);
}

UaucResult uauc(std::span<const int64_t> uids, std::span<const float> scores,
                std::span<const float> labels) {
  if (uids.size() != scores.size() || scores.size() != labels.size())
    throw Error("uauc: uids, scores and labels differ in length");
  check_finite(scores);
  std::vector<int64_t> order(uids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return uids[a] < uids[b]; });
  UaucResult r;
  double sum = 0;
  std::vector<int64_t> idx;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    idx.clear();
    while (j < order.size() && uids[order[j]] == uids[order[i]]) idx.push_back(order[j++]);
    double a = auc_of(idx, scores, labels);
    if (std::isnan(a)) {
      ++r.skipped;
    } else {
      sum += a;
      ++r.users;
    }
    i = j;
  }
  r.uauc = r.users > 0 ? sum / static_cast<double>(r.users) : kNaN;
  return r;
}

double EvalResult::metric(const std::string& name) const {
  if (name == "auc") return auc;
  if (name == "uauc") return uauc;
  throw Error("unknown metric '" + name + "' (expected auc or uauc)");
}

EvalResult evaluate(const data::Split& sp, std::span<const float> scores) {
  if (scores.size() != sp.size())
    throw Error("evaluate: " + std::to_string(scores.size()) + " scores for " +
                std::to_string(sp.size()) + " rows of split '" + sp.name + "'");
  EvalResult r;
  r.split = sp.name;
  r.n_rows = static_cast<int64_t>(sp.size());
  r.auc = auc(scores, sp.label);
  auto ua = uauc(sp.uid, scores, sp.label);
  r.uauc = ua.uauc;
  r.uauc_users = ua.users;
  r.uauc_skipped = ua.skipped;
  r.warm = subset(sp, scores, 1);
  r.cold = subset(sp, scores, 0);
  return r;
}

std::string to_json(const EvalResult& r, int indent) {
  json j = {{"split", r.split},          {"n_rows", r.n_rows},
            {"auc", num(r.auc)},         {"uauc", num(r.uauc)},
            {"uauc_users", r.uauc_users}, {"uauc_skipped", r.uauc_skipped},
            {"warm", subset_json(r.warm)}, {"cold", subset_json(r.cold)}};
  return j.dump(indent);
}

EvalResult from_json(const std::string& text) {
  json j = json::parse(text);
  EvalResult r;
  r.split = j.at("split").get<std::string>();
  r.n_rows = j.at("n_rows").get<int64_t>();
  r.auc = num_from(j.at("auc"));
  r.uauc = num_from(j.at("uauc"));
  r.uauc_users = j.at("uauc_users").get<int64_t>();
  r.uauc_skipped = j.at("uauc_skipped").get<int64_t>();
  r.warm = subset_from(j.at("warm"));
  r.cold = subset_from(j.at("cold"));
  return r;
}

void write_scores_tsv(const data::Split& sp, std::span<const float> scores,
                      const std::string& path) {
  if (scores.size() != sp.size()) throw Error("write_scores_tsv: size mismatch");
  std::ostringstream out;
  out.precision(9);
  out << "uid\tiid\tlabel\tscore\n";
  for (size_t r = 0; r < sp.size(); ++r)
    out << sp.uid[r] << '\t' << sp.iid[r] << '\t' << static_cast<int>(sp.label[r]) << '\t'
        << scores[r] << '\n';
  io::write_file_atomic(path, out.str());
}

}  // namespace cora::eval
