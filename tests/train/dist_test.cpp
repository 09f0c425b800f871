// Data parallelism: the launcher's environment (unit), and `cora` itself under torchrun and
// under hand-made rank environments (suite DataParallel, ctest group "dist"): two ranks match
// one process, resume across world sizes, a killed or raising rank ends the job with its name,
// and torchrun --max-restarts resumes to the uninterrupted result.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cora/core/error.h"
#include "cora/core/runtime.h"
#include "cora/io/files.h"
#include "cora/train/dist.h"
#include "method/llm_world.h"
#include "test_util.h"

namespace {
using cora::testing::World;
using cora::testing::write_text;
using json = nlohmann::json;

// --- the launcher's environment --------------------------------------------------------------

cora::dist::Env env_of(std::map<std::string, std::string> vars) {
  return cora::dist::read_env([vars](const char* k) -> const char* {
    auto it = vars.find(k);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(DistEnv, ReadsTheLaunchersVariables) {
  EXPECT_EQ(env_of({}).world, 1);
  EXPECT_EQ(env_of({{"LOCAL_RANK", "3"}}).world, 1);  // LOCAL_RANK alone: not a job
  auto e = env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "host0"}, {"MASTER_PORT", "29500"},
                   {"TORCHELASTIC_RESTART_COUNT", "1"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world, 2);
  EXPECT_EQ(e.master_addr, "host0");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_EQ(e.restart_count, 1);
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}}).world, 1);  // one process needs no master
}

TEST(DistEnv, BadEnvironmentsNameTheVariable) {
  auto err = [](std::map<std::string, std::string> v) {
    return cora::testing::error_of([&] { env_of(v); });
  };
  EXPECT_NE(err({{"WORLD_SIZE", "2"}}).find("environment variable RANK is not set"), std::string::npos);
  EXPECT_NE(err({{"RANK", "0"}}).find("environment variable WORLD_SIZE is not set"), std::string::npos);
  EXPECT_NE(err({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos);
  EXPECT_NE(err({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK=\"x\""), std::string::npos);
  EXPECT_NE(err({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}).find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(err({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}).find("MASTER_PORT is not set"),
            std::string::npos);
  EXPECT_NE(err({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}})
                .find("MASTER_PORT=\"70000\""),
            std::string::npos);
  EXPECT_NE(err({{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"},
                 {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}})
                .find("LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2"),
            std::string::npos);
}

TEST(DistEnv, OneProcessIsTheIdentity) {
  EXPECT_FALSE(cora::dist::active());
  EXPECT_EQ(cora::dist::slice(10), (std::pair<int64_t, int64_t>{0, 10}));
  auto s = cora::dist::score_sharded({2, 0, 1}, 2, [](const std::vector<int64_t>& rows) {
    std::vector<float> out;
    for (auto r : rows) out.push_back(10.0f * r);
    return out;
  });
  EXPECT_EQ(s, (std::vector<float>{0, 10, 20}));
  EXPECT_TRUE(cora::dist::any(true));
  EXPECT_EQ(cora::dist::broadcast_string("x"), "x");
}

// --- processes --------------------------------------------------------------------------------

std::string cora_bin() {
  const char* b = std::getenv("CORA_BIN");
  return b ? b : "./cora";
}

// Debian's torchrun (python3-torch) through scripts/torchrun.sh, or empty.
std::string torchrun() {
  static const std::string cmd = [] {
    if (std::system("/usr/bin/python3 -c 'import torch.distributed.run' >/dev/null 2>&1") != 0) return std::string();
    return std::string(CORA_SOURCE_DIR) + "/scripts/torchrun.sh";
  }();
  return cmd;
}

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(s);
  return ntohs(a.sin_port);
}

// `sh -c cmd` with extra environment variables, output to `log`; returns the pid.
pid_t spawn(const std::string& cmd, const std::map<std::string, std::string>& env, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);  // its own process group: a timeout kills the launcher and its ranks
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >" + log + " 2>&1").c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

// Exit code (128 + signal when killed); -1 and a kill after `limit_s`. `took` gets the seconds.
int wait_for(pid_t pid, double limit_s, double* took = nullptr) {
  const double t0 = cora::now_seconds();
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (cora::now_seconds() - t0 > limit_s) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (took) *took = cora::now_seconds() - t0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A file's bytes, or "" when it cannot be read (also /proc files of other users).
std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::map<std::string, std::string> rank_env(int rank, int world, int port) {
  return {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)}, {"LOCAL_WORLD_SIZE", std::to_string(world)},
          {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)},
          {"CORA_DIST_CHECK", "1"}};
}

// Reads a scores file's score column.
std::vector<double> scores(const std::string& path) {
  std::ifstream f(path);
  std::vector<double> out;
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) out.push_back(std::stod(line.substr(line.rfind('\t') + 1)));
  return out;
}

