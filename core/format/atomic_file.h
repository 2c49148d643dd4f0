#pragma once
// Crash-safe file replacement: the data goes to a temporary file beside the
// target ("<name>.tmp-<pid>"), is fsynced, then renamed over it, so a reader
// sees the old file or the complete new one, never a torn write. Temporaries
// of that name left by a killed writer are removed.
#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

namespace lwb::io {

// Writes the concatenation of `pieces`. Throws FormatError naming the file.
void write_file_atomically(const std::filesystem::path& file,
                           std::span<const std::span<const std::byte>> pieces);
void write_file_atomically(const std::filesystem::path& file, std::span<const std::byte> bytes);
void write_file_atomically(const std::filesystem::path& file, std::string_view text);

}  // namespace lwb::io
