// Atomic writes: one file, several files as one change, and completing a change a killed
// process left half-renamed.
#include <gtest/gtest.h>

#include <filesystem>

#include "cora/core/error.h"
#include "cora/io/files.h"
#include "test_util.h"

namespace cora::io {
namespace {
using cora::testing::error_of;
using cora::testing::TempDir;
using cora::testing::write_text;
namespace fs = std::filesystem;

TEST(Files, SeveralFilesAreOneChange) {
  TempDir t;
  write_text(t.file("a"), "old a");
  write_text(t.file("b"), "old b");
  write_files_atomic({{t.file("a"), "new a"}, {t.file("b"), "new b"}, {t.file("c"), "new c"}});
  EXPECT_EQ(read_file(t.file("a")), "new a");
  EXPECT_EQ(read_file(t.file("b")), "new b");
  EXPECT_EQ(read_file(t.file("c")), "new c");
  for (const auto& e : fs::directory_iterator(t.path()))
    EXPECT_EQ(e.path().filename().string().size(), 1u) << e.path();  // no .new or .tmp left
}

TEST(Files, AFailedWriteLeavesEveryOldFile) {
  TempDir t;
  write_text(t.file("a"), "old a");
  write_text(t.file("blocker"), "a file where a directory is needed");
  auto msg = error_of([&] {
    write_files_atomic({{t.file("a"), "new a"}, {t.file("blocker/b"), "new b"}});
  });
  EXPECT_NE(msg.find("blocker"), std::string::npos) << msg;
  EXPECT_EQ(read_file(t.file("a")), "old a");
  EXPECT_FALSE(fs::exists(t.file("a.new")));
}

TEST(Files, FinishCompletesAWholeChangeAndDropsAPartialOne) {
  TempDir t;
  for (const char* n : {"a", "b", "c"}) write_text(t.file(n), std::string("old ") + n);
  // Killed after renaming a: b.new and c.new are still pending; c (the last) says it was whole.
  write_text(t.file("b.new"), "new b");
  write_text(t.file("c.new"), "new c");
  EXPECT_TRUE(finish_files_atomic({t.file("a"), t.file("b"), t.file("c")}));
  EXPECT_EQ(read_file(t.file("b")), "new b");
  EXPECT_EQ(read_file(t.file("c")), "new c");
  EXPECT_FALSE(fs::exists(t.file("b.new")));
  // Killed while writing: only a.new was complete; nothing changes, the piece goes.
  write_text(t.file("a.new"), "newer a");
  EXPECT_FALSE(finish_files_atomic({t.file("a"), t.file("b"), t.file("c")}));
  EXPECT_EQ(read_file(t.file("a")), "old a");
  EXPECT_FALSE(fs::exists(t.file("a.new")));
}

TEST(Files, CheckWritableNamesTheDirectory) {
  TempDir t;
  EXPECT_NO_THROW(check_writable(t.path()));
  auto msg = error_of([&] { check_writable(t.file("missing")); });
  EXPECT_NE(msg.find(t.file("missing")), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot write here"), std::string::npos) << msg;
}

}  // namespace
}  // namespace cora::io
