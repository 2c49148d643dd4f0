#pragma once
// The read-only bytes of an untrusted input: a file mapped into memory (model
// files run to gigabytes and are read piecemeal, so they are never copied
// whole) or a buffer already in memory, such as a blob from the store.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

namespace lwb::format {

class InputBytes {
 public:
  // Maps the file read-only; FormatError naming the path when it cannot.
  static InputBytes map(const std::filesystem::path& file);
  static InputBytes hold(std::vector<std::uint8_t> bytes);

  InputBytes() = default;  // no bytes
  InputBytes(InputBytes&&) noexcept = default;
  InputBytes& operator=(InputBytes&&) noexcept = default;
  InputBytes(const InputBytes&) = delete;
  InputBytes& operator=(const InputBytes&) = delete;
  ~InputBytes() = default;

  std::span<const std::byte> bytes() const { return bytes_; }

 private:
  struct Unmap {
    // No default member initializer: inside this class it would make Unmap
    // look not default-constructible to unique_ptr.
    std::size_t size;
    void operator()(void* address) const;
  };

  // Exactly one of these holds the bytes; both keep their address when the
  // object is moved, so bytes_ stays valid.
  std::unique_ptr<void, Unmap> mapping_;
  std::vector<std::uint8_t> owned_;
  std::span<const std::byte> bytes_;
};

}  // namespace lwb::format