// The metrics and per-row scores of two runs agree within the tolerances of the issue.
void expect_same_result(const std::string& a, const std::string& b) {
  json ma = json::parse(slurp(a + "/metrics.json")), mb = json::parse(slurp(b + "/metrics.json"));
  auto num = [](const json& j) { return j.is_number() ? j.get<double>() : NAN; };  // NaN is null
  for (const char* split : {"valid", "test"})
    for (const char* m : {"auc", "uauc"}) {
      const double x = num(ma[split][m]), y = num(mb[split][m]);
      EXPECT_TRUE(std::isfinite(num(ma["test"]["auc"])));
      if (std::isnan(x) || std::isnan(y)) EXPECT_EQ(std::isnan(x), std::isnan(y)) << a << " " << split << " " << m;
      else EXPECT_NEAR(x, y, 1e-5) << a << " vs " << b << " " << split << " " << m;
    }
  EXPECT_EQ(ma["best_step"], mb["best_step"]);
  int files = 0;
  for (const auto& f : std::filesystem::directory_iterator(a + "/eval")) {
    const std::string name = f.path().filename();
    if (name.size() < 11 || name.substr(name.size() - 11) != "_scores.tsv") continue;
    ++files;
    auto sa = scores(f.path()), sb = scores(b + "/eval/" + name);
    ASSERT_EQ(sa.size(), sb.size()) << name;
    ASSERT_FALSE(sa.empty()) << name;
    double worst = 0;
    for (size_t i = 0; i < sa.size(); ++i) worst = std::max(worst, std::abs(sa[i] - sb[i]));
    EXPECT_LE(worst, 1e-4) << a << " vs " << b << " " << name;
  }
  EXPECT_EQ(files, 2) << a;  // the validation split and test
}

// Waits until `path` exists (or `limit_s`).
bool wait_file(const std::string& path, double limit_s) {
  const double t0 = cora::now_seconds();
  while (!cora::io::exists(path)) {
    if (cora::now_seconds() - t0 > limit_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class DataParallel : public ::testing::Test {
 protected:
  static World* world_;
  static void SetUpTestSuite() { world_ = new World(); }
  static void TearDownTestSuite() { delete world_; world_ = nullptr; }
  void SetUp() override {
    if (torchrun().empty()) GTEST_SKIP() << "python3-torch's torchrun is not installed (scripts/setup.sh installs it)";
  }
  std::string file(const std::string& n) const { return world_->t.file(n); }
  // A config file for `method` ("mf" or an LLM method) with `extra` train keys.
  std::string config(const std::string& method, const std::string& extra = "") const {
    const std::string path = file(method + std::to_string(std::hash<std::string>{}(extra)) + ".json");
    if (method == "mf")
      write_text(path, R"({"method": "mf", "data": {"dir": ")" + file("data") +
                           R"("}, "cf": {"dim": 8, "init_std": 0.1}, "train": {"epochs": 4, "lr": 0.01,
                           "batch_size": 16, "eval_batch_size": 16)" + extra + R"(}, "log_level": "warn", "threads": 2})");
    else
      write_text(path, world_->config_json(method, extra));
    return path;
  }
  // One process with 2 threads.
  int one(const std::string& cfg, const std::string& out, const std::string& args = "") {
    return wait_for(spawn(cora_bin() + " train --config " + cfg + " --out " + out + " " + args, {},
                          out + ".log"), 300);
  }
  std::pair<pid_t, pid_t> long_run(const std::string& out);
  // torchrun, 2 ranks x 1 thread, with CORA_DIST_CHECK=1 (identical weights checked every step).
  int two(const std::string& cfg, const std::string& out, const std::string& args = "",
          const std::string& launcher_args = "") {
    return wait_for(spawn(torchrun() + " --nproc_per_node 2 --master_port " + std::to_string(free_port()) + " " +
                              launcher_args + " --no_python " + cora_bin() + " train --config " + cfg +
                              " --out " + out + " --set threads=1 " + args,
                          {{"CORA_DIST_CHECK", "1"}, {"OMP_NUM_THREADS", "1"}}, out + ".log"),
                    300);
  }
};
World* DataParallel::world_ = nullptr;

