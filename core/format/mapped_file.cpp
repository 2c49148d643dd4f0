#include "core/format/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/common/errors.h"

namespace lwb::format {

void InputBytes::Unmap::operator()(void* address) const { ::munmap(address, size); }

InputBytes InputBytes::map(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(file.string(), std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw FormatError(file.string(), "not a regular file");
  }
  const auto size = static_cast<std::size_t>(info.st_size);
  // mmap refuses empty files; the parsers report them as truncated.
  void* address = size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  const int map_errno = errno;
  ::close(fd);
  if (address == MAP_FAILED)
    throw FormatError(file.string(), std::string("cannot map the file: ") + std::strerror(map_errno));
  InputBytes in;
  in.mapping_ = std::unique_ptr<void, Unmap>(address, Unmap{size});
  in.bytes_ = {static_cast<const std::byte*>(address), size};
  return in;
}

InputBytes InputBytes::hold(std::vector<std::uint8_t> bytes) {
  InputBytes in;
  in.owned_ = std::move(bytes);
  in.bytes_ = std::as_bytes(std::span<const std::uint8_t>(in.owned_));
  return in;
}

}  // namespace lwb::format
