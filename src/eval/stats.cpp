// Mean, sample std, paired t-test (Student's t via the regularised incomplete beta function).
#include "cora/eval/stats.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace cora::eval {

double mean(std::span<const double> x) {
  if (x.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (double v : x) s += v;
  return s / static_cast<double>(x.size());
}

double sample_std(std::span<const double> x) {
  if (x.size() < 2) return 0;
  double m = mean(x), s = 0;
  for (double v : x) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(x.size() - 1));
}

namespace {
// Continued fraction of the incomplete beta function (modified Lentz).
double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-15;
  double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 300; ++m) {
    int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < eps) break;
  }
  return h;
}

// Regularised incomplete beta I_x(a, b).
double inc_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double lbt = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) +
               b * std::log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return std::exp(lbt) * beta_cf(a, b, x) / a;
  return 1 - std::exp(lbt) * beta_cf(b, a, 1 - x) / b;
}
}  // namespace

double student_t_two_sided(double t, double df) {
  if (!std::isfinite(t)) return std::isnan(t) ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  return inc_beta(df / 2, 0.5, df / (df + t * t));
}

TTest paired_t_test(std::span<const double> a, std::span<const double> b) {
  if (a.size() != b.size()) throw std::invalid_argument("paired_t_test: lengths differ");
  TTest r;
  const size_t n = a.size();
  r.df = static_cast<int>(n) - 1;
  if (n < 2) {
    r.p = std::numeric_limits<double>::quiet_NaN();
    r.mean_diff = n ? a[0] - b[0] : 0;
    return r;
  }
  std::vector<double> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = a[i] - b[i];
  r.mean_diff = mean(d);
  double se = sample_std(d) / std::sqrt(static_cast<double>(n));
  if (se == 0) {
    r.t = r.mean_diff == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), r.mean_diff);
    r.p = r.mean_diff == 0 ? 1.0 : 0.0;
    return r;
  }
  r.t = r.mean_diff / se;
  r.p = student_t_two_sided(r.t, r.df);
  return r;
}

}  // namespace cora::eval