// A long CoRA run (400 epochs) on two hand-launched ranks, once rank 0 has written its first
// evaluation: the two pids, or {-1, -1} (both killed) when it did not start within 120 s.
std::pair<pid_t, pid_t> DataParallel::long_run(const std::string& out) {
  const auto cfg = config("cora", R"(, "epochs": 400, "patience": 1000)");
  const int port = free_port();
  pid_t r[2];
  for (int k = 0; k < 2; ++k)
    r[k] = spawn(cora_bin() + " train --config " + cfg + " --out " + out + " --set threads=1", rank_env(k, 2, port),
                 out + "." + std::to_string(k) + ".log");
  if (wait_file(out + "/metrics.jsonl", 120)) return {r[0], r[1]};
  for (pid_t p : r) ::kill(-p, SIGKILL), ::waitpid(p, nullptr, 0);
  return {-1, -1};
}

TEST_F(DataParallel, TwoRanksMatchOneProcess) {
  for (const std::string m : {"mf", "tallrec", "cora"}) {
    const auto cfg = config(m), a = file("one_" + m), b = file("two_" + m);
    ASSERT_EQ(one(cfg, a), 0) << slurp(a + ".log");
    ASSERT_EQ(two(cfg, b), 0) << slurp(b + ".log");
    expect_same_result(a, b);
    EXPECT_EQ(slurp(a + "/metrics.jsonl").size() > 0, true);
    // Rank 0 alone writes; the other rank's log holds no info lines.
    EXPECT_EQ(slurp(b + ".log").find("[rank 1] info"), std::string::npos) << slurp(b + ".log");
  }
}

TEST_F(DataParallel, ResumesUnderAnotherWorldSize) {
  const auto cfg = config("cora"), whole = file("whole"), split = file("split");
  ASSERT_EQ(one(cfg, whole), 0) << slurp(whole + ".log");
  // One epoch in one process, the rest under two ranks (--resume), and the other way round.
  ASSERT_EQ(one(cfg, split, "--set train.epochs_per_invocation=1"), 0) << slurp(split + ".log");
  ASSERT_FALSE(cora::io::exists(split + "/metrics.json"));
  ASSERT_EQ(two(cfg, split, "--resume"), 0) << slurp(split + ".log");
  expect_same_result(whole, split);
  const auto back = file("back");
  ASSERT_EQ(two(cfg, back, "--set train.epochs_per_invocation=1"), 0) << slurp(back + ".log");
  ASSERT_EQ(two(cfg, back, "--set train.epochs_per_invocation=1 --resume"), 0) << slurp(back + ".log");
  ASSERT_EQ(one(cfg, back, "--resume"), 0) << slurp(back + ".log");
  expect_same_result(whole, back);
}

