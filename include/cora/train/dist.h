// Data parallelism under PyTorch's launcher (torchrun): the launcher's environment, c10d's
// TCPStore rendezvous and process group (Gloo on CPU, NCCL on CUDA where the libtorch has it),
// and the few collectives the engine and the recipes need. Without the launcher's variables
// every call here is the one-process identity, so single-process code paths stay as they were.
//
// Failures never hang: a rank that dies closes its sockets and the others' next collective
// fails at once; a rank that raises tells the others through the store; a hung rank is caught
// by the collective timeout (CORA_DIST_TIMEOUT_S, default 300). The error names the failed rank.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cora/core/error.h"

namespace cora::dist {

/// A collective failed because another rank died, raised or hung; the message names it.
class PeerFailure : public Error {
 public:
  using Error::Error;
};

/// The launcher's contract (torchrun / torch.distributed.run and compatible launchers).
struct Env {
  int rank = 0, world = 1;              ///< RANK, WORLD_SIZE
  int local_rank = 0, local_world = 1;  ///< LOCAL_RANK, LOCAL_WORLD_SIZE (the GPU to use)
  std::string master_addr;              ///< MASTER_ADDR: rank 0's host (the TCPStore)
  int master_port = 0;                  ///< MASTER_PORT
  int restart_count = 0;                ///< TORCHELASTIC_RESTART_COUNT (> 0: resume)
  bool agent_store = false;             ///< TORCHELASTIC_USE_AGENT_STORE=True: the agent hosts it
};

/// Reads the environment through `get` (std::getenv when null). Neither RANK nor WORLD_SIZE set:
/// one process. A partial or malformed environment throws cora::Error naming the variable.
Env read_env(const std::function<const char*(const char*)>& get = nullptr);

/// CORA_DIST_TIMEOUT_S (default 300): rendezvous and collective timeout.
std::chrono::milliseconds timeout();

/// Joins the job `env` describes: rendezvous through c10d's TCPStore (every rank counted in
/// within the timeout), then Gloo's process group; NCCL's is made at the first collective on
/// CUDA tensors when the libtorch has it. One process: nothing. Non-zero ranks log warnings and
/// errors only, prefixed with their rank. Call once, before any collective; again: a no-op.
void init(const Env& env);
/// read_env() then init() (once); returns the environment.
const Env& init_from_env();

const Env& env();
inline int rank() { return env().rank; }
inline int world() { return env().world; }
inline bool is_main() { return env().rank == 0; }
/// More than one process.
inline bool active() { return env().world > 1; }
/// The device a rank computes on: cuda:LOCAL_RANK for "cuda", else `requested` as is.
torch::Device device_for(const torch::Device& requested);

/// Sums `ts` over the ranks in place (dense tensors; flattened by dtype and device into
/// buckets of about 25 MB, one collective each).
void all_reduce_sum(std::vector<torch::Tensor>& ts);
/// Rank 0's contents of `ts` (same shapes everywhere) on every rank, in place.
void broadcast(std::vector<torch::Tensor>& ts);
/// Every rank's 1-D `local` (lengths may differ) concatenated in rank order, on every rank.
torch::Tensor all_gather_cat(const torch::Tensor& local);
/// Rank 0's string on every rank.
std::string broadcast_string(const std::string& s);
/// True on every rank when `flag` is true on any.
bool any(bool flag);
void barrier();
/// Runs `fn` on rank 0 only; when it throws there, every rank throws the same error.
void on_main(const std::function<void()>& fn);

/// Positions [begin, end) of this rank when `n` items, in groups of `align`, are cut into
/// `world` contiguous pieces that differ by at most one group.
std::pair<int64_t, int64_t> slice(int64_t n, int64_t align = 1);

/// Scores the rows of `order` (a permutation of 0..n-1) across the ranks: the order is cut at
/// multiples of `batch` (so each batch is the one a single process would score), `score`
/// scores this rank's piece (row ids, in order), and every rank returns all n scores by row id.
std::vector<float> score_sharded(const std::vector<int64_t>& order, int64_t batch,
                                 const std::function<std::vector<float>(const std::vector<int64_t>&)>& score);

/// CORA_DIST_CHECK=1: after every optimiser step the engine compares each rank's weights and
/// optimiser state with rank 0's (bitwise) and throws naming the first that differs.
bool check_enabled();
/// Throws when `state`'s checksums differ from rank 0's (named after `names`).
void check_identical(const std::vector<torch::Tensor>& state, const std::vector<std::string>& names);

/// Before a failing rank exits: tells the other ranks (through the store) what failed here.
void report_failure(const std::string& what) noexcept;

}  // namespace cora::dist
