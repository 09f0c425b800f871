// set_threads(0) means every core the process may run on: its CPU affinity, not the machine's.
#include "cora/core/runtime.h"

#include <gtest/gtest.h>
#include <sched.h>

namespace cora {
namespace {

TEST(Runtime, AllCoresMeansTheCoresOfTheAffinity) {
  cpu_set_t was;
  CPU_ZERO(&was);
  ASSERT_EQ(sched_getaffinity(0, sizeof was, &was), 0);
  EXPECT_EQ(available_cores(), CPU_COUNT(&was));
  int first = 0;
  while (!CPU_ISSET(first, &was)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // this thread only (as under taskset -c)
  EXPECT_EQ(available_cores(), 1);
  set_threads(0);
  EXPECT_EQ(current_threads(), 1);
  ASSERT_EQ(sched_setaffinity(0, sizeof was, &was), 0);
  set_threads(0);
  EXPECT_EQ(current_threads(), CPU_COUNT(&was));
}

}  // namespace
}  // namespace cora
