// Thread count, device resolution, seeding and logging set-up.
#include "cora/core/runtime.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sched.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "cora/core/error.h"

namespace cora {

int64_t available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return std::max<int64_t>(1, std::thread::hardware_concurrency());
}

void set_threads(int64_t threads) {
  if (threads < 0) throw Error::key("threads", "must be >= 0 (0 = all cores), got " +
                                                   std::to_string(threads));
  int64_t n = threads == 0 ? available_cores() : threads;
  torch::set_num_threads(static_cast<int>(n));
  // Decaying weights and squared gradients reach denormal floats, which run ~100x slower on x86.
  at::globalContext().setFlushDenormal(true);
}

int64_t current_threads() { return torch::get_num_threads(); }

std::string resolve_device(const std::string& requested) {
  if (requested == "cpu") return "cpu";
  if (requested == "cuda") {
    if (!torch::cuda::is_available())
      throw Error::key("device", "'cuda' requested but no CUDA device is available "
                                 "(hint: use \"auto\" or \"cpu\", or a CUDA build of libtorch)");
    return "cuda";
  }
  if (requested == "auto") return torch::cuda::is_available() ? "cuda" : "cpu";
  throw Error::key("device", "must be one of cpu, cuda, auto; got '" + requested + "'");
}

void seed_everything(uint64_t seed) { torch::manual_seed(seed); }

uint64_t seed_mix(uint64_t seed, int64_t k) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(k) + 1;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

void init_logging(const std::string& level) {
  auto logger = spdlog::get("cora");
  if (!logger) {
    logger = spdlog::stderr_color_mt("cora");
    spdlog::set_default_logger(logger);
  }
  spdlog::set_pattern("[%H:%M:%S.%e] %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

std::string error_message(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int sig) {
  g_stop = sig;
  std::signal(sig, SIG_DFL);  // a second signal kills
}
}  // namespace

void install_stop_signals() {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
}
int stop_requested() { return g_stop; }
void clear_stop_request() { g_stop = 0; }

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // namespace cora
