#pragma once
// SHA-256 (FIPS 180-4), for checking downloaded files against published
// digests without a crypto library.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace lwb {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::byte> bytes);
  // The digest as 64 lowercase hex digits; the object is spent afterwards.
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t used_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(std::span<const std::byte> bytes);
// Reads the file in blocks; FormatError naming it when it cannot be read.
std::string sha256_file(const std::filesystem::path& file);

}  // namespace lwb
