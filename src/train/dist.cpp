// c10d under torchrun: TCPStore rendezvous, Gloo (and NCCL where built in), failure diagnosis.
#include "cora/train/dist.h"

#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <unistd.h>

#include <climits>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <thread>

#include "cora/core/error.h"
#include "cora/core/runtime.h"

namespace cora::dist {
namespace {

#if TORCH_VERSION_MAJOR >= 2
using Group = c10d::Backend;  // libtorch 2.x: process groups are backends of a ProcessGroup
#else
using Group = c10d::ProcessGroup;
#endif

struct State {
  Env env;
  bool initialised = false;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> gloo, nccl;
  std::vector<std::pair<std::string, long>> peers;  // (host, pid) of every rank
  std::string host;
};

State& state() {
  static State s;
  return s;
}

int parse_int(const char* var, const std::string& v, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    throw Error(std::string("environment variable ") + var + "=\"" + v + "\": expected an integer in [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

std::string hostname() {
  char b[256] = {0};
  if (gethostname(b, sizeof b - 1) != 0) return "?";
  return b;
}

// A process on this host that has exited (gone, or a zombie not yet reaped by the launcher).
bool process_gone(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!f || !std::getline(f, s)) return true;
  const auto close = s.rfind(')');
  if (close == std::string::npos || close + 2 >= s.size()) return false;
  const char st = s[close + 2];
  return st == 'Z' || st == 'X';
}

// Why a collective failed, naming the rank responsible where it can be known.
std::string describe_failure(const std::string& what, const std::string& cause) {
  auto& s = state();
  std::string culprit;
  try {  // a rank that raised left its error in the store (if the store is still up)
    if (s.store && s.store->check({"failed"})) {
      auto v = s.store->get("failed");
      culprit = std::string(v.begin(), v.end());
    }
  } catch (const std::exception&) {
  }
  if (culprit.empty()) {
    std::string dead;
    for (size_t r = 0; r < s.peers.size(); ++r)
      if (static_cast<int>(r) != s.env.rank && s.peers[r].first == s.host && process_gone(s.peers[r].second))
        dead += (dead.empty() ? "" : ", ") + std::to_string(r) + " (pid " + std::to_string(s.peers[r].second) + ")";
    if (!dead.empty()) culprit = "rank " + dead + " died";
  }
  std::string msg = "rank " + std::to_string(s.env.rank) + ": " + what + " failed";
  if (!culprit.empty()) return msg + " because " + culprit + " [" + cause + "]";
  return msg + ": " + cause + " (another rank died, raised or hung past CORA_DIST_TIMEOUT_S=" +
         std::to_string(timeout().count() / 1000) + "; see its log)";
}

void wait(const char* what, const std::function<c10::intrusive_ptr<c10d::Work>()>& op) {
  try {
    op()->wait(timeout());
  } catch (const std::exception& e) {
    throw PeerFailure(describe_failure(what, error_message(e)));
  }
}

#ifdef USE_C10D_NCCL
Group& nccl() {
  auto& s = state();
  if (!s.nccl) {
    c10::cuda::set_device(s.env.local_rank);
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout();
    s.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
        c10::make_intrusive<c10d::PrefixStore>("nccl", s.store), s.env.rank, s.env.world, o);
  }
  return *s.nccl;
}
#endif

enum class Op { sum, broadcast };

// One collective on a flat buffer: NCCL for CUDA buffers where built in, else Gloo on the host.
void collective(torch::Tensor& buf, Op op, const char* what) {
  auto& s = state();
#ifdef USE_C10D_NCCL
  if (buf.is_cuda()) {
    std::vector<torch::Tensor> v{buf};
    if (op == Op::sum) wait(what, [&] { return nccl().allreduce(v); });
    else wait(what, [&] { return nccl().broadcast(v); });
    return;
  }
#endif
  std::vector<torch::Tensor> v{buf.is_cpu() ? buf : buf.to(torch::kCPU)};
  if (op == Op::sum) wait(what, [&] { return s.gloo->allreduce(v); });
  else wait(what, [&] { return s.gloo->broadcast(v); });
  if (!buf.is_cpu()) buf.copy_(v[0]);
}

// Flattens consecutive tensors of one dtype and device into buckets of about 25 MB.
void bucketed(std::vector<torch::Tensor>& ts, Op op, const char* what) {
  constexpr int64_t cap = 25 << 20;
  for (size_t i = 0; i < ts.size();) {
    size_t j = i;
    int64_t bytes = 0;
    while (j < ts.size() && ts[j].scalar_type() == ts[i].scalar_type() &&
           ts[j].device() == ts[i].device() && (j == i || bytes + ts[j].nbytes() <= static_cast<size_t>(cap)))
      bytes += ts[j++].nbytes();
    std::vector<torch::Tensor> flat;
    for (size_t k = i; k < j; ++k) flat.push_back(ts[k].reshape(-1));
    auto buf = torch::cat(flat);
    collective(buf, op, what);
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = ts[k].numel();
      ts[k].copy_(buf.narrow(0, off, n).view(ts[k].sizes()));
      off += n;
    }
    i = j;
  }
}

uint64_t fnv1a(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < c.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace

Env read_env(const std::function<const char*(const char*)>& get_fn) {
  auto get = [&](const char* name) -> std::string {
    const char* v = get_fn ? get_fn(name) : std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  Env e;
  const std::string rank = get("RANK"), world = get("WORLD_SIZE");
  if (rank.empty() && world.empty()) return e;
  if (rank.empty())
    throw Error("environment variable RANK is not set but WORLD_SIZE=" + world +
                " is (hint: launch with torchrun, which sets both, or unset WORLD_SIZE)");
  if (world.empty())
    throw Error("environment variable WORLD_SIZE is not set but RANK=" + rank +
                " is (hint: launch with torchrun, which sets both, or unset RANK)");
  e.world = parse_int("WORLD_SIZE", world, 1, 1 << 20);
  e.rank = parse_int("RANK", rank, 0, INT_MAX);
  if (e.rank >= e.world)
    throw Error("environment variable RANK=" + rank + " is not below WORLD_SIZE=" + world);
  const std::string lr = get("LOCAL_RANK"), lw = get("LOCAL_WORLD_SIZE");
  e.local_world = lw.empty() ? e.world : parse_int("LOCAL_WORLD_SIZE", lw, 1, e.world);
  e.local_rank = lr.empty() ? e.rank % e.local_world : parse_int("LOCAL_RANK", lr, 0, INT_MAX);
  if (e.local_rank >= e.local_world)
    throw Error("environment variable LOCAL_RANK=" + lr + " is not below LOCAL_WORLD_SIZE=" +
                std::to_string(e.local_world));
  const std::string rc = get("TORCHELASTIC_RESTART_COUNT");
  if (!rc.empty()) e.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", rc, 0, INT_MAX);
  e.agent_store = get("TORCHELASTIC_USE_AGENT_STORE") == "True";
  if (e.world > 1) {
    e.master_addr = get("MASTER_ADDR");
    if (e.master_addr.empty())
      throw Error("environment variable MASTER_ADDR is not set (rank 0's host; WORLD_SIZE=" + world + ")");
    const std::string port = get("MASTER_PORT");
    if (port.empty()) throw Error("environment variable MASTER_PORT is not set (WORLD_SIZE=" + world + ")");
    e.master_port = parse_int("MASTER_PORT", port, 1, 65535);
  }
  return e;
}

std::chrono::milliseconds timeout() {
  const char* v = std::getenv("CORA_DIST_TIMEOUT_S");
  const int s = v && *v ? parse_int("CORA_DIST_TIMEOUT_S", v, 1, 7 * 24 * 3600) : 300;
  return std::chrono::milliseconds(static_cast<int64_t>(s) * 1000);
}

void init(const Env& e) {
  auto& s = state();
  if (s.initialised) return;
  s.env = e;
  s.initialised = true;
  if (e.world <= 1) return;
  if (e.rank != 0) {  // the run directory and progress belong to rank 0
    spdlog::set_pattern("[%H:%M:%S.%e] [rank " + std::to_string(e.rank) + "] %^%l%$ %v");
    if (spdlog::get_level() < spdlog::level::warn) spdlog::set_level(spdlog::level::warn);
  }
  const auto to = timeout();
  const std::string where = "MASTER_ADDR:MASTER_PORT = " + e.master_addr + ":" + std::to_string(e.master_port);
  c10::intrusive_ptr<c10d::Store> tcp;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(e.master_port);
    o.isServer = !e.agent_store && e.rank == 0;
    if (!e.agent_store) o.numWorkers = e.world;
    o.waitWorkers = false;  // joining is counted below, with a clearer error
    o.timeout = to;
    o.multiTenant = true;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    o.useLibUV = false;  // the classic server: some builds (Debian's 2.6) have no libuv
#endif
    tcp = c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
  } catch (const std::exception& x) {
    throw Error("rank " + std::to_string(e.rank) + ": cannot " + (e.rank == 0 && !e.agent_store ? "serve" : "reach") +
                " the rendezvous store at " + where + " within " + std::to_string(to.count() / 1000) +
                " s (CORA_DIST_TIMEOUT_S): " + error_message(x));
  }
  s.store = c10::make_intrusive<c10d::PrefixStore>("cora/attempt_" + std::to_string(e.restart_count), tcp);
  s.host = hostname();
  const std::string me = s.host + " " + std::to_string(static_cast<long>(getpid()));
  s.store->set("peer/" + std::to_string(e.rank), std::vector<uint8_t>(me.begin(), me.end()));
  int64_t joined = s.store->add("joined", 1);
  const double t0 = now_seconds();
  while (joined < e.world) {
    if (now_seconds() - t0 > to.count() / 1000.0)
      throw Error("rank " + std::to_string(e.rank) + ": only " + std::to_string(joined) + " of WORLD_SIZE=" +
                  std::to_string(e.world) + " ranks joined at " + where + " within " +
                  std::to_string(to.count() / 1000) + " s (CORA_DIST_TIMEOUT_S)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    joined = s.store->add("joined", 0);
  }
  for (int r = 0; r < e.world; ++r) {
    auto v = s.store->get("peer/" + std::to_string(r));
    std::string p(v.begin(), v.end());
    const auto sp = p.rfind(' ');
    s.peers.emplace_back(p.substr(0, sp), sp == std::string::npos ? -1 : std::atol(p.c_str() + sp + 1));
  }
  auto o = c10d::ProcessGroupGloo::Options::create(to);
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (e.master_addr == "127.0.0.1" || e.master_addr == "localhost")
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  o->threads = 2;
  try {
    s.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo", s.store), e.rank, e.world, o);
  } catch (const std::exception& x) {
    throw PeerFailure(describe_failure("connecting the Gloo process group", error_message(x)));
  }
  if (e.rank == 0)
    spdlog::info("data parallel: {} ranks ({} per node) joined at {}:{}; Gloo{}", e.world, e.local_world,
                 e.master_addr, e.master_port,
#ifdef USE_C10D_NCCL
                 " (+ NCCL for CUDA tensors)"
#else
                 ""
#endif
    );
}

const Env& init_from_env() {
  if (!state().initialised) init(read_env());
  return state().env;
}

const Env& env() { return state().env; }

torch::Device device_for(const torch::Device& requested) {
  if (!requested.is_cuda() || !active()) return requested;
  const int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (env().local_rank >= n)
    throw Error("environment variable LOCAL_RANK=" + std::to_string(env().local_rank) + " but this node has " +
                std::to_string(n) + " CUDA device(s) (hint: --nproc-per-node at most the GPU count)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env().local_rank));
}

void all_reduce_sum(std::vector<torch::Tensor>& ts) {
  if (active()) bucketed(ts, Op::sum, "all-reduce");
}

void broadcast(std::vector<torch::Tensor>& ts) {
  if (active()) bucketed(ts, Op::broadcast, "broadcast");
}

torch::Tensor all_gather_cat(const torch::Tensor& local) {
  if (!active()) return local.reshape(-1).clone();
  auto& s = state();
  auto mine = local.reshape(-1).to(torch::kCPU).contiguous();
  std::vector<torch::Tensor> in{torch::tensor({mine.numel()}, torch::kInt64)};
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < s.env.world; ++r) out[0].push_back(torch::empty({1}, torch::kInt64));
  wait("all-gather", [&] { return s.gloo->allgather(out, in); });
  std::vector<int64_t> n;
  int64_t most = 0;
  for (auto& t : out[0]) most = std::max(most, n.emplace_back(t.item<int64_t>()));
  std::vector<torch::Tensor> in2{torch::zeros({std::max<int64_t>(most, 1)}, mine.options())};
  in2[0].narrow(0, 0, mine.numel()).copy_(mine);
  std::vector<std::vector<torch::Tensor>> out2(1);
  for (int r = 0; r < s.env.world; ++r) out2[0].push_back(torch::empty_like(in2[0]));
  wait("all-gather", [&] { return s.gloo->allgather(out2, in2); });
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < s.env.world; ++r) parts.push_back(out2[0][r].narrow(0, 0, n[r]));
  return torch::cat(parts);
}

std::string broadcast_string(const std::string& str) {
  if (!active()) return str;
  std::vector<torch::Tensor> len{torch::tensor({static_cast<int64_t>(str.size())}, torch::kInt64)};
  broadcast(len);
  const int64_t n = len[0].item<int64_t>();
  std::vector<torch::Tensor> bytes{torch::zeros({std::max<int64_t>(n, 1)}, torch::kUInt8)};
  if (is_main()) std::memcpy(bytes[0].data_ptr(), str.data(), str.size());
  broadcast(bytes);
  return std::string(static_cast<const char*>(bytes[0].data_ptr()), n);
}

bool any(bool flag) {
  if (!active()) return flag;
  std::vector<torch::Tensor> t{torch::tensor({flag ? 1 : 0}, torch::kInt64)};
  all_reduce_sum(t);
  return t[0].item<int64_t>() > 0;
}

void barrier() { (void)any(false); }

void on_main(const std::function<void()>& fn) {
  if (!active()) return fn();
  std::exception_ptr ex;
  std::string err;
  if (is_main()) {
    try {
      fn();
    } catch (const std::exception& e) {
      ex = std::current_exception();
      err = error_message(e);
      if (err.empty()) err = "failed";
    }
  }
  err = broadcast_string(err);
  if (ex) std::rethrow_exception(ex);
  if (!err.empty()) throw PeerFailure("rank 0 failed: " + err);
}

std::pair<int64_t, int64_t> slice(int64_t n, int64_t align) {
  const int64_t W = world(), r = rank();
  if (W == 1) return {0, n};
  align = std::max<int64_t>(align, 1);
  const int64_t groups = (n + align - 1) / align;
  return {std::min(n, groups * r / W * align), std::min(n, groups * (r + 1) / W * align)};
}

std::vector<float> score_sharded(const std::vector<int64_t>& order, int64_t batch,
                                 const std::function<std::vector<float>(const std::vector<int64_t>&)>& score) {
  const int64_t n = static_cast<int64_t>(order.size());
  const auto [b, e] = slice(n, batch);
  std::vector<int64_t> mine(order.begin() + b, order.begin() + e);
  std::vector<float> local = score(mine);
  if (static_cast<int64_t>(local.size()) != e - b)
    throw Error("score_sharded: " + std::to_string(local.size()) + " scores for " + std::to_string(e - b) + " rows");
  std::vector<float> all = local;
  if (active()) {
    auto t = all_gather_cat(torch::from_blob(local.data(), {e - b}, torch::kFloat32));
    all.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  }
  std::vector<float> out(n);
  for (int64_t k = 0; k < n; ++k) out[order[k]] = all[k];
  return out;
}

bool check_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("CORA_DIST_CHECK");
    return v && std::string(v) == "1";
  }();
  return on;
}

void check_identical(const std::vector<torch::Tensor>& st, const std::vector<std::string>& names) {
  if (!active()) return;
  std::vector<int64_t> h;
  for (const auto& t : st) h.push_back(static_cast<int64_t>(fnv1a(t)));
  auto all = all_gather_cat(torch::tensor(h, torch::kInt64));
  const int64_t n = static_cast<int64_t>(h.size());
  const int64_t* p = all.data_ptr<int64_t>();
  for (int r = 1; r < world(); ++r)
    for (int64_t k = 0; k < n; ++k)
      if (p[r * n + k] != p[k])
        throw Error("CORA_DIST_CHECK: rank " + std::to_string(r) + "'s " + names[k] + " differs from rank 0's");
}

void report_failure(const std::string& what) noexcept {
  auto& s = state();
  if (!active() || !s.store) return;
  try {
    const std::string v = "rank " + std::to_string(s.env.rank) + " raised: " + what;
    s.store->set("failed", std::vector<uint8_t>(v.begin(), v.end()));
  } catch (...) {
  }
}

}  // namespace cora::dist
