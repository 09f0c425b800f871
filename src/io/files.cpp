// Whole-file reads and atomic writes.
#include "cora/io/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cora/core/error.h"

namespace cora::io {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error::at(path, 0, std::string("cannot open for reading: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// Writes `content` to `tmp` and fsyncs it; on failure removes `tmp` and throws naming it.
void write_synced(const std::string& tmp, const std::string& content) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error::at(tmp, 0, std::string("cannot create: ") + std::strerror(errno));
  const char* data = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error::at(tmp, 0, std::string("write failed: ") + std::strerror(err));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  int err = ::fsync(fd) != 0 ? errno : 0;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw Error::at(tmp, 0, std::string("fsync/close failed: ") + std::strerror(err));
  }
}

// Makes renames inside `dir` durable (best effort: some file systems refuse fsync on a directory).
void sync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void rename_into_place(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error::at(path, 0, std::string("rename failed: ") + std::strerror(err));
  }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& content) {
  fs::path p(path);
  if (p.has_parent_path()) make_dirs(p.parent_path().string());
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  write_synced(tmp, content);
  rename_into_place(tmp, path);
  sync_dir(p.parent_path());
}

void write_files_atomic(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::string> written;
  try {
    for (const auto& [path, content] : files) {
      fs::path p(path);
      if (p.has_parent_path()) make_dirs(p.parent_path().string());
      std::string tmp = path + ".tmp." + std::to_string(::getpid());
      write_synced(tmp, content);
      rename_into_place(tmp, path + ".new");  // a .new file is always complete
      written.push_back(path + ".new");
    }
  } catch (...) {
    for (const auto& w : written) ::unlink(w.c_str());
    throw;
  }
  for (const auto& [path, content] : files) sync_dir(fs::path(path).parent_path());
  for (const auto& [path, content] : files) rename_into_place(path + ".new", path);
  for (const auto& [path, content] : files) sync_dir(fs::path(path).parent_path());
}

bool finish_files_atomic(const std::vector<std::string>& paths) {
  if (paths.empty()) return false;
  const bool whole = fs::exists(paths.back() + ".new");
  for (const auto& path : paths) {
    std::string pending = path + ".new";
    if (!fs::exists(pending)) continue;
    if (whole)
      rename_into_place(pending, path);
    else
      ::unlink(pending.c_str());
  }
  return whole;
}

void check_writable(const std::string& dir) {
  std::string probe = dir + "/.cora-write-test." + std::to_string(::getpid());
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    const char byte = '\n';
    if (::write(fd, &byte, 1) != 1 || ::fsync(fd) != 0) err = errno;
    ::close(fd);
    ::unlink(probe.c_str());
  }
  if (err != 0)
    throw Error::at(dir, 0, std::string("cannot write here: ") + std::strerror(err) +
                                " (hint: a read-only or full file system; choose another --out)");
}

void append_line(const std::string& path, const std::string& line) {
  errno = 0;
  std::ofstream out(path, std::ios::app);
  if (!out) throw Error::at(path, 0, std::string("cannot open for appending: ") + std::strerror(errno));
  out << line << '\n';
  out.flush();
  if (!out) throw Error::at(path, 0, std::string("append failed: ") + std::strerror(errno));
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw Error::at(path, 0, "cannot create directory: " + ec.message());
}

bool exists(const std::string& path) { return fs::exists(path); }

std::string absolute(const std::string& path) {
  return fs::absolute(fs::path(path)).lexically_normal().string();
}

}  // namespace cora::io
