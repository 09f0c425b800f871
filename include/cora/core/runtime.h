// Process-wide runtime knobs: thread count, device choice, seeding, logging.
// Torch-free: device names are strings here; src/ maps them to torch::Device.
#pragma once

#include <cstdint>
#include <exception>
#include <string>

namespace cora {

/// The cores this process may run on (its CPU affinity: taskset, cgroups, Slurm binding).
int64_t available_cores();
/// Sets intra-op threads (0 = every core this process may run on). libtorch defaults to 1 here.
void set_threads(int64_t threads);

/// Intra-op threads in use.
int64_t current_threads();

/// "cpu" | "cuda" | "auto" → the resolved name ("cpu" or "cuda"); "cuda" without a GPU throws.
std::string resolve_device(const std::string& requested);

/// Seeds torch's global generator (CPU and CUDA).
void seed_everything(uint64_t seed);

/// The one seed-mixing hash (splitmix64 finaliser of seed·φ + k + 1): independent streams
/// from one run seed, e.g. the data order of pass k or the dropout key of sample k.
uint64_t seed_mix(uint64_t seed, int64_t k);

/// spdlog to stderr with cora's pattern; level: trace|debug|info|warn|error.
void init_logging(const std::string& level = "info");

/// A one-line message for any exception (libtorch's without its C++ backtrace).
std::string error_message(const std::exception& e);

/// Seconds since an arbitrary steady epoch.
double now_seconds();

/// Peak resident memory of this process so far, in MiB.
double peak_rss_mib();

/// From now on SIGTERM and SIGINT ask the running job to stop at the next step boundary instead
/// of killing it (a second signal kills as usual). The training engine checks stop_requested().
void install_stop_signals();
/// The signal that asked to stop (SIGTERM, SIGINT), or 0.
int stop_requested();
/// Clears a request (tests; a command that handled it).
void clear_stop_request();

}  // namespace cora
