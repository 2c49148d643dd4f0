#include "core/format/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/common/errors.h"
#include "core/common/kill_point.h"

namespace lwb::io {

namespace {

std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, std::span<const std::byte> bytes, const std::string& source) {
  const auto* p = reinterpret_cast<const char*>(bytes.data());
  std::size_t size = bytes.size();
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw FormatError(source, "write failed: " + errno_text());
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Temporaries "<name>.tmp-<pid>" that a killed writer left beside `file`: the
// file is being replaced now, so they are of no use to anyone.
void remove_stale_temporaries(const std::filesystem::path& file) {
  const std::string prefix = file.filename().string() + ".tmp-";
  const std::string own = prefix + std::to_string(::getpid());
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name != own &&
        name.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
      std::filesystem::remove(entry.path(), ec);
  }
}

}  // namespace

void write_file_atomically(const std::filesystem::path& file,
                           std::span<const std::span<const std::byte>> pieces) {
  remove_stale_temporaries(file);
  const std::string source = file.string();
  const std::string tmp = source + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw FormatError(source, "cannot create " + tmp + ": " + errno_text());
  try {
    for (const auto& piece : pieces) write_all(fd, piece, source);
    if (::fsync(fd) != 0) throw FormatError(source, "fsync failed: " + errno_text());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw FormatError(source, "close failed: " + why);
  }
  kill_point("before-rename:" + file.filename().string());
  if (::rename(tmp.c_str(), source.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw FormatError(source, "cannot rename " + tmp + " into place: " + why);
  }
  // Make the rename itself durable; failure here leaves a complete file, so
  // it is not reported.
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::filesystem::path& file, std::span<const std::byte> bytes) {
  const std::span<const std::byte> one[] = {bytes};
  write_file_atomically(file, one);
}

void write_file_atomically(const std::filesystem::path& file, std::string_view text) {
  write_file_atomically(file, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace lwb::io
