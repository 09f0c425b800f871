// Storage faults during `cora train`, on a private tmpfs (unshare --mount; a user namespace when
// not root): the disk fills up before a checkpoint, the output directory is read-only. Each gives
// a clear error naming the file, exit 1, and leaves the previous checkpoint byte-identical, so
// --resume later finishes with the metrics of an undisturbed run. Skipped (ctest: "faults"
// group) where mount namespaces are not allowed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cora/io/files.h"
#include "synthetic.h"
#include "test_util.h"

namespace {
using cora::testing::TempDir;
using cora::testing::write_text;
namespace fs = std::filesystem;

std::string cora_bin() {
  const char* b = std::getenv("CORA_BIN");
  return b ? b : "./cora";
}

std::string slurp(const std::string& p) { return fs::exists(p) ? cora::io::read_file(p) : ""; }

int rc_of(const std::string& p) { return std::atoi(slurp(p).c_str()); }

// Runs `cora train` invocations until the run finishes (train.epochs_per_invocation = 1).
nlohmann::json finish(const std::string& config, const std::string& out) {
  const std::string base = cora_bin() + " train --config " + config + " --out " + out;
  if (std::system((base + " > /dev/null 2>&1").c_str()) != 0) return {};
  for (int k = 0; k < 10 && !fs::exists(out + "/metrics.json"); ++k)
    if (std::system((base + " --resume > /dev/null 2>&1").c_str()) != 0) return {};
  return nlohmann::json::parse(slurp(out + "/metrics.json"));
}

TEST(Faults, DiskFullAndReadOnlyLeaveTheCheckpointWhole) {
  TempDir t;
  cora::testing::write_planted_split(t.file("data"));
  // dim 64: latest.safetensors (weights, AdamW moments) is ~110 KB, best.safetensors ~37 KB.
  write_text(t.file("mf.json"), R"({"method": "mf", "data": {"dir": ")" + t.file("data") +
                                    R"("}, "cf": {"dim": 64}, "train": {"epochs": 3, "min_epochs": 0,
    "epochs_per_invocation": 1, "checkpoint_every_s": 0}, "log_level": "warn"})");
  const std::string script = R"(
T=$1; CORA=$2; M=$T/mnt
mkdir -p $M
mount -t tmpfs -o size=2m tmpfs $M || exit 0
touch $T/mounted
run() { name=$1; shift; "$CORA" train --config $T/mf.json "$@" > $T/$name.out 2>&1; echo $? > $T/$name.rc; }
run first --out $M/run
cp -a $M/run/ckpt $T/before
dd if=/dev/zero of=$M/fill bs=4k 2> /dev/null
# Room for the new latest.safetensors but not for best.safetensors beside it.
truncate -s -$(( $(stat -c %s $M/run/ckpt/latest.safetensors) + 8192 )) $M/fill
run full --out $M/run --resume
ls -a $M/run/ckpt > $T/full.ls
cp -a $M/run/ckpt $T/after_full
rm $M/fill
mount -o remount,ro $M
run ro --out $M/run --resume
run ro_new --out $M/new
cp -a $M/run/ckpt $T/after_ro
mount -o remount,rw $M
for k in 1 2 3 4; do [ -f $M/run/metrics.json ] || run resumed_$k --out $M/run --resume; done
cp $M/run/metrics.json $T/faulted.json 2> /dev/null
umount $M
)";
  write_text(t.file("faults.sh"), script);
  std::string unshare = ::geteuid() == 0 ? "unshare --mount --propagation private"
                                         : "unshare --mount --map-root-user";
  int unshared = std::system((unshare + " bash " + t.file("faults.sh") + " " + t.path() + " " + cora_bin() +
               " > " + t.file("unshare.log") + " 2>&1").c_str());
  (void)unshared;  // the marker file says whether the mount worked
  if (!fs::exists(t.file("mounted")))
    GTEST_SKIP() << "no private tmpfs here (" << unshare << "): " << slurp(t.file("unshare.log"));

  EXPECT_EQ(rc_of(t.file("first.rc")), 0) << slurp(t.file("first.out"));
  // Disk full: the second epoch's latest.safetensors fits, its best.safetensors does not.
  EXPECT_EQ(rc_of(t.file("full.rc")), 1) << slurp(t.file("full.out"));
  EXPECT_NE(slurp(t.file("full.out")).find("No space left on device"), std::string::npos)
      << slurp(t.file("full.out"));
  EXPECT_NE(slurp(t.file("full.out")).find("/ckpt/best.safetensors"), std::string::npos)
      << slurp(t.file("full.out"));  // failed at the checkpoint, mid-run
  for (const char* f : {"latest.safetensors", "best.safetensors", "progress.json"}) {
    ASSERT_TRUE(fs::exists(t.file(std::string("before/") + f))) << f;
    const std::string before = slurp(t.file(std::string("before/") + f));
    EXPECT_TRUE(slurp(t.file(std::string("after_full/") + f)) == before)
        << f << " changed by the failed checkpoint";
    EXPECT_TRUE(slurp(t.file(std::string("after_ro/") + f)) == before)
        << f << " changed by the read-only attempt";
  }
  EXPECT_EQ(slurp(t.file("full.ls")).find(".new"), std::string::npos) << slurp(t.file("full.ls"));
  EXPECT_EQ(slurp(t.file("full.ls")).find(".tmp"), std::string::npos) << slurp(t.file("full.ls"));
  // Read-only: refused before any work, naming the directory.
  EXPECT_EQ(rc_of(t.file("ro.rc")), 1) << slurp(t.file("ro.out"));
  EXPECT_NE(slurp(t.file("ro.out")).find("Read-only file system"), std::string::npos) << slurp(t.file("ro.out"));
  EXPECT_NE(slurp(t.file("ro.out")).find("/mnt/run"), std::string::npos) << slurp(t.file("ro.out"));
  EXPECT_EQ(rc_of(t.file("ro_new.rc")), 1) << slurp(t.file("ro_new.out"));
  EXPECT_NE(slurp(t.file("ro_new.out")).find("Read-only file system"), std::string::npos)
      << slurp(t.file("ro_new.out"));

  // With space again, --resume finishes as an undisturbed run does.
  ASSERT_TRUE(fs::exists(t.file("faulted.json"))) << slurp(t.file("resumed_1.out"));
  auto faulted = nlohmann::json::parse(slurp(t.file("faulted.json")));
  auto clean = finish(t.file("mf.json"), t.file("clean"));
  ASSERT_FALSE(clean.is_null()) << "the undisturbed run failed";
  EXPECT_EQ(faulted["test"]["auc"], clean["test"]["auc"]);
  EXPECT_EQ(faulted["test"]["uauc"], clean["test"]["uauc"]);
  EXPECT_EQ(faulted["best_epoch"], clean["best_epoch"]);
}

}  // namespace