TEST_F(DataParallel, TableRowsTrainDataParallel) {
  // MF, then CoRA on that MF run: `cora table` under torchrun gives the one-process results.
  const std::string spec = file("spec.json");
  write_text(spec, R"({"seeds": [0], "rows": [{"name": "MF", "config": ")" + config("mf") +
                       R"("}, {"name": "CoRA", "config": ")" + config("cora") +
                       R"(", "runs": {"cf.run": "MF"}}]})");
  const std::string a = file("table1"), b = file("table2");
  ASSERT_EQ(wait_for(spawn(cora_bin() + " table --config " + spec + " --out " + a, {}, a + ".log"), 300), 0)
      << slurp(a + ".log");
  ASSERT_EQ(wait_for(spawn(torchrun() + " --nproc_per_node 2 --master_port " + std::to_string(free_port()) +
                               " --no_python " + cora_bin() + " table --config " + spec + " --out " + b +
                               " --set threads=1",
                           {{"CORA_DIST_CHECK", "1"}}, b + ".log"),
                     300),
            0)
      << slurp(b + ".log");
  for (const auto& run : {"/runs/mf/seed0", "/runs/cora/seed0"}) expect_same_result(a + run, b + run);
  EXPECT_TRUE(cora::io::exists(b + "/table.csv"));
}

TEST_F(DataParallel, AKilledRankEndsTheJobNamingIt) {
  // A long run (many epochs) on two hand-launched ranks; rank 1 is killed after the first
  // evaluation. Rank 0 must end non-zero within 60 s, naming rank 1, long before the timeout.
  const std::string out = file("killed");
  auto [r0, r1] = long_run(out);
  ASSERT_GT(r0, 0) << slurp(out + ".0.log");
  ::kill(r1, SIGKILL);
  ::waitpid(r1, nullptr, 0);
  double took = 0;
  const int code = wait_for(r0, 60, &took);
  const std::string log = slurp(out + ".0.log");
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << "rank 0 still ran 60 s after rank 1 was killed";
  EXPECT_NE(log.find("because rank 1 (pid " + std::to_string(r1) + ") died"), std::string::npos) << log;
  EXPECT_LT(took, 60.0);
  std::fprintf(stderr, "rank 0 ended %.2f s after rank 1 was killed: %s", took,
               log.substr(log.rfind("error:")).c_str());
}

TEST_F(DataParallel, SigtermOnOneRankStopsEveryRankWithACheckpoint) {
  // SIGTERM reaches rank 1 only: both ranks stop at the same step boundary, rank 0 writes the
  // checkpoint, both exit 75 (resumable).
  const std::string out = file("sigterm");
  auto [r0, r1] = long_run(out);
  ASSERT_GT(r0, 0) << slurp(out + ".0.log");
  ::kill(r1, SIGTERM);
  EXPECT_EQ(wait_for(r1, 60), cora::kExitInterrupted) << slurp(out + ".1.log");
  EXPECT_EQ(wait_for(r0, 60), cora::kExitInterrupted) << slurp(out + ".0.log");
  EXPECT_NE(slurp(out + ".0.log").find("a resumable checkpoint is in"), std::string::npos) << slurp(out + ".0.log");
  EXPECT_TRUE(cora::io::exists(out + "/ckpt/progress.json"));
}

TEST_F(DataParallel, ARaisingRankIsNamed) {
  // Rank 1 fails after joining (its data directory does not exist); rank 0 stops at its next
  // collective with rank 1's own message.
  const auto cfg = config("mf"), out = file("raised");
  const int port = free_port();
  pid_t r0 = spawn(cora_bin() + " train --config " + cfg + " --out " + out, rank_env(0, 2, port), out + ".0.log");
  pid_t r1 = spawn(cora_bin() + " train --config " + cfg + " --out " + out + " --set data.dir=" + file("nowhere"),
                   rank_env(1, 2, port), out + ".1.log");
  EXPECT_EQ(wait_for(r1, 60), 1) << slurp(out + ".1.log");
  EXPECT_EQ(wait_for(r0, 60), 1) << slurp(out + ".0.log");
  const std::string log = slurp(out + ".0.log");
  EXPECT_NE(log.find("because rank 1 raised: "), std::string::npos) << log;
  EXPECT_NE(log.find("nowhere"), std::string::npos) << log;
}

