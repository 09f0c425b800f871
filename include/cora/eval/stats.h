// Summary statistics of results over seeds: mean, sample standard deviation and the paired
// two-sided t-test the paper uses for significance. Torch-free.
#pragma once

#include <span>

namespace cora::eval {

double mean(std::span<const double> x);
/// Sample standard deviation (n - 1); 0 for fewer than two values.
double sample_std(std::span<const double> x);

struct TTest {
  double t = 0;       ///< mean difference / its standard error
  int df = 0;         ///< n - 1
  double p = 1;       ///< two-sided p-value; NaN when undefined (n < 2)
  double mean_diff = 0;
};
/// Paired t-test of a against b (same length, paired by index: the same seed).
TTest paired_t_test(std::span<const double> a, std::span<const double> b);

/// P(|T| >= |t|) for Student's t with `df` degrees of freedom.
double student_t_two_sided(double t, double df);

}  // namespace cora::eval