TEST_F(DataParallel, BadEnvironmentsFailFastNamingTheVariable) {
  const auto cfg = config("mf"), out = file("badenv");
  auto run = [&](std::map<std::string, std::string> env, double* took) {
    const int code = wait_for(spawn(cora_bin() + " train --config " + cfg + " --out " + out, env, out + ".log"), 60, took);
    return std::pair{code, slurp(out + ".log")};
  };
  double took = 0;
  auto [c1, l1] = run({{"WORLD_SIZE", "2"}}, &took);
  EXPECT_EQ(c1, 1);
  EXPECT_NE(l1.find("error: environment variable RANK is not set"), std::string::npos) << l1;
  auto [c2, l2] = run({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1"}}, &took);
  EXPECT_EQ(c2, 1);
  EXPECT_NE(l2.find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos) << l2;
  // Nobody serves the store: a client rank gives up after CORA_DIST_TIMEOUT_S.
  auto env = rank_env(1, 2, free_port());
  env["CORA_DIST_TIMEOUT_S"] = "3";
  auto [c3, l3] = run(env, &took);
  EXPECT_EQ(c3, 1) << l3;
  EXPECT_NE(l3.find("cannot reach the rendezvous store at MASTER_ADDR:MASTER_PORT = 127.0.0.1:"), std::string::npos) << l3;
  EXPECT_LT(took, 30.0);
  // The store's server (rank 0) alone: the other rank never joins.
  env = rank_env(0, 2, free_port());
  env["CORA_DIST_TIMEOUT_S"] = "3";
  auto [c4, l4] = run(env, &took);
  EXPECT_EQ(c4, 1) << l4;
  EXPECT_NE(l4.find("only 1 of WORLD_SIZE=2 ranks joined"), std::string::npos) << l4;
  EXPECT_LT(took, 30.0);
}

// The pid of the process whose command line mentions `needle` and whose environment has RANK=rank.
pid_t find_rank(const std::string& needle, int rank) {
  for (const auto& d : std::filesystem::directory_iterator("/proc")) {
    const std::string name = d.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmd = slurp(d.path().string() + "/cmdline"), env = slurp(d.path().string() + "/environ");
    if (cmd.find(needle) != std::string::npos && cmd.find("torch.distributed.run") == std::string::npos &&
        env.find(std::string("\0RANK=", 6) + std::to_string(rank) + '\0') != std::string::npos)
      return std::stoi(name);
  }
  return -1;
}

TEST_F(DataParallel, TorchrunRestartResumesToTheSameResult) {
  // Checkpoints after every evaluation; rank 1 is killed once the second one is written; torchrun
  // (--max-restarts 1) restarts both ranks, which resume and finish as an uninterrupted run.
  const auto cfg = config("cora", R"(, "epochs": 8, "checkpoint_every_s": 0)"), whole = file("r_whole"),
             out = file("restarted");
  ASSERT_EQ(one(cfg, whole), 0) << slurp(whole + ".log");
  const pid_t job = spawn(torchrun() + " --nproc_per_node 2 --max_restarts 1 --monitor_interval 1 --master_port " +
                              std::to_string(free_port()) + " --no_python " + cora_bin() + " train --config " + cfg +
                              " --out " + out + " --set threads=1 --set log_level=info",
                          {{"CORA_DIST_CHECK", "1"}, {"OMP_NUM_THREADS", "1"}}, out + ".log");
  const double t0 = cora::now_seconds();
  bool killed = false;
  while (!killed && cora::now_seconds() - t0 < 120) {
    const std::string m = slurp(out + "/metrics.jsonl");
    if (std::count(m.begin(), m.end(), '\n') >= 2 && cora::io::exists(out + "/ckpt/progress.json")) {
      const pid_t r1 = find_rank(out, 1);
      if (r1 > 0) killed = ::kill(r1, SIGKILL) == 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!killed) ::kill(-job, SIGKILL);
  ASSERT_TRUE(killed) << slurp(out + ".log");
  ASSERT_EQ(wait_for(job, 300), 0) << slurp(out + ".log");
  const std::string log = slurp(out + ".log");
  EXPECT_NE(log.find("torchrun restart 1: resuming from the last checkpoint"), std::string::npos) << log;
  EXPECT_NE(log.find("resuming after epoch "), std::string::npos) << log;  // from a checkpoint
  expect_same_result(whole, out);
}

}  // namespace
